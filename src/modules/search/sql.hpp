// Pieces of SQL both searches (products, sellers) build their queries from.
#pragma once
#include <string>
#include <vector>

#include "core/json.hpp"
#include "db/database.hpp"

namespace souq::search {

// A WHERE clause under construction, with its parameters.
struct Sql {
  db::Params params;
  std::string where;

  std::string bind(db::Value v) {
    params.push_back(std::move(v));
    return "$" + std::to_string(params.size());
  }
  void add(const std::string& condition) { where += (where.empty() ? "" : " AND ") + condition; }
  std::string list(const std::vector<std::string>& values) { return db::bind_list(params, values); }
};

// One key of an order: its SQL, its direction, and whether the cursor holds a number.
struct SortKey {
  std::string expr;
  bool desc;
  bool number;
};

std::string order_by(const std::vector<SortKey>& keys);

// Rows after a cursor's position: (k1 after v1) OR (k1 = v1 AND k2 after v2) …
// The cursor is [sort, v1, …, vn], as the page that ended there gave it out;
// 422 validation_failed for anything else.
std::string after(Sql& s, const std::string& sort, const std::vector<SortKey>& keys, const json& cursor);

// Facet values, most matches first (then by value), at most 50.
json top(std::vector<std::pair<std::string, int64_t>> counts);

}  // namespace souq::search
