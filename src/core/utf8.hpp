// UTF-8 checks for text that came from outside (request paths, exception
// messages) before it goes where only valid UTF-8 may go (JSON, PostgreSQL).
#pragma once
#include <string>
#include <string_view>

namespace souq::utf8 {

// Length of the valid UTF-8 sequence that starts at text[i] (1 for ASCII), or
// 0 when the bytes there are not one (overlong, surrogate, > U+10FFFF, cut).
size_t sequence_length(std::string_view text, size_t i);

// Code points in valid UTF-8 text (an invalid byte counts as one).
size_t length(std::string_view text);

// The text with every invalid byte replaced by U+FFFD and NUL bytes removed,
// cut at a character boundary to at most `max_bytes` bytes.
std::string sanitize(std::string_view text, size_t max_bytes = std::string::npos);

// At most `max_chars` code points of valid UTF-8 text, cut between characters.
std::string prefix(std::string_view text, size_t max_chars);

}  // namespace souq::utf8
