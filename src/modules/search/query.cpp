// Answering a search: the words (with typo corrections), the filters, one
// page in the asked order after the cursor, and the total and facet counts
// as aggregates over the same matches in one statement.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <set>
#include <unordered_map>

#include "http/paging.hpp"
#include "modules/search/counts_cache.hpp"
#include "modules/search/module.hpp"
#include "modules/search/tables.hpp"
#include "modules/search/text.hpp"

namespace souq::search {
namespace {

constexpr size_t kMaxCorrections = 5;
constexpr size_t kMaxFacetValues = 50;

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

std::string order_by(const std::vector<SortKey>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k.expr + (k.desc ? " DESC" : "");
  return out;
}

[[noreturn]] void bad_cursor() { throw ApiError::validation({{"cursor", "is not a cursor this API gave out"}}); }

// Rows after the cursor's position: (k1 after v1) OR (k1 = v1 AND k2 after v2) …
// The cursor is [sort, v1, …, vn], made by cursor_of for the same sort.
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

std::vector<std::string> folded(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) out.push_back(fold(v));
  return out;
}

double round_to(double x, double step) { return std::round(x / step) * step; }

}  // namespace

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

namespace {

// The SQL of the counts of a match: one pass over the matches, or one
// aggregate per facet when the match is a category or brands only (each then
// reads an index of search_products alone: no row, no text index).
std::string counts_sql(const std::string& from, const std::string& where, bool one_pass, const std::string& child,
                       const std::string& attribute_keys) {
  if (one_pass) {
    std::string sql =
        "WITH m AS MATERIALIZED (SELECT d.doc, " + child + " AS cat, d.brand_key, d.brand, d.currency, d.price_bucket FROM " +
        from + " WHERE " + where +
        ") SELECT 'total' AS facet, CAST(NULL AS TEXT) AS a, CAST(NULL AS TEXT) AS b, CAST(NULL AS TEXT) AS c,"
        " COUNT(*) AS n FROM m"
        " UNION ALL SELECT 'category', cat, NULL, NULL, COUNT(*) FROM m WHERE cat IS NOT NULL GROUP BY cat"
        " UNION ALL SELECT 'brand', brand_key, MIN(brand), NULL, COUNT(*) FROM m WHERE brand_key IS NOT NULL"
        " GROUP BY brand_key"
        " UNION ALL SELECT 'price', currency, CAST(price_bucket AS TEXT), NULL, COUNT(*) FROM m"
        " GROUP BY currency, price_bucket";
    if (!attribute_keys.empty())
      sql += " UNION ALL SELECT 'attribute', a.key, a.value_key, MIN(a.value), COUNT(*) FROM m"
             " JOIN search_product_attributes a ON a.doc = m.doc WHERE a.key IN (" + attribute_keys + ")"
             " GROUP BY a.key, a.value_key";
    return sql;
  }
  std::string matches = " FROM " + from + " WHERE " + where;
  std::string sql =
      "SELECT 'total' AS facet, CAST(NULL AS TEXT) AS a, CAST(NULL AS TEXT) AS b, CAST(NULL AS TEXT) AS c,"
      " COUNT(*) AS n" + matches;
  if (child != "CAST(NULL AS TEXT)")
    sql += " UNION ALL SELECT 'category', " + child + ", NULL, NULL, COUNT(*)" + matches + " AND " + child +
           " IS NOT NULL GROUP BY " + child;
  sql += " UNION ALL SELECT 'brand', d.brand_key, MIN(d.brand), NULL, COUNT(*)" + matches +
         " AND d.brand_key IS NOT NULL GROUP BY d.brand_key"
         " UNION ALL SELECT 'price', d.currency, CAST(d.price_bucket AS TEXT), NULL, COUNT(*)" + matches +
         " GROUP BY d.currency, d.price_bucket";
  if (!attribute_keys.empty())
    sql += " UNION ALL SELECT 'attribute', a.key, a.value_key, MIN(a.value), COUNT(*) FROM " + from +
           " JOIN search_product_attributes a ON a.doc = d.doc WHERE " + where + " AND a.key IN (" + attribute_keys +
           ") GROUP BY a.key, a.value_key";
  return sql;
}

}  // namespace

