// Folding and splitting text into words without ICU: a table of the scripts
// Souq's marketplaces write in (Latin with accents, Arabic, Greek, Cyrillic);
// any other letter is kept as it is, which is what a word needs.
#include "modules/search/text.hpp"

#include <algorithm>

#include "core/utf8.hpp"

namespace souq::search {
namespace {

constexpr char32_t kSeparator = 0xFFFFFFFF;
constexpr char32_t kIgnored = 0xFFFFFFFE;

// U+00C0…U+00FF: the base letter of each (0 for × and ÷, which separate).
constexpr const char* kLatin1[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",  //
    "d", "n", "o", "o", "o", "o", "o",  nullptr, "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",  //
    "d", "n", "o", "o", "o", "o", "o",  nullptr, "o", "u", "u", "u", "u", "y", "th", "y"};

// U+0100…U+017F (Latin Extended-A): the base letter of each.
constexpr std::string_view kLatinA =
    "aaaaaa" "cccccccc" "dddd" "eeeeeeeeee" "gggggggg" "hhhh" "iiiiiiiiii" "ii" "jj" "kkk" "llllllllll"
    "nnnnnnnnn" "oooooo" "oo" "rrrrrr" "ssssssss" "tttttt" "uuuuuuuuuuuu" "ww" "yyy" "zzzzzz" "s";
static_assert(kLatinA.size() == 128);

bool between(char32_t c, char32_t lo, char32_t hi) { return c >= lo && c <= hi; }

// One code point as it goes into a word: itself, another, a separator, or nothing.
char32_t fold_one(char32_t c) {
  if (c < 0x80) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return c;
    return kSeparator;
  }
  if (c < 0xC0) return kSeparator;  // Latin-1 punctuation and symbols
  if (c == 0x0640 || between(c, 0x0300, 0x036F) || between(c, 0x0610, 0x061A) || between(c, 0x064B, 0x065F) ||
      c == 0x0670 || between(c, 0x06D6, 0x06ED) || between(c, 0x200B, 0x200F) || between(c, 0x2060, 0x2064) ||
      between(c, 0xFE00, 0xFE0F) || c == 0xFEFF)
    return kIgnored;  // combining marks, tashkeel, tatweel, invisible joiners
  // Arabic: alef variants, alef maqsura, teh marbuta; digits.
  if (c == 0x0622 || c == 0x0623 || c == 0x0625 || c == 0x0671) return 0x0627;
  if (c == 0x0649) return 0x064A;
  if (c == 0x0629) return 0x0647;
  if (between(c, 0x0660, 0x0669)) return '0' + (c - 0x0660);
  if (between(c, 0x06F0, 0x06F9)) return '0' + (c - 0x06F0);
  if (between(c, 0x0600, 0x0605) || c == 0x060C || c == 0x060D || c == 0x061B || c == 0x061F ||
      between(c, 0x066A, 0x066D) || c == 0x06D4 || c == 0x06DD)
    return kSeparator;
  // Greek and Cyrillic capitals.
  if (between(c, 0x0391, 0x03A9) && c != 0x03A2) return c + 0x20;
  if (between(c, 0x0410, 0x042F)) return c + 0x20;
  if (between(c, 0x0400, 0x040F)) return c + 0x50;
  // Fullwidth forms.
  if (between(c, 0xFF10, 0xFF19)) return '0' + (c - 0xFF10);
  if (between(c, 0xFF21, 0xFF3A)) return 'a' + (c - 0xFF21);
  if (between(c, 0xFF41, 0xFF5A)) return 'a' + (c - 0xFF41);
  // Punctuation, symbols, arrows, shapes, emoji, private use.
  if (between(c, 0x2000, 0x2BFF) || between(c, 0x2E00, 0x2E7F) || between(c, 0x3000, 0x303F) ||
      between(c, 0xE000, 0xF8FF) || between(c, 0xFE10, 0xFE1F) || between(c, 0xFE30, 0xFE6F) ||
      between(c, 0xFF00, 0xFF65) || between(c, 0xFFF0, 0xFFFF) || between(c, 0x1F000, 0x1FAFF))
    return kSeparator;
  return c;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

// The code point at text[i] (advancing i), or kSeparator for an invalid byte.
char32_t next_code_point(std::string_view text, size_t& i) {
  size_t n = utf8::sequence_length(text, i);
  if (n == 0) {
    ++i;
    return kSeparator;
  }
  auto b = [&](size_t k) { return char32_t(static_cast<unsigned char>(text[i + k])); };
  char32_t c;
  if (n == 1) c = b(0);
  else if (n == 2) c = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
  else if (n == 3) c = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  else c = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  i += n;
  return c;
}

constexpr size_t kMaxWordLetters = 64;

}  // namespace

std::u32string code_points(std::string_view text) {
  std::u32string out;
  for (size_t i = 0; i < text.size();) {
    char32_t c = next_code_point(text, i);
    if (c != kSeparator) out += c;
  }
  return out;
}

std::string to_utf8(std::u32string_view text) {
  std::string out;
  for (char32_t c : text) append_utf8(out, c);
  return out;
}

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  size_t letters = 0;
  auto finish = [&] {
    if (!word.empty() && letters <= kMaxWordLetters) out.push_back(word);
    word.clear();
    letters = 0;
  };
  for (size_t i = 0; i < text.size();) {
    char32_t c = next_code_point(text, i);
    if (c == kSeparator) {
      finish();
      continue;
    }
    if (c >= 0xC0 && c <= 0xFF) {
      const char* base = kLatin1[c - 0xC0];
      if (!base) {
        finish();
      } else {
        word += base;
        letters += std::string_view(base).size();
      }
      continue;
    }
    if (c >= 0x100 && c <= 0x17F) {
      word += kLatinA[c - 0x100];
      ++letters;
      continue;
    }
    c = fold_one(c);
    if (c == kSeparator) finish();
    else if (c != kIgnored) {
      append_utf8(word, c);
      ++letters;
    }
  }
  finish();
  return out;
}

std::string fold(std::string_view text) {
  std::string out;
  for (const auto& w : words(text)) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

int edit_distance(std::u32string_view a, std::u32string_view b, int max) {
  int n = int(a.size()), m = int(b.size());
  if (std::abs(n - m) > max) return max + 1;
  // Three rows of the optimal-string-alignment table.
  std::vector<int> before(m + 1), previous(m + 1), current(m + 1);
  for (int j = 0; j <= m; ++j) previous[j] = j;
  int previous_best = 0;
  for (int i = 1; i <= n; ++i) {
    current[0] = i;
    int best = current[0];
    for (int j = 1; j <= m; ++j) {
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int d = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d = std::min(d, before[j - 2] + 1);
      current[j] = d;
      best = std::min(best, d);
    }
    // A swap reaches two rows back: two rows beyond max and no cell after them comes back.
    if (best > max && previous_best > max) return max + 1;
    previous_best = best;
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[m] > max ? max + 1 : previous[m];
}

namespace {
bool has_digit(std::u32string_view word) {
  return std::any_of(word.begin(), word.end(), [](char32_t c) { return c >= '0' && c <= '9'; });
}
}  // namespace

int typo_budget(std::u32string_view word) {
  if (word.size() < 5 || has_digit(word)) return 0;
  return word.size() >= 8 ? 2 : 1;
}

bool in_vocabulary(std::u32string_view word) { return word.size() >= 4 && !has_digit(word); }

}  // namespace souq::search
