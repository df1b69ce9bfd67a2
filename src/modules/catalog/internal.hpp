// What the catalog's own files share and nobody else reads: the columns its
// queries select, small helpers over them, and what rendering reads.
#pragma once
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "modules/catalog/module.hpp"

namespace souq::catalog {

inline constexpr const char* kProductColumns =
    "p.id, p.seller_id, p.title, p.description, p.brand, p.category_id, p.attributes, p.condition, p.city, p.lat, p.lng,"
    " p.status, p.rejection_reason, p.currency, p.price_min, p.price_max, p.rating_count, p.rating_total, p.version,"
    " p.seller_active, p.created_at, p.updated_at, p.published_at, p.deleted_at";

inline constexpr const char* kSkuColumns =
    "id, product_id, code, price, currency, stock, reserved, attributes, position, created_at, updated_at, deleted_at";

// The ids of a materialised category path, root first ("/a/b/" → a, b).
inline std::vector<std::string> path_ids(const std::string& path) {
  std::vector<std::string> ids;
  for (size_t s = 1, e; s < path.size() && (e = path.find('/', s)) != std::string::npos; s = e + 1)
    ids.push_back(path.substr(s, e - s));
  return ids;
}

// {average (two decimals, or null), count} of a sum of ratings.
inline json rating_of(int64_t count, int64_t total) {
  if (count == 0) return {{"average", nullptr}, {"count", 0}};
  return {{"average", std::round(double(total) * 100.0 / double(count)) / 100.0}, {"count", count}};
}

// The rows `select` finds whose `column` is one of `ids` (then `rest`:
// more conditions, an ORDER BY), grouped by that column.
inline std::map<std::string, std::vector<db::Row>> grouped(db::Tx& tx, const std::string& select, const std::string& column,
                                                    const std::vector<std::string>& ids, const std::string& rest) {
  std::map<std::string, std::vector<db::Row>> out;
  if (ids.empty()) return out;
  db::Params params;
  std::string in = db::bind_list(params, ids);
  for (const auto& r : tx.query(select + " WHERE " + column + " IN (" + in + ")" + rest, params))
    out[r.text(column)].push_back(r);
  return out;
}

// What showing products needs besides their own rows, read for a page or
// a batch at once (Catalog::related, documents.cpp).
struct Catalog::Related {
  std::map<std::string, std::vector<db::Row>> skus;    // live SKUs by product, in position order
  std::map<std::string, std::vector<db::Row>> images;  // images not deleted, by product, in position order
  std::map<std::string, db::Row> categories;           // the products' categories and their ancestors
  std::map<std::string, std::string> seller_names;     // approved sellers' business names
  std::map<std::string, json> people;                  // sellers' summaries (the name of one without a business)
  std::map<std::string, std::pair<int64_t, int64_t>> seller_ratings;  // count, total

  const std::vector<db::Row>& of(const std::map<std::string, std::vector<db::Row>>& m, const std::string& id) const {
    static const std::vector<db::Row> none;
    auto it = m.find(id);
    return it == m.end() ? none : it->second;
  }
  // The ids of a category and its ancestors, root first ("/a/b/" → a, b).
  std::vector<std::string> lineage(const std::string& category_id) const {
    auto it = categories.find(category_id);
    return it == categories.end() ? std::vector<std::string>{} : path_ids(it->second.text("path"));
  }
};

}  // namespace souq::catalog
