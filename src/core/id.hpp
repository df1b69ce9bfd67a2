// Opaque, prefixed, time-sortable identifiers: "<prefix>_" + 26 characters of
// Crockford base32 (48-bit millisecond timestamp, then 80 random bits), like a
// ULID in lower case. Ids made later sort after ids made earlier; ids made in
// the same millisecond by one process still sort in creation order.
//
// Ids are not secrets: one made in the same millisecond as another is that
// one plus one. Tokens, OTPs and capability links take randomness of their own.
#pragma once
#include <string>
#include <string_view>

namespace souq {
std::string new_id(std::string_view prefix);
// An id for something made at `unix_ms` (history loaded or seeded later);
// ids made this way in one millisecond do not sort among themselves.
std::string new_id_at(std::string_view prefix, int64_t unix_ms);
// True when text is "<prefix>_" + 26 base32 characters (any prefix when empty).
bool is_id(std::string_view text, std::string_view prefix = {});
}  // namespace souq
