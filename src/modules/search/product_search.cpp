// Products search finds: the match (words and filters), its total and facet
// counts, and one page of it in the asked order after the cursor.
#include <cmath>

#include "http/paging.hpp"
#include "modules/search/counts_cache.hpp"
#include "modules/search/module.hpp"
#include "modules/search/sql.hpp"
#include "modules/search/tables.hpp"
#include "modules/search/text.hpp"

namespace souq::search {

// What a product query matches, as SQL over search_products d.
struct ProductMatch {
  Sql sql;                   // the filters other than the category and attributes, and all parameters
  TextIndex::Match text{"search_products d", "", "0", "d.doc"};
  std::string category_column, category_param;  // "d.cat<depth>", "$n"; empty without a category
  std::vector<std::string> ancestors;            // ids of the category's ancestors, root first
  int child_level = 0;                           // the category facet counts children at this depth
  std::vector<std::string> attribute_filters;    // "a.key = $k AND a.value_key IN (…)" of an attribute row
  std::vector<std::string> facet_keys;           // attributes to count
  std::string distance;                          // SQL of the distance from the point, or ""
  // Only a category and brands: the counts read indexes of search_products alone.
  bool by_index = false;
  // Words and nothing else: a relevance page can be ranked where the words live.
  bool words_only = false;

