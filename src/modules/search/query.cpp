// What both searches share: the words of a query with their typo
// corrections, cursors over any order, and facet lists.
#include <algorithm>
#include <set>

#include "modules/search/module.hpp"
#include "modules/search/sql.hpp"
#include "modules/search/text.hpp"

namespace souq::search {
namespace {

constexpr size_t kMaxCorrections = 5;
constexpr size_t kMaxFacetValues = 50;

[[noreturn]] void bad_cursor() { throw ApiError::validation({{"cursor", "is not a cursor this API gave out"}}); }

}  // namespace

std::string order_by(const std::vector<SortKey>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k.expr + (k.desc ? " DESC" : "");
  return out;
}

std::string after(Sql& s, const std::string& sort, const std::vector<SortKey>& keys, const json& cursor) {
  if (!cursor.is_array() || cursor.size() != keys.size() + 1 || cursor[0] != sort) bad_cursor();
  std::string out, equal;
  for (size_t i = 0; i < keys.size(); ++i) {
    const json& v = cursor[i + 1];
    if (keys[i].number ? !v.is_number() : !v.is_string()) bad_cursor();
    auto value = [&] {
      if (v.is_string()) return db::Value(v.get<std::string>());
      return v.is_number_integer() ? db::Value(v.get<int64_t>()) : db::Value(v.get<double>());
    };
    out += std::string(i ? " OR " : "") + "(" + equal + keys[i].expr + (keys[i].desc ? " < " : " > ") + s.bind(value()) + ")";
    if (i + 1 < keys.size()) equal += keys[i].expr + " = " + s.bind(value()) + " AND ";
  }
  return "(" + out + ")";
}

json top(std::vector<std::pair<std::string, int64_t>> counts) {
  std::sort(counts.begin(), counts.end(),
            [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  json out = json::array();
  for (size_t i = 0; i < counts.size() && i < kMaxFacetValues; ++i)
    out.push_back({{"value", counts[i].first}, {"count", counts[i].second}});
  return out;
}

QueryWords Search::expand(db::Tx& tx, const TextTable& table, const std::vector<std::string>& query, json& expanded) {
  QueryWords out;
  std::set<std::string> seen;
  for (const auto& word : query) {
    if (!seen.insert(word).second) continue;
    std::vector<std::string> group = {word};
    auto letters = code_points(word);
    int budget = typo_budget(letters);
    if (budget > 0 && !text_->contains(tx, table, word)) {
      int64_t n = int64_t(letters.size());
      std::u32string_view view(letters);
      auto rows = tx.query(
          "SELECT term FROM search_terms WHERE head = $1 AND letters BETWEEN $3 AND $4"
          " UNION SELECT term FROM search_terms WHERE tail = $2 AND letters BETWEEN $3 AND $4",
          {to_utf8(view.substr(0, 2)), to_utf8(view.substr(view.size() - 2)), n - budget, n + budget});
      std::vector<std::tuple<int, int64_t, std::string>> near;
      for (const auto& r : rows) {
        std::string term = r.text("term");
        auto other = code_points(term);
        int d = edit_distance(letters, other, budget);
        if (d <= budget && d > 0) near.emplace_back(d, std::abs(int64_t(other.size()) - n), term);
      }
      std::sort(near.begin(), near.end());
      json used = json::array();
      for (const auto& [d, length, term] : near) {
        if (used.size() >= kMaxCorrections) break;
        if (!text_->contains(tx, table, term)) continue;  // a word whose documents went
        group.push_back(term);
        used.push_back(term);
      }
      if (!used.empty()) expanded[word] = used;
    }
    out.push_back(std::move(group));
  }
  return out;
}

}  // namespace souq::search
