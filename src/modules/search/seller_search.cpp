// Sellers search finds: approved businesses whose account is active, by
// name, city and description, with a city facet.
#include "http/paging.hpp"
#include "modules/search/module.hpp"
#include "modules/search/sql.hpp"
#include "modules/search/tables.hpp"
#include "modules/search/text.hpp"

namespace souq::search {
namespace {

std::vector<std::string> folded(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) out.push_back(fold(v));
  return out;
}

}  // namespace

Page Search::sellers(const SellerQuery& q) {
  return db_.read([&](db::Tx& tx) {
    Sql s;
    json expanded = json::object();
    std::vector<std::string> query_words = words(q.q);
    TextIndex::Match text{"search_sellers d", "", "0", "d.doc"};
    if (!query_words.empty()) text = text_->match(kSellerText, expand(tx, kSellerText, query_words, expanded), s.params);
    if (!text.where.empty()) s.add(text.where);
    if (!q.cities.empty()) s.add("d.city_key IN (" + s.list(folded(q.cities)) + ")");
    std::string where = s.where.empty() ? "1 = 1" : s.where;

    int64_t total = 0;
    std::vector<std::pair<std::string, int64_t>> cities;
    for (const auto& r : tx.query("WITH m AS MATERIALIZED (SELECT d.city_key, d.city FROM " + text.from + " WHERE " +
                                      where +
                                      ") SELECT 'total' AS facet, CAST(NULL AS TEXT) AS b, COUNT(*) AS n FROM m"
                                      " UNION ALL SELECT 'city', MIN(city), COUNT(*) FROM m WHERE city_key IS NOT NULL"
                                      " GROUP BY city_key",
                                  s.params)) {
      if (r.text("facet") == "total") total = r.integer("n");
      else cities.emplace_back(r.text("b"), r.integer("n"));
    }

    std::string sort = q.sort.empty() ? (query_words.empty() ? "newest" : "relevance") : q.sort;
    std::vector<SortKey> order = sort == "relevance"
                                     ? std::vector<SortKey>{{text.score, true, true}, {"d.user_id", true, false}}
                                     : std::vector<SortKey>{{"d.approved_at", true, false}, {"d.user_id", true, false}};
    Sql page = s;
    std::string page_where = where;
    if (q.cursor) page_where += " AND " + after(page, sort, order, *q.cursor);
    auto rows = tx.query("SELECT d.user_id, d.hit, " + text.score + " AS score, d.approved_at FROM " + text.from +
                             " WHERE " + page_where + " ORDER BY " + order_by(order) + " LIMIT " +
                             page.bind(int64_t(q.limit + 1)),
                         page.params);
    // Each seller's listed products, from the product index.
    std::vector<std::string> ids;
    for (size_t i = 0; i < rows.size() && int(i) < q.limit; ++i) ids.push_back(rows[i].text("user_id"));
    std::map<std::string, int64_t> listed;
    if (!ids.empty()) {
      db::Params params;
      std::string in = db::bind_list(params, ids);
      for (const auto& r : tx.query("SELECT seller_id, COUNT(*) AS n FROM search_products WHERE seller_id IN (" + in +
                                        ") GROUP BY seller_id",
                                    params))
        listed[r.text("seller_id")] = r.integer("n");
    }
    json items = json::array();
    for (size_t i = 0; i < ids.size(); ++i) {
      json hit = json::parse(rows[i].text("hit"));
      hit["product_count"] = listed.count(ids[i]) ? listed[ids[i]] : 0;
      items.push_back(std::move(hit));
    }
    json next = nullptr;
    if (int(rows.size()) > q.limit) {
      const auto& last = rows[size_t(q.limit) - 1];
      json position = json::array({sort});
      if (sort == "relevance") position.push_back(last.real("score"));
      else position.push_back(last.text("approved_at"));
      position.push_back(last.text("user_id"));
      next = api::encode_cursor(position);
    }
    json data = {{"items", std::move(items)},
                 {"total", total},
                 {"facets", {{"city", top(std::move(cities))}}},
                 {"expanded", std::move(expanded)}};
    return Page{std::move(data), std::move(next)};
  });
}

}  // namespace souq::search