  std::string where() const { return sql.where.empty() ? "1 = 1" : sql.where; }
  std::string in_category() const {
    return category_column.empty() ? "" : " AND " + category_column + " = " + category_param;
  }
};

namespace {

// Sorted by price or rating, a match this large is best read in the order of
// the sort's index, skipping what is outside it (about 21 × catalogue / total
// rows), rather than gathered and sorted whole.
constexpr int64_t kLargeMatch = 10'000;

std::vector<std::string> folded(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) out.push_back(fold(v));
  return out;
}

ProductMatch match_of(const ProductQuery& q, const TextIndex::Match* text, Sql sql, catalog::Catalog& catalog, db::Tx& tx) {
  ProductMatch m;
  m.sql = std::move(sql);
  if (text) m.text = *text;
  if (!m.text.where.empty()) m.sql.add(m.text.where);
  json keys = json::array();
  if (q.category) {
    auto category = catalog.find_category(tx, *q.category);
    if (!category) throw ApiError::validation({{"category", "no such category"}});
    int depth = (*category)["depth"].get<int>();
    m.category_column = "d.cat" + std::to_string(depth);
    m.category_param = m.sql.bind((*category)["id"].get<std::string>());
    std::string path = (*category)["path"];
    int level = 0;
    for (size_t from = 1, slash; level++ < depth && (slash = path.find('/', from)) != std::string::npos; from = slash + 1)
      m.ancestors.push_back(path.substr(from, slash - from));
    m.child_level = depth + 1;
    for (const auto& def : (*category)["attributes"])
      if (def.value("facet", false)) keys.push_back(def.value("key", ""));
  }
  if (q.facets) keys = *q.facets;
  for (const auto& k : keys)
    if (k.is_string() && std::find(m.facet_keys.begin(), m.facet_keys.end(), k.get<std::string>()) == m.facet_keys.end())
      m.facet_keys.push_back(k);
  Sql& s = m.sql;
  if (!q.brands.empty()) s.add("d.brand_key IN (" + s.list(folded(q.brands)) + ")");
  if (!q.conditions.empty()) s.add("d.condition IN (" + s.list(q.conditions) + ")");
  if (!q.cities.empty()) s.add("d.city_key IN (" + s.list(folded(q.cities)) + ")");
  if (q.seller_id) s.add("d.seller_id = " + s.bind(*q.seller_id));
  if (q.currency) s.add("d.currency = " + s.bind(*q.currency));
  if (q.min_price) s.add("d.price_min >= " + s.bind(*q.min_price));
  if (q.max_price) s.add("d.price_min <= " + s.bind(*q.max_price));
  if (q.in_stock) s.add("d.in_stock = 1");
  for (const auto& [key, values] : q.attributes)
    m.attribute_filters.push_back("a.key = " + s.bind(key) + " AND a.value_key IN (" + s.list(folded(values)) + ")");
  if (q.lat && q.lng && q.radius_km) {
    // A box around the point first (indexed), then the exact distance.
    double dlat = *q.radius_km / 111.0;
    double dlng = *q.radius_km / std::max(1.0, 111.0 * std::cos(*q.lat * 3.14159265358979323846 / 180.0));
    s.add("d.lat BETWEEN " + s.bind(*q.lat - dlat) + " AND " + s.bind(*q.lat + dlat));
    s.add("d.lng BETWEEN " + s.bind(*q.lng - dlng) + " AND " + s.bind(*q.lng + dlng));
    m.distance = "souq_distance_km(d.lat, d.lng, " + s.bind(*q.lat) + ", " + s.bind(*q.lng) + ")";
    s.add(m.distance + " <= " + s.bind(*q.radius_km));
  }
  m.words_only = !m.text.where.empty() && m.sql.where == m.text.where && m.attribute_filters.empty() &&
                 m.category_column.empty();
  m.by_index = m.text.where.empty() && m.distance.empty() && q.attributes.empty() && !q.min_price && !q.max_price &&
               !q.currency && q.conditions.empty() && q.cities.empty() && !q.seller_id && !q.in_stock;
  return m;
}

// The SQL of the total and the facet counts, and its parameters. One pass
// over the matches; or, when the match is a category (or brands), one
// aggregate per facet, each reading an index alone: the category filter then
// also names its ancestors (the browse index is cat0, cat1, cat2, …), and
// attribute rows, which carry their product's cat0 … cat2, are counted as a
// range of their own index.
std::pair<std::string, db::Params> counts_sql(const ProductMatch& m, const ProductQuery& q) {
  Sql f = m.sql;
  std::string where = m.where() + m.in_category();
  std::vector<std::string> lineage;  // "= $n" of cat0, cat1 … down to the category
  for (size_t level = 0; level < m.ancestors.size(); ++level) {
    lineage.push_back(" = " + f.bind(m.ancestors[level]));
    where += " AND d.cat" + std::to_string(level) + lineage.back();
  }
  if (!m.category_column.empty()) lineage.push_back(" = " + m.category_param);
  // Every product with the value in the category at once (a range of the
  // attribute rows' index), not a probe per product.
  std::string in_lineage;
  for (size_t level = 0; level < lineage.size() && level < 3; ++level)
    in_lineage += " AND a.cat" + std::to_string(level) + lineage[level];
  for (const auto& a : m.attribute_filters)
    where += " AND d.doc IN (SELECT a.doc FROM search_product_attributes a WHERE " + a + in_lineage + ")";
  std::string child = m.child_level < kCategoryLevels ? "d.cat" + std::to_string(m.child_level) : "CAST(NULL AS TEXT)";
  std::string keys = m.facet_keys.empty() ? "" : f.list(m.facet_keys);
  const std::string& from = m.text.from;
  std::string head = "SELECT 'total' AS facet, CAST(NULL AS TEXT) AS a, CAST(NULL AS TEXT) AS b, CAST(NULL AS TEXT) AS c,"
                     " COUNT(*) AS n";
  std::string sql;
  if (!m.by_index) {
    sql = "WITH m AS MATERIALIZED (SELECT d.doc, " + child + " AS cat, d.brand_key, d.brand, d.currency, d.price_bucket FROM " +
          from + " WHERE " + where + ") " + head + " FROM m" +
          " UNION ALL SELECT 'category', cat, NULL, NULL, COUNT(*) FROM m WHERE cat IS NOT NULL GROUP BY cat"
          " UNION ALL SELECT 'brand', brand_key, MIN(brand), NULL, COUNT(*) FROM m WHERE brand_key IS NOT NULL"
          " GROUP BY brand_key"
          " UNION ALL SELECT 'price', currency, CAST(price_bucket AS TEXT), NULL, COUNT(*) FROM m"
          " GROUP BY currency, price_bucket";
    if (!keys.empty())
      sql += " UNION ALL SELECT 'attribute', a.key, a.value_key, MIN(a.value), COUNT(*) FROM m"
             " JOIN search_product_attributes a ON a.doc = m.doc WHERE a.key IN (" + keys + ")"
             " GROUP BY a.key, a.value_key";
    return {sql, f.params};
  }
  std::string matches = " FROM " + from + " WHERE " + where;
  sql = head + matches;
  if (m.child_level < kCategoryLevels)
    sql += " UNION ALL SELECT 'category', " + child + ", NULL, NULL, COUNT(*)" + matches + " AND " + child +
           " IS NOT NULL GROUP BY " + child;
  sql += " UNION ALL SELECT 'brand', d.brand_key, MIN(d.brand), NULL, COUNT(*)" + matches +
         " AND d.brand_key IS NOT NULL GROUP BY d.brand_key"
         " UNION ALL SELECT 'price', d.currency, CAST(d.price_bucket AS TEXT), NULL, COUNT(*)" + matches +
         " GROUP BY d.currency, d.price_bucket";
  if (!keys.empty() && q.brands.empty() && lineage.size() <= 3) {
    std::string rows;
    for (size_t level = 0; level < lineage.size(); ++level) rows += " AND a.cat" + std::to_string(level) + lineage[level];
    sql += " UNION ALL SELECT 'attribute', a.key, a.value_key, MIN(a.value), COUNT(*) FROM search_product_attributes a"
           " WHERE a.key IN (" + keys + ")" + rows + " GROUP BY a.key, a.value_key";
  } else if (!keys.empty()) {
    sql += " UNION ALL SELECT 'attribute', a.key, a.value_key, MIN(a.value), COUNT(*) FROM " + from +
           " JOIN search_product_attributes a ON a.doc = d.doc WHERE " + where + " AND a.key IN (" + keys +
           ") GROUP BY a.key, a.value_key";
  }
  return {sql, f.params};
}

// The sort's keys, the product id last.
std::vector<SortKey> order_of(const std::string& sort, const std::string& score) {
  if (sort == "relevance") return {{score, true, true}, {"d.doc", true, true}};
  if (sort == "price_asc") return {{"d.price_min", false, true}, {"d.product_id", false, false}};
  if (sort == "price_desc") return {{"d.price_min", true, true}, {"d.product_id", true, false}};
  if (sort == "rating") return {{"d.rating", true, true}, {"d.rating_count", true, true}, {"d.product_id", true, false}};
  return {{"d.published_at", true, false}, {"d.product_id", true, false}};
}

// The cursor of the page that ends at `last`: [sort, its keys' values …].
std::string cursor_at(const std::string& sort, const db::Row& last) {
  if (sort == "relevance") return api::encode_cursor(json::array({sort, last.real("score"), last.integer("doc")}));
  json position = json::array({sort});
  if (sort == "price_asc" || sort == "price_desc") position.push_back(last.integer("price_min"));
  else if (sort == "rating") {
    position.push_back(last.real("rating"));
    position.push_back(last.integer("rating_count"));
  } else position.push_back(last.text("published_at"));
  position.push_back(last.text("product_id"));
  return api::encode_cursor(position);
}

double round_to(double x, double step) { return std::round(x / step) * step; }

}  // namespace

