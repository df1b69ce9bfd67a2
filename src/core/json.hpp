// JSON for the whole program: nlohmann::json, chosen for strict parsing (it
// rejects invalid UTF-8 and trailing garbage) and a parse callback that lets us
// bound nesting depth. Parsing cost is small beside I/O at Souq's body sizes.
#pragma once
#include <nlohmann/json.hpp>
#include <string_view>

namespace souq {
using json = nlohmann::json;

struct JsonLimits {
  int max_depth = 64;
};

// Parses untrusted text. Throws ApiError 400 `invalid_json` with the position
// and reason when the text is not one well-formed JSON value within the limits.
json parse_json(std::string_view text, JsonLimits limits = {});

// Serialises without throwing on invalid UTF-8 in strings (replaced by U+FFFD).
std::string dump_json(const json& value);
}  // namespace souq