Page Search::products(const ProductQuery& q) {
  return db_.read([&](db::Tx& tx) {
    Sql s;
    json expanded = json::object();
    std::vector<std::string> query_words = words(q.q);
    TextIndex::Match text{"search_products d", "", "0"};
    if (!query_words.empty()) text = text_->match(kProductText, expand(tx, kProductText, query_words, expanded), s.params);
    if (!text.where.empty()) s.add(text.where);

    // Filters. A category also names its ancestors for the counts, which
    // then read the browse index (cat0, cat1, cat2, …) alone.
    int child_level = 0;  // the category facet counts children at this depth
    json facet_keys = json::array();
    std::vector<std::string> ancestors;
    if (q.category) {
      auto category = catalog_.find_category(tx, *q.category);
      if (!category) throw ApiError::validation({{"category", "no such category"}});
      int depth = (*category)["depth"].get<int>();
      s.add("d.cat" + std::to_string(depth) + " = " + s.bind((*category)["id"].get<std::string>()));
      std::string path = (*category)["path"];
      int level = 0;
      for (size_t from = 1, slash; level++ < depth && (slash = path.find('/', from)) != std::string::npos; from = slash + 1)
        ancestors.push_back(path.substr(from, slash - from));
      child_level = depth + 1;
      for (const auto& def : (*category)["attributes"])
        if (def.value("facet", false)) facet_keys.push_back(def.value("key", ""));
    }
    if (q.facets) facet_keys = *q.facets;
    if (!q.brands.empty()) s.add("d.brand_key IN (" + s.list(folded(q.brands)) + ")");
    if (!q.conditions.empty()) s.add("d.condition IN (" + s.list(q.conditions) + ")");
    if (!q.cities.empty()) s.add("d.city_key IN (" + s.list(folded(q.cities)) + ")");
    if (q.seller_id) s.add("d.seller_id = " + s.bind(*q.seller_id));
    if (q.currency) s.add("d.currency = " + s.bind(*q.currency));
    if (q.min_price) s.add("d.price_min >= " + s.bind(*q.min_price));
    if (q.max_price) s.add("d.price_min <= " + s.bind(*q.max_price));
    if (q.in_stock) s.add("d.in_stock = 1");
    for (const auto& [key, values] : q.attributes)
      s.add("d.doc IN (SELECT a.doc FROM search_product_attributes a WHERE a.key = " + s.bind(key) +
            " AND a.value_key IN (" + s.list(folded(values)) + "))");
    std::string distance;
    if (q.lat && q.lng && q.radius_km) {
      // A box around the point first (indexed), then the exact distance.
      double dlat = *q.radius_km / 111.0;
      double dlng = *q.radius_km / std::max(1.0, 111.0 * std::cos(*q.lat * 3.14159265358979323846 / 180.0));
      s.add("d.lat BETWEEN " + s.bind(*q.lat - dlat) + " AND " + s.bind(*q.lat + dlat));
      s.add("d.lng BETWEEN " + s.bind(*q.lng - dlng) + " AND " + s.bind(*q.lng + dlng));
      distance = "souq_distance_km(d.lat, d.lng, " + s.bind(*q.lat) + ", " + s.bind(*q.lng) + ")";
      s.add(distance + " <= " + s.bind(*q.radius_km));
    }
    std::string where = s.where.empty() ? "1 = 1" : s.where;

    // The total and the facets.
    std::vector<std::string> keys;
    for (const auto& k : facet_keys)
      if (k.is_string() && std::find(keys.begin(), keys.end(), k.get<std::string>()) == keys.end()) keys.push_back(k);
    Sql f = s;  // the counts' own parameters follow the filters'
    std::string counted = where;
    for (size_t level = 0; level < ancestors.size(); ++level)
      counted += " AND d.cat" + std::to_string(level) + " = " + f.bind(ancestors[level]);
    std::string child = child_level < kCategoryLevels ? "d.cat" + std::to_string(child_level) : "CAST(NULL AS TEXT)";
    bool by_index = text.where.empty() && distance.empty() && q.attributes.empty() && !q.min_price && !q.max_price &&
                    !q.currency && q.conditions.empty() && q.cities.empty() && !q.seller_id && !q.in_stock;
    std::string facet_sql = counts_sql(text.from, counted, !by_index, child,
                                       keys.empty() ? "" : f.list(keys));
    std::string cache_key = facet_sql;
    for (const auto& v : f.params) cache_key += '\x1f' + (v.is_null() ? std::string("\x1e") : v.as_string());
    int64_t total = 0;
    json facets;
    if (auto cached = counts_->find(cache_key)) {
      total = cached->total;
      facets = cached->facets;
    } else {
      std::vector<std::pair<std::string, int64_t>> children, brands;
      std::map<std::pair<std::string, int64_t>, int64_t> prices;
      std::map<std::string, std::vector<std::pair<std::string, int64_t>>> attributes;
      for (const auto& k : keys) attributes[k];
      for (const auto& r : tx.query(facet_sql, f.params)) {
        std::string facet = r.text("facet");
        int64_t n = r.integer("n");
        if (facet == "total") total = n;
        else if (facet == "category") children.emplace_back(r.text("a"), n);
        else if (facet == "brand") brands.emplace_back(r.text("b"), n);
        else if (facet == "price") prices[{r.text("a"), std::stoll(r.text("b"))}] += n;
        else if (facet == "attribute") attributes[r.text("a")].emplace_back(r.text("c"), n);
      }
      json categories = json::array();
      std::sort(children.begin(), children.end(),
                [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
      for (const auto& [id, n] : children)
        if (auto c = catalog_.find_category(tx, id))
          categories.push_back({{"id", id}, {"slug", (*c)["slug"]}, {"name", (*c)["name"]}, {"count", n}});
      json price_buckets = json::array();
      for (const auto& [bucket, n] : prices)
        price_buckets.push_back({{"currency", bucket.first},
                                 {"min", bucket.second},
                                 {"max", price_bucket_end(bucket.second) - 1},
                                 {"count", n}});
      json attribute_facets = json::object();
      for (auto& [key, counts] : attributes) attribute_facets[key] = top(std::move(counts));
      facets = {{"category", std::move(categories)},
                {"brand", top(std::move(brands))},
                {"price", std::move(price_buckets)},
                {"attributes", std::move(attribute_facets)}};
      counts_->store(cache_key, total, facets);
    }

    // The page.
    std::string sort = q.sort.empty() ? (query_words.empty() ? "newest" : "relevance") : q.sort;
    std::vector<SortKey> order;
    if (sort == "relevance") order = {{text.score, true, true}, {"d.product_id", true, false}};
    else if (sort == "price_asc") order = {{"d.price_min", false, true}, {"d.product_id", false, false}};
    else if (sort == "price_desc") order = {{"d.price_min", true, true}, {"d.product_id", true, false}};
    else if (sort == "rating")
      order = {{"d.rating", true, true}, {"d.rating_count", true, true}, {"d.product_id", true, false}};
    else order = {{"d.published_at", true, false}, {"d.product_id", true, false}};
    Sql page = s;
    std::string page_where = where;
    if (q.cursor) page_where += " AND " + after(page, sort, order, *q.cursor);
    std::string sql = "SELECT d.doc, d.product_id, " + text.score + " AS score, d.published_at, d.price_min, d.rating," +
                      " d.rating_count" + (distance.empty() ? "" : ", " + distance + " AS distance_km") + " FROM " +
                      text.from + " WHERE " + page_where + " ORDER BY " + order_by(order) + " LIMIT " +
                      page.bind(int64_t(q.limit + 1));
    auto rows = tx.query(sql, page.params);
    // Their hits, apart: the sort above reads narrow rows only.
    std::map<int64_t, std::string> hits;
    if (!rows.empty()) {
      std::vector<std::string> docs;
      for (size_t i = 0; i < rows.size() && int(i) < q.limit; ++i) docs.push_back(std::to_string(rows[i].integer("doc")));
      std::string in;
      for (const auto& doc : docs) in += (in.empty() ? "" : ", ") + doc;  // integers this query read
      for (const auto& r : tx.query("SELECT doc, hit FROM search_product_hits WHERE doc IN (" + in + ")"))
        hits[r.integer("doc")] = r.text("hit");
    }
    json items = json::array();
    for (size_t i = 0; i < rows.size() && int(i) < q.limit; ++i) {
      auto it = hits.find(rows[i].integer("doc"));
      if (it == hits.end()) continue;
      json hit = json::parse(it->second);
      if (!distance.empty()) hit["distance_km"] = round_to(rows[i].real("distance_km"), 0.1);
      items.push_back(std::move(hit));
    }
    json next = nullptr;
    if (int(rows.size()) > q.limit) {
      const auto& last = rows[size_t(q.limit) - 1];
      json position = json::array({sort});
      if (sort == "relevance") position.push_back(last.real("score"));
      else if (sort == "price_asc" || sort == "price_desc") position.push_back(last.integer("price_min"));
      else if (sort == "rating") {
        position.push_back(last.real("rating"));
        position.push_back(last.integer("rating_count"));
      } else position.push_back(last.text("published_at"));
      position.push_back(last.text("product_id"));
      next = api::encode_cursor(position);
    }
    json data = {{"items", std::move(items)}, {"total", total}, {"facets", std::move(facets)}, {"expanded", std::move(expanded)}};
    return Page{std::move(data), std::move(next)};
  });
}

Page Search::sellers(const SellerQuery& q) {
  return db_.read([&](db::Tx& tx) {
    Sql s;
    json expanded = json::object();
    std::vector<std::string> query_words = words(q.q);
    TextIndex::Match text{"search_sellers d", "", "0"};
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
