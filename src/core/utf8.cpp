#include <algorithm>
#include "core/utf8.hpp"

namespace souq::utf8 {

size_t sequence_length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  if (n == 3 && ((c == 0xE0 && b(i + 1) < 0xA0) || (c == 0xED && b(i + 1) > 0x9F))) return 0;  // overlong, surrogate
  if (n == 4 && ((c == 0xF0 && b(i + 1) < 0x90) || (c == 0xF4 && b(i + 1) > 0x8F))) return 0;  // overlong, > U+10FFFF
  return n;
}

std::string sanitize(std::string_view text, size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  for (size_t i = 0; i < text.size();) {
    size_t n = sequence_length(text, i);
    std::string_view piece = n ? text.substr(i, n) : kReplacement;
    if (out.size() + piece.size() > max_bytes) break;
    if (!(n == 1 && text[i] == '\0')) out += piece;
    i += n ? n : 1;
  }
  return out;
}

size_t length(std::string_view text) {
  size_t n = 0;
  for (size_t i = 0; i < text.size(); i += std::max<size_t>(1, sequence_length(text, i))) ++n;
  return n;
}

std::string prefix(std::string_view text, size_t max_chars) {
  size_t i = 0, chars = 0;
  while (i < text.size() && chars < max_chars) {
    i += std::max<size_t>(1, sequence_length(text, i));
    ++chars;
  }
  return std::string(text.substr(0, std::min(i, text.size())));
}

}  // namespace souq::utf8
