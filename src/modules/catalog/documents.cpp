// How products are shown: the product page, the rows of a product list, and
// the document the search index keeps. Each needs more than the product's
// own row (SKUs, images, categories, the seller's name and rating); those
// are read for a whole page or batch at once, a query per kind, never a
// query per product.
#include <algorithm>
#include <cmath>
#include <set>

#include "modules/catalog/internal.hpp"
#include "modules/catalog/module.hpp"

namespace souq::catalog {

namespace {

template <class Rows>
std::vector<std::string> distinct(const Rows& rows, const char* column) {
  std::set<std::string> seen;
  for (const auto& r : rows) seen.insert(r.text(column));
  return {seen.begin(), seen.end()};
}

}  // namespace

Catalog::Related Catalog::related(db::Tx& tx, const std::vector<db::Row>& products) {
  Related r;
  std::vector<std::string> ids = distinct(products, "id");
  r.skus = grouped(tx, std::string("SELECT ") + kSkuColumns + " FROM skus", "product_id", ids,
                   " AND deleted_at IS NULL ORDER BY product_id, position, id");
  r.images = grouped(tx, "SELECT id, product_id, status, sizes, width, height FROM product_images", "product_id", ids,
                     " AND deleted_at IS NULL ORDER BY product_id, position, id");
  // The products' categories, then the ancestors their paths name.
  auto read_categories = [&](const std::vector<std::string>& wanted) {
    for (auto& [id, found] : grouped(tx, "SELECT id, slug, name, path FROM categories", "id", wanted, ""))
      r.categories.emplace(id, found.front());
  };
  read_categories(distinct(products, "category_id"));
  std::set<std::string> ancestors;
  for (const auto& [id, c] : r.categories)
    for (const auto& a : path_ids(c.text("path")))
      if (!r.categories.count(a)) ancestors.insert(a);
  read_categories({ancestors.begin(), ancestors.end()});
  std::vector<std::string> sellers = distinct(products, "seller_id");
  r.seller_names = identity_.business_names(tx, sellers);
  std::vector<std::string> unnamed;
  for (const auto& s : sellers)
    if (!r.seller_names.count(s)) unnamed.push_back(s);
  if (!unnamed.empty()) r.people = identity_.summaries(tx, unnamed);
  for (auto& [seller, stats] : grouped(tx, "SELECT seller_id, rating_count, rating_total FROM seller_review_stats",
                                        "seller_id", sellers, ""))
    r.seller_ratings[seller] = {stats.front().integer("rating_count"), stats.front().integer("rating_total")};
  return r;
}

json Catalog::image_urls(const std::string& product_id, const std::string& image_id, const json& sizes) const {
  json urls = json::object();
  std::string base = media_base();
  for (const auto& w : sizes)
    urls[std::to_string(w.get<int>())] =
        base + "/products/" + product_id + "/" + image_id + "/" + std::to_string(w.get<int>()) + ".webp";
  return urls;
}

json Catalog::thumbnail(const std::string& product_id, const std::vector<db::Row>& images) const {
  for (const auto& i : images) {
    if (i.text("status") != "ready") continue;
    json sizes = i.json("sizes");
    if (sizes.empty()) return nullptr;
    int smallest = *std::min_element(sizes.begin(), sizes.end());
    return image_urls(product_id, i.text("id"), json::array({smallest}))[std::to_string(smallest)];
  }
  return nullptr;
}

json Catalog::render_row(const db::Row& p, const Related& r, bool owner_view) const {
  std::string id = p.text("id");
  json skus = json::array();
  int64_t available = 0;
  for (const auto& s : r.of(r.skus, id)) {
    int64_t free = s.integer("stock") - s.integer("reserved");
    available += free;
    json sku = {{"id", s.text("id")},          {"code", s.nullable_text("code")}, {"price", s.integer("price")},
                {"currency", s.text("currency")}, {"stock", free},                 {"attributes", s.json("attributes")}};
    if (owner_view) {
      sku["on_hand"] = s.integer("stock");
      sku["reserved"] = s.integer("reserved");
    }
    skus.push_back(std::move(sku));
  }
  json images = json::array(), image_details = json::array();
  for (const auto& i : r.of(r.images, id)) {
    if (i.text("status") != "ready" && !owner_view) continue;
    json sizes = i.json("sizes");
    json urls = image_urls(id, i.text("id"), sizes);
    if (i.text("status") == "ready" && !sizes.empty()) images.push_back(urls[std::to_string(sizes[0].get<int>())]);
    image_details.push_back({{"id", i.text("id")},
                             {"status", i.text("status")},
                             {"width", i.is_null("width") ? json(nullptr) : json(i.integer("width"))},
                             {"height", i.is_null("height") ? json(nullptr) : json(i.integer("height"))},
                             {"urls", urls}});
  }
  json category = nullptr;
  if (auto c = r.categories.find(p.text("category_id")); c != r.categories.end()) {
    json crumbs = json::array();
    for (const auto& cid : r.lineage(c->first))
      if (auto a = r.categories.find(cid); a != r.categories.end())
        crumbs.push_back({{"id", cid}, {"slug", a->second.text("slug")}, {"name", a->second.text("name")}});
    category = {{"id", c->first}, {"slug", c->second.text("slug")}, {"name", c->second.text("name")}, {"path", crumbs}};
  }
  std::string seller = p.text("seller_id");
  auto stats = r.seller_ratings.count(seller) ? r.seller_ratings.at(seller) : std::pair<int64_t, int64_t>{0, 0};
  json seller_rating = rating_of(stats.first, stats.second);
  std::string seller_name = r.seller_names.count(seller) ? r.seller_names.at(seller)
                                                         : identity::summary_of(r.people, seller).value("display_name", "");
  json out = {
      {"id", id},
      {"title", p.text("title")},
      {"description", p.text("description")},
      {"brand", p.nullable_text("brand")},
      {"category", category},
      {"attributes", p.json("attributes")},
      {"condition", p.text("condition")},
      {"city", p.nullable_text("city")},
      {"location", p.is_null("lat") ? json(nullptr) : json{{"lat", p.real("lat")}, {"lng", p.real("lng")}}},
      {"status", p.text("status")},
      {"price", p.integer("price_min")},
      {"price_max", p.integer("price_max")},
      {"currency", p.text("currency")},
      {"stock", available},
      {"skus", skus},
      {"images", images},
      {"image_details", image_details},
      {"seller",
       {{"id", seller}, {"name", seller_name}, {"rating", seller_rating["average"]}, {"rating_count", seller_rating["count"]}}},
      {"rating", rating_of(p.integer("rating_count"), p.integer("rating_total"))},
      {"version", p.integer("version")},
      {"created_at", p.text("created_at")},
      {"updated_at", p.text("updated_at")},
      {"published_at", p.nullable_text("published_at")}};
  if (owner_view) {
    out["rejection_reason"] = p.nullable_text("rejection_reason");
    out["seller_active"] = p.integer("seller_active") != 0;
  }
  return out;
}

json Catalog::render_product(db::Tx& tx, const db::Row& product, bool owner_view) {
  return render_row(product, related(tx, {product}), owner_view);
}

std::vector<json> Catalog::search_documents(db::Tx& tx, const std::vector<std::string>& product_ids) {
  std::vector<json> out;
  if (product_ids.empty()) return out;
  db::Params params;
  std::string in = db::bind_list(params, product_ids);
  // What should be found: listed, not deleted, of a seller in good standing.
  auto fetched = tx.query(std::string("SELECT ") + kProductColumns + " FROM products p WHERE p.id IN (" + in + ")" +
                              " AND p.deleted_at IS NULL AND p.status = 'active' AND p.seller_active = 1",
                          params);
  std::vector<db::Row> rows(fetched.begin(), fetched.end());
  Related r = related(tx, rows);
  for (const auto& row : rows) {
    std::string id = row.text("id");
    json category_names = json::array();
    for (const auto& cid : r.lineage(row.text("category_id")))
      if (auto c = r.categories.find(cid); c != r.categories.end()) category_names.push_back(c->second.text("name"));
    json sku_attributes = json::array();
    int64_t available = 0;
    for (const auto& s : r.of(r.skus, id)) {
      sku_attributes.push_back(s.json("attributes"));
      available += s.integer("stock") - s.integer("reserved");
    }
    auto c = r.categories.find(row.text("category_id"));
    std::string seller = row.text("seller_id");
    json rating = rating_of(row.integer("rating_count"), row.integer("rating_total"));
    out.push_back({{"id", id},
                   {"image", thumbnail(id, r.of(r.images, id))},
                   {"seller_id", seller},
                   {"seller_name", r.seller_names.count(seller) ? r.seller_names.at(seller) : ""},
                   {"title", row.text("title")},
                   {"description", row.text("description")},
                   {"brand", row.nullable_text("brand")},
                   {"category_id", row.text("category_id")},
                   {"category_path", c == r.categories.end() ? "" : c->second.text("path")},
                   {"category_names", category_names},
                   {"attributes", row.json("attributes")},
                   {"sku_attributes", sku_attributes},
                   {"condition", row.text("condition")},
                   {"city", row.nullable_text("city")},
                   {"lat", row.is_null("lat") ? json(nullptr) : json(row.real("lat"))},
                   {"lng", row.is_null("lng") ? json(nullptr) : json(row.real("lng"))},
                   {"price_min", row.integer("price_min")},
                   {"price_max", row.integer("price_max")},
                   {"currency", row.text("currency")},
                   {"in_stock", available > 0},
                   {"rating", rating["average"]},
                   {"rating_count", rating["count"]},
                   {"published_at", row.nullable_text("published_at")},
                   {"created_at", row.text("created_at")}});
  }
  return out;
}

std::vector<std::string> Catalog::product_ids(db::Tx& tx, const std::string& after, int limit,
                                              const std::optional<std::string>& seller_id) {
  std::vector<std::string> out;
  auto rows = seller_id ? tx.query("SELECT id FROM products WHERE seller_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                                   {*seller_id, after, int64_t(limit)})
                        : tx.query("SELECT id FROM products WHERE id > $1 ORDER BY id LIMIT $2", {after, int64_t(limit)});
  for (const auto& r : rows) out.push_back(r.text("id"));
  return out;
}

}  // namespace souq::catalog
