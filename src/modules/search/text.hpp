// Words as search sees them, the same for every document and every query on
// both engines: the index is given these words, never raw text, so SQLite's
// FTS5 table and PostgreSQL's tsvector hold exactly the same terms, and no
// database's locale or tokenizer decides what a word is.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace souq::search {

// The words of a text: lower-cased, Latin accents and Arabic letter variants
// and marks folded away, split on anything that is neither a letter nor a
// digit. Words longer than 64 characters are left out (they are not words).
std::vector<std::string> words(std::string_view text);

// A short value as a key for filters and facets (a brand, a city, an
// attribute value): its words joined by single spaces ("Wi-Fi" → "wi fi").
std::string fold(std::string_view text);

std::u32string code_points(std::string_view utf8);
std::string to_utf8(std::u32string_view text);

// Edits (insert, delete, substitute, swap two neighbours) from a to b, or
// max + 1 when it takes more than max.
int edit_distance(std::u32string_view a, std::u32string_view b, int max);

// How far a query word may be from an indexed word and still find it: 0 for
// words shorter than 5 letters or with digits (model numbers are exact), 1
// from 5 letters, 2 from 8.
int typo_budget(std::u32string_view word);

// Indexed words that may stand in for a misspelt query word are kept in a
// vocabulary: those of 4 letters or more, without digits.
bool in_vocabulary(std::u32string_view word);

}  // namespace souq::search