Page Search::products(const ProductQuery& q) {
  return db_.read([&](db::Tx& tx) {
    Sql sql;
    json expanded = json::object();
    std::vector<std::string> query_words = words(q.q);
    std::optional<TextIndex::Match> text;
    if (!query_words.empty()) text = text_->match(kProductText, expand(tx, kProductText, query_words, expanded), sql.params);
    ProductMatch m = match_of(q, text ? &*text : nullptr, std::move(sql), catalog_, tx);
    auto [total, facets] = product_counts(tx, m, q);
    std::string sort = q.sort.empty() ? (query_words.empty() ? "newest" : "relevance") : q.sort;
    Page page = product_page(tx, m, q, sort, total);
    page.data = {{"items", std::move(page.data)}, {"total", total}, {"facets", std::move(facets)},
                 {"expanded", std::move(expanded)}};
    return page;
  });
}

std::pair<int64_t, json> Search::product_counts(db::Tx& tx, const ProductMatch& m, const ProductQuery& q) {
  auto [sql, params] = counts_sql(m, q);
  std::string key = sql;
  for (const auto& v : params) key += '\x1f' + (v.is_null() ? std::string("\x1e") : v.as_string());
  if (auto cached = counts_->find(key)) return {cached->total, cached->facets};
  int64_t total = 0;
  std::vector<std::pair<std::string, int64_t>> children, brands;
  std::map<std::pair<std::string, int64_t>, int64_t> prices;
  std::map<std::string, std::vector<std::pair<std::string, int64_t>>> attributes;
  for (const auto& k : m.facet_keys) attributes[k];
  for (const auto& r : tx.query(sql, params)) {
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
    price_buckets.push_back(
        {{"currency", bucket.first}, {"min", bucket.second}, {"max", price_bucket_end(bucket.second) - 1}, {"count", n}});
  json attribute_facets = json::object();
  for (auto& [k, counts] : attributes) attribute_facets[k] = top(std::move(counts));
  json facets = {{"category", std::move(categories)},
                 {"brand", top(std::move(brands))},
                 {"price", std::move(price_buckets)},
                 {"attributes", std::move(attribute_facets)}};
  counts_->store(key, total, facets);
  return {total, std::move(facets)};
}

// Page::data holds the items here; products() wraps them.
Page Search::product_page(db::Tx& tx, const ProductMatch& m, const ProductQuery& q, const std::string& sort, int64_t total) {
  std::vector<SortKey> order = order_of(sort, m.text.score);
  Sql page = m.sql;
  std::string where = m.where();
  // A page probes each candidate's attribute rows.
  for (const auto& a : m.attribute_filters)
    where += " AND EXISTS (SELECT 1 FROM search_product_attributes a WHERE a.doc = d.doc AND " + a + ")";
  if (!m.category_column.empty()) {
    bool by_sort_index = m.by_index && total >= kLargeMatch && (sort == "price_asc" || sort == "price_desc" || sort == "rating");
    // The category's column is then not offered to the planner as an index.
    where += by_sort_index ? " AND " + m.category_column + " || '' = " + m.category_param : m.in_category();
  }
  std::string columns = "d.doc, d.product_id, d.published_at, d.price_min, d.rating, d.rating_count";
  std::string sql;
  if (sort == "relevance" && m.words_only) {
    // Ranked where the words live; the page's documents read afterwards.
    std::vector<SortKey> inner = {{m.text.score, true, true}, {m.text.doc, true, true}};
    if (q.cursor) where += " AND " + after(page, sort, inner, *q.cursor);
    sql = "SELECT " + columns + ", t.score FROM (SELECT " + m.text.doc + " AS doc, " + m.text.score + " AS score FROM " +
          kProductText.fts + " WHERE " + where + " ORDER BY " + order_by(inner) + " LIMIT " +
          page.bind(int64_t(q.limit + 1)) + ") t JOIN search_products d ON d.doc = t.doc ORDER BY t.score DESC, t.doc DESC";
  } else {
    if (q.cursor) where += " AND " + after(page, sort, order, *q.cursor);
    sql = "SELECT " + columns + ", " + m.text.score + " AS score" +
          (m.distance.empty() ? "" : ", " + m.distance + " AS distance_km") + " FROM " + m.text.from + " WHERE " + where +
          " ORDER BY " + order_by(order) + " LIMIT " + page.bind(int64_t(q.limit + 1));
  }
  auto rows = tx.query(sql, page.params);
  // Their hits, apart: the sort above reads narrow rows only.
  size_t shown = std::min(rows.size(), size_t(q.limit));
  std::map<int64_t, std::string> hits;
  if (shown > 0) {
    std::string in;  // integers this query read
    for (size_t i = 0; i < shown; ++i) in += (i ? ", " : "") + std::to_string(rows[i].integer("doc"));
    for (const auto& r : tx.query("SELECT doc, hit FROM search_product_hits WHERE doc IN (" + in + ")"))
      hits[r.integer("doc")] = r.text("hit");
  }
  json items = json::array();
  for (size_t i = 0; i < shown; ++i) {
    auto it = hits.find(rows[i].integer("doc"));
    if (it == hits.end()) continue;
    json hit = json::parse(it->second);
    if (!m.distance.empty()) hit["distance_km"] = round_to(rows[i].real("distance_km"), 0.1);
    items.push_back(std::move(hit));
  }
  json next = rows.size() > shown ? json(cursor_at(sort, rows[shown - 1])) : json(nullptr);
  return Page{std::move(items), std::move(next)};
}

}  // namespace souq::search
