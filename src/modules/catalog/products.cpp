// Products and their SKUs: created by approved sellers (with SKUs in one
// call), edited, moderated, archived, soft-deleted; the public page cached.
#include <algorithm>
#include <cmath>
#include <set>

#include "core/id.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "modules/audit/module.hpp"
#include "modules/catalog/module.hpp"

namespace souq::catalog {
namespace {

constexpr const char* kProductColumns =
    "p.id, p.seller_id, p.title, p.description, p.brand, p.category_id, p.attributes, p.condition, p.city, p.lat, p.lng,"
    " p.status, p.rejection_reason, p.currency, p.price_min, p.price_max, p.rating_count, p.rating_total, p.version,"
    " p.created_at, p.updated_at, p.published_at, p.deleted_at";

constexpr const char* kSkuColumns =
    "id, product_id, code, price, currency, stock, reserved, attributes, position, created_at, updated_at, deleted_at";

json rating_of(int64_t count, int64_t total) {
  if (count == 0) return {{"average", nullptr}, {"count", 0}};
  return {{"average", std::round(double(total) * 100.0 / double(count)) / 100.0}, {"count", count}};
}

std::optional<db::Row> load_product(db::Tx& tx, const std::string& id, bool lock = false) {
  return tx.query_one(std::string("SELECT ") + kProductColumns + " FROM products p WHERE p.id = $1" +
                          std::string(lock ? tx.for_update() : ""),
                      {id});
}

// "https://cdn.example/media/" and "…/media" make the same URLs.
std::string without_trailing_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// Content that moderation looks at (prices and stock are not).
const std::set<std::string> kModerated = {"title", "description", "brand", "category", "attributes", "condition"};

}  // namespace

Catalog::Catalog(db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, identity::Identity& identity,
                 storage::Storage& files, Options options)
    : db_(db), queue_(queue), outbox_(outbox), identity_(identity), files_(files), options_(std::move(options)),
      cache_(std::chrono::duration_cast<std::chrono::milliseconds>(options_.cache_ttl), options_.cache_capacity),
      media_base_(without_trailing_slash(options_.media_base_url)) {}

void Catalog::use_media_base(const std::string& url) {
  std::lock_guard lock(media_mutex_);
  if (options_.media_base_url.empty()) media_base_ = without_trailing_slash(url);
}

std::string Catalog::media_base() const {
  std::lock_guard lock(media_mutex_);
  return media_base_;
}

void Catalog::check_attributes(const json& definitions, const json& values, bool require_all) {
  json errors = json::object();
  std::map<std::string, const json*> defs;
  for (const auto& d : definitions) defs[d.value("key", "")] = &d;
  for (const auto& [key, value] : values.items()) {
    auto it = defs.find(key);
    if (it == defs.end()) {
      errors[key] = "is not an attribute of this category";
      continue;
    }
    const json& d = *it->second;
    std::string type = d.value("type", "text");
    bool ok = (type == "text" && value.is_string() && !value.get<std::string>().empty() && value.get<std::string>().size() <= 200) ||
              (type == "number" && value.is_number()) || (type == "integer" && value.is_number_integer()) ||
              (type == "boolean" && value.is_boolean()) ||
              (type == "enum" && value.is_string() && d.contains("values") &&
               std::find(d["values"].begin(), d["values"].end(), value) != d["values"].end());
    if (!ok)
      errors[key] = type == "enum" ? "must be one of " + d["values"].dump() : "must be of type " + type;
  }
  if (require_all)
    for (const auto& [key, d] : defs)
      if (d->value("required", false) && !values.contains(key)) errors[key] = "is required in this category";
  if (!errors.empty())
    throw ApiError::unprocessable("invalid_attributes", "Some attributes do not fit the category.", {{"attributes", errors}});
}

void Catalog::check_sku_attributes(const json& definitions, const json& skus) {
  for (size_t i = 0; i < skus.size(); ++i) {
    const json& attributes = skus[i].contains("attributes") ? skus[i]["attributes"] : json::object();
    try {
      check_attributes(definitions, attributes, false);
    } catch (const ApiError& e) {
      throw ApiError::unprocessable("invalid_attributes", "Some SKU attributes do not fit the category.",
                                    {{"sku", i}, {"attributes", e.details().value("attributes", json::object())}});
    }
  }
}

json Catalog::product_definitions(db::Tx& tx, const std::string& category_id) {
  auto category = find_category(tx, category_id);
  return category ? (*category)["attributes"] : json::array();
}

db::Row Catalog::owned_product(db::Tx& tx, const identity::Principal& who, const std::string& id, bool lock) {
  auto row = load_product(tx, id, lock);
  if (!row || !row->is_null("deleted_at")) throw ApiError::not_found("No such product.");
  if (row->text("seller_id") != who.user_id && !who.has_role("admin"))
    throw ApiError(403, "not_product_owner", "Only the product's seller changes it.");
  return *row;
}

void Catalog::changed(db::Tx& tx, const std::string& product_id, const std::string& event, const std::string& request_id) {
  // Prices and currency follow the live SKUs (one currency: check_skus); a
  // draft without SKUs has no price.
  auto range = tx.query_one("SELECT MIN(price) AS lo, MAX(price) AS hi, MIN(currency) AS currency, COUNT(*) AS n"
                            " FROM skus WHERE product_id = $1 AND deleted_at IS NULL",
                            {product_id});
  if (range->integer("n") > 0)
    tx.exec("UPDATE products SET price_min = $2, price_max = $3, currency = $4 WHERE id = $1",
            {product_id, range->integer("lo"), range->integer("hi"), range->text("currency")});
  else
    tx.exec("UPDATE products SET price_min = 0, price_max = 0 WHERE id = $1", {product_id});
  tx.exec("UPDATE products SET version = version + 1, updated_at = $2 WHERE id = $1", {product_id, now_text()});
  auto row = load_product(tx, product_id);
  outbox_.emit(tx, event,
               {{"product_id", product_id}, {"seller_id", row->text("seller_id")}, {"status", row->text("status")},
                {"title", row->text("title")}},
               product_id, request_id);
  forget_at_commit(tx, product_id);
}

void Catalog::forget_at_commit(db::Tx& tx, const std::string& product_id) {
  tx.after_commit([this, product_id] {
    cache_.forget(product_id);
    list_cache_.bump();
    if (publish_) publish_(product_id);
  });
}

void Catalog::forget_at_commit(db::Tx& tx, const std::vector<StockLine>& lines) {
  std::set<std::string> products;
  for (const auto& l : lines)
    if (auto p = tx.query_one("SELECT product_id FROM skus WHERE id = $1", {l.sku_id})) products.insert(p->text("product_id"));
  for (const auto& id : products) forget_at_commit(tx, id);
}

json Catalog::image_urls(const std::string& product_id, const std::string& image_id, const json& sizes) const {
  json urls = json::object();
  std::string base = media_base();
  for (const auto& w : sizes)
    urls[std::to_string(w.get<int>())] =
        base + "/products/" + product_id + "/" + image_id + "/" + std::to_string(w.get<int>()) + ".webp";
  return urls;
}

json Catalog::render_product(db::Tx& tx, const db::Row& p, bool owner_view) {
  std::string id = p.text("id");
  json skus = json::array();
  int64_t available = 0;
  for (const auto& s : tx.query(std::string("SELECT ") + kSkuColumns +
                                    " FROM skus WHERE product_id = $1 AND deleted_at IS NULL ORDER BY position, id",
                                {id})) {
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
  for (const auto& i : tx.query("SELECT id, status, sizes, width, height FROM product_images"
                                " WHERE product_id = $1 AND deleted_at IS NULL ORDER BY position, id",
                                {id})) {
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
  auto category = tx.query_one("SELECT id, slug, name, path FROM categories WHERE id = $1", {p.text("category_id")});
  json crumbs = json::array();
  if (category) {
    std::string path = category->text("path");
    std::vector<std::string> ids;
    for (size_t s = 1, e; (e = path.find('/', s)) != std::string::npos; s = e + 1) ids.push_back(path.substr(s, e - s));
    db::Params params;
    std::string in = db::bind_list(params, ids);
    std::map<std::string, json> found;
    for (const auto& c : tx.query("SELECT id, slug, name FROM categories WHERE id IN (" + in + ")", params))
      found[c.text("id")] = {{"id", c.text("id")}, {"slug", c.text("slug")}, {"name", c.text("name")}};
    for (const auto& cid : ids)
      if (found.count(cid)) crumbs.push_back(found[cid]);
  }
  std::string seller = p.text("seller_id");
  auto people = identity_.summaries(tx, {seller});
  auto names = identity_.business_names(tx, {seller});
  auto stats = tx.query_one("SELECT rating_count, rating_total FROM seller_review_stats WHERE seller_id = $1", {seller});
  json seller_rating = rating_of(stats ? stats->integer("rating_count") : 0, stats ? stats->integer("rating_total") : 0);
  json profile = identity::summary_of(people, seller);
  json out = {
      {"id", id},
      {"title", p.text("title")},
      {"description", p.text("description")},
      {"brand", p.nullable_text("brand")},
      {"category", category ? json{{"id", category->text("id")}, {"slug", category->text("slug")},
                                   {"name", category->text("name")}, {"path", crumbs}}
                            : json(nullptr)},
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
       {{"id", seller},
        {"name", names.count(seller) ? names[seller] : profile.value("display_name", "")},
        {"rating", seller_rating["average"]},
        {"rating_count", seller_rating["count"]}}},
      {"rating", rating_of(p.integer("rating_count"), p.integer("rating_total"))},
      {"version", p.integer("version")},
      {"created_at", p.text("created_at")},
      {"updated_at", p.text("updated_at")},
      {"published_at", p.nullable_text("published_at")}};
  if (owner_view) out["rejection_reason"] = p.nullable_text("rejection_reason");
  return out;
}

// ---- SKUs

namespace {

void insert_sku(db::Tx& tx, const std::string& product_id, const json& s, int64_t position, const std::string& now) {
  tx.exec("INSERT INTO skus (id, product_id, code, price, currency, stock, reserved, attributes, position, created_at,"
          " updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $9)",
          {new_id("sku"), product_id, s.contains("code") ? db::Value(s["code"].get<std::string>()) : db::Value(nullptr),
           s.at("price").get<int64_t>(), s.at("currency").get<std::string>(), s.at("stock").get<int64_t>(),
           dump_json(s.value("attributes", json::object())), position, now});
}

// Every live SKU of a product in one currency, each with its own attributes.
void check_skus(db::Tx& tx, const std::string& product_id) {
  std::set<std::string> currencies, variants;
  for (const auto& s : tx.query("SELECT currency, attributes FROM skus WHERE product_id = $1 AND deleted_at IS NULL",
                                {product_id})) {
    currencies.insert(s.text("currency"));
    if (!variants.insert(s.json("attributes").dump()).second)
      throw ApiError::unprocessable("duplicate_variant", "Two SKUs of this product have the same attributes.",
                                    {{"attributes", s.json("attributes")}});
  }
  if (currencies.size() > 1)
    throw ApiError::unprocessable("mixed_currencies", "Every SKU of a product is priced in the same currency.",
                                  {{"currencies", std::vector<std::string>(currencies.begin(), currencies.end())}});
}

}  // namespace

// ---- products

void Catalog::require_seller(const identity::Principal& who) {
  if (!who.has_role("seller"))
    throw ApiError(403, "seller_not_approved", "Only approved sellers list products. Apply at /api/v1/seller-profiles.");
}

json Catalog::create_product(const identity::Principal& who, const json& f, const std::string& request_id) {
  require_seller(who);
  return db_.write([&](db::Tx& tx) {
    auto category = find_category(tx, f.at("category"));
    if (!category) throw ApiError::unprocessable("unknown_category", "No such category.", {{"category", f["category"]}});
    json attributes = f.value("attributes", json::object());
    bool publish = f.value("status", "active") == "active";
    check_attributes((*category)["attributes"], attributes, publish);
    check_sku_attributes((*category)["attributes"], f.at("skus"));
    std::string id = new_id("prod");
    std::string now = now_text();
    std::string status = !publish ? "draft" : options_.moderation ? "pending_review" : "active";
    const json& skus = f.at("skus");
    tx.exec("INSERT INTO products (id, seller_id, title, description, brand, category_id, attributes, condition, city,"
            " lat, lng, status, currency, price_min, price_max, created_at, updated_at, published_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, 0, $14, $14, $15)",
            {id, who.user_id, f.at("title").get<std::string>(), f.value("description", ""),
             f.contains("brand") ? db::Value(f["brand"].get<std::string>()) : db::Value(nullptr),
             (*category)["id"].get<std::string>(), dump_json(attributes), f.value("condition", "new"),
             f.contains("city") ? db::Value(f["city"].get<std::string>()) : db::Value(nullptr),
             f.contains("lat") ? db::Value(f["lat"].get<double>()) : db::Value(nullptr),
             f.contains("lng") ? db::Value(f["lng"].get<double>()) : db::Value(nullptr), status,
             skus[0].at("currency").get<std::string>(), now, status == "active" ? db::Value(now) : db::Value(nullptr)});
    int64_t position = 0;
    for (const auto& s : skus) insert_sku(tx, id, s, position++, now);
    check_skus(tx, id);
    tx.exec("UPDATE products SET version = 0 WHERE id = $1", {id});  // changed() makes it 1
    changed(tx, id, "product.created", request_id);
    return render_product(tx, *load_product(tx, id), true);
  });
}

json Catalog::product(db::Tx& tx, const std::string& id, const identity::Principal* viewer) {
  auto row = load_product(tx, id);
  if (!row) throw ApiError::not_found("No such product.");
  bool admin = viewer && viewer->has_role("admin");
  bool owner = viewer && viewer->user_id == row->text("seller_id");
  bool deleted = !row->is_null("deleted_at");
  if (admin || (owner && !deleted)) {
    json out = render_product(tx, *row, true);
    if (deleted) out["deleted_at"] = row->text("deleted_at");
    return out;
  }
  if (deleted || row->text("status") != "active") throw ApiError::not_found("No such product.");
  return render_product(tx, *row, false);
}

std::shared_ptr<const std::string> Catalog::public_product(const std::string& id) {
  if (auto page = cache_.find(id)) return page;
  uint64_t ticket = cache_.ticket();
  auto page = db_.read([&](db::Tx& tx) -> std::shared_ptr<const std::string> {
    auto row = load_product(tx, id);
    if (!row || !row->is_null("deleted_at") || row->text("status") != "active") return nullptr;
    return std::make_shared<const std::string>(dump_json(render_product(tx, *row, false)));
  });
  if (page) cache_.store(id, page, ticket);
  return page;
}

json Catalog::update_product(const identity::Principal& who, const std::string& id, const json& f,
                             const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto row = owned_product(tx, who, id);
    std::string status = row.text("status");
    json definitions;
    std::string category_id = row.text("category_id");
    if (f.contains("category")) {
      auto category = find_category(tx, f["category"]);
      if (!category) throw ApiError::unprocessable("unknown_category", "No such category.", {{"category", f["category"]}});
      category_id = (*category)["id"];
      definitions = (*category)["attributes"];
    } else {
      definitions = find_category(tx, category_id).value_or(json{{"attributes", json::array()}})["attributes"];
    }
    json attributes = f.contains("attributes") ? f["attributes"] : row.json("attributes");
    std::string next = f.value("status", status == "pending_review" || status == "rejected" ? "active" : status);
    if (f.contains("attributes") || f.contains("category") || next == "active") check_attributes(definitions, attributes, next == "active");
    if (f.contains("category")) {
      json skus = json::array();
      for (const auto& s : tx.query("SELECT attributes FROM skus WHERE product_id = $1 AND deleted_at IS NULL"
                                    " ORDER BY position, id",
                                    {id}))
        skus.push_back({{"attributes", s.json("attributes")}});
      check_sku_attributes(definitions, skus);
    }
    bool content = std::any_of(f.items().begin(), f.items().end(), [](const auto& kv) { return kModerated.count(kv.key()) > 0; });
    if (next == "active") {
      if (!tx.query_one("SELECT 1 AS x FROM skus WHERE product_id = $1 AND deleted_at IS NULL", {id}))
        throw ApiError::unprocessable("no_skus", "A product needs at least one SKU to be listed.");
      // With moderation, a new listing and changed content wait for an admin.
      if (options_.moderation && (status != "active" || content)) next = "pending_review";
    }
    std::string now = now_text();
    for (const char* field : {"title", "description", "condition"})
      if (f.contains(field))
        tx.exec(std::string("UPDATE products SET ") + field + " = $2 WHERE id = $1", {id, f[field].get<std::string>()});
    for (const char* field : {"brand", "city"})
      if (f.contains(field))
        tx.exec(std::string("UPDATE products SET ") + field + " = $2 WHERE id = $1",
                {id, f[field].is_null() ? db::Value(nullptr) : db::Value(f[field].get<std::string>())});
    if (f.contains("lat"))
      tx.exec("UPDATE products SET lat = $2, lng = $3 WHERE id = $1",
              {id, f["lat"].is_null() ? db::Value(nullptr) : db::Value(f["lat"].get<double>()),
               f["lng"].is_null() ? db::Value(nullptr) : db::Value(f["lng"].get<double>())});
    tx.exec("UPDATE products SET category_id = $2, attributes = $3, status = $4,"
            " rejection_reason = CASE WHEN $4 = 'rejected' THEN rejection_reason ELSE NULL END,"
            " published_at = CASE WHEN $4 = 'active' AND published_at IS NULL THEN $5 ELSE published_at END WHERE id = $1",
            {id, category_id, dump_json(attributes), next, now});
    changed(tx, id, "product.updated", request_id);
    return render_product(tx, *load_product(tx, id), true);
  });
}

void Catalog::delete_product(const identity::Principal& who, const std::string& id, const std::string& request_id) {
  db_.write([&](db::Tx& tx) {
    owned_product(tx, who, id);
    tx.exec("UPDATE products SET deleted_at = $2, status = 'archived' WHERE id = $1", {id, now_text()});
    if (who.has_role("admin") && !tx.query_one("SELECT 1 AS x FROM products WHERE id = $1 AND seller_id = $2", {id, who.user_id}))
      audit::record(tx, {who.user_id, "product.delete", "product", id, "", json::object(), request_id});
    changed(tx, id, "product.deleted", request_id);
  });
}

std::pair<json, json> Catalog::products(db::Tx& tx, const ProductFilter& f, const identity::Principal* viewer) {
  std::string sql = std::string("SELECT ") + kProductColumns + " FROM products p WHERE p.deleted_at IS NULL";
  db::Params params;
  auto bind = [&](db::Value v) {
    params.push_back(std::move(v));
    return "$" + std::to_string(params.size());
  };
  if (f.seller_id) sql += " AND p.seller_id = " + bind(*f.seller_id);
  if (f.status) sql += " AND p.status = " + bind(*f.status);
  if (f.category_id) {
    auto cat = tx.query_one("SELECT path FROM categories WHERE id = $1", {*f.category_id});
    if (!cat) return {json::array(), nullptr};
    if (f.include_descendants) {
      std::string path = cat->text("path");
      sql += " AND p.category_id IN (SELECT id FROM categories WHERE substr(path, 1, " +
             bind(int64_t(path.size())) + ") = " + bind(path) + ")";
    } else {
      sql += " AND p.category_id = " + bind(*f.category_id);
    }
  }
  if (f.before) sql += " AND p.id < " + bind(*f.before);
  sql += " ORDER BY p.id DESC LIMIT " + bind(int64_t(f.limit + 1));
  auto rows = tx.query(sql, params);
  bool admin = viewer && viewer->has_role("admin");
  return db::page_of(rows, f.limit, [&](const db::Row& r) {
    bool owner = admin || (viewer && viewer->user_id == r.text("seller_id"));
    return render_product(tx, r, owner);
  });
}

json Catalog::add_sku(const identity::Principal& who, const std::string& product_id, const json& s,
                      const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto product = owned_product(tx, who, product_id);
    check_sku_attributes(product_definitions(tx, product.text("category_id")), json::array({s}));
    // Live SKUs count; positions go on after removed ones too.
    auto count = tx.query_one("SELECT COALESCE(SUM(CASE WHEN deleted_at IS NULL THEN 1 ELSE 0 END), 0) AS n,"
                              " COALESCE(MAX(position), -1) AS p FROM skus WHERE product_id = $1",
                              {product_id});
    if (count->integer("n") >= 100) throw ApiError::unprocessable("too_many_skus", "A product has at most 100 SKUs.");
    insert_sku(tx, product_id, s, count->integer("p") + 1, now_text());
    check_skus(tx, product_id);
    changed(tx, product_id, "product.updated", request_id);
    return render_product(tx, *load_product(tx, product_id), true);
  });
}

json Catalog::update_sku(const identity::Principal& who, const std::string& product_id, const std::string& sku_id,
                         const json& f, const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto product = owned_product(tx, who, product_id);
    if (f.contains("attributes"))
      check_sku_attributes(product_definitions(tx, product.text("category_id")), json::array({f}));
    auto sku = tx.query_one(std::string("SELECT ") + kSkuColumns + " FROM skus WHERE id = $1 AND product_id = $2" +
                                std::string(tx.for_update()),
                            {sku_id, product_id});
    if (!sku || !sku->is_null("deleted_at")) throw ApiError::not_found("No such SKU.");
    if (f.contains("stock")) {
      int64_t stock = f["stock"];
      // Units held by orders awaiting payment stay held.
      if (tx.exec("UPDATE skus SET stock = $2 WHERE id = $1 AND reserved <= $2", {sku_id, stock}) == 0) {
        auto now = tx.query_one("SELECT reserved FROM skus WHERE id = $1", {sku_id});
        throw ApiError::conflict("stock_below_reserved", "Orders awaiting payment hold more units than that.",
                                 {{"reserved", now->integer("reserved")}});
      }
    }
    if (f.contains("price")) tx.exec("UPDATE skus SET price = $2 WHERE id = $1", {sku_id, f["price"].get<int64_t>()});
    if (f.contains("currency")) tx.exec("UPDATE skus SET currency = $2 WHERE id = $1", {sku_id, f["currency"].get<std::string>()});
    if (f.contains("code"))
      tx.exec("UPDATE skus SET code = $2 WHERE id = $1",
              {sku_id, f["code"].is_null() ? db::Value(nullptr) : db::Value(f["code"].get<std::string>())});
    if (f.contains("attributes")) tx.exec("UPDATE skus SET attributes = $2 WHERE id = $1", {sku_id, dump_json(f["attributes"])});
    tx.exec("UPDATE skus SET updated_at = $2 WHERE id = $1", {sku_id, now_text()});
    check_skus(tx, product_id);
    changed(tx, product_id, "product.updated", request_id);
    return render_product(tx, *load_product(tx, product_id), true);
  });
}

json Catalog::delete_sku(const identity::Principal& who, const std::string& product_id, const std::string& sku_id,
                         const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto product = owned_product(tx, who, product_id);
    if (tx.exec("UPDATE skus SET deleted_at = $3 WHERE id = $1 AND product_id = $2 AND deleted_at IS NULL",
                {sku_id, product_id, now_text()}) == 0)
      throw ApiError::not_found("No such SKU.");
    if (!tx.query_one("SELECT 1 AS x FROM skus WHERE product_id = $1 AND deleted_at IS NULL", {product_id}) &&
        product.text("status") != "draft" && product.text("status") != "archived")
      throw ApiError::unprocessable("no_skus", "A listed product keeps at least one SKU; archive it instead.");
    changed(tx, product_id, "product.updated", request_id);
    return render_product(tx, *load_product(tx, product_id), true);
  });
}

json Catalog::moderate(const identity::Principal& admin, const std::string& id, bool approve, const std::string& reason,
                       const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto row = load_product(tx, id, true);
    if (!row || !row->is_null("deleted_at")) throw ApiError::not_found("No such product.");
    if (row->text("status") != "pending_review")
      throw ApiError::conflict("not_pending_review", "Only a product waiting for review is approved or rejected.",
                               {{"status", row->text("status")}});
    std::string now = now_text();
    tx.exec("UPDATE products SET status = $2, rejection_reason = $3,"
            " published_at = CASE WHEN $2 = 'active' AND published_at IS NULL THEN $4 ELSE published_at END"
            " WHERE id = $1 AND status = 'pending_review'",
            {id, approve ? "active" : "rejected", approve ? db::Value(nullptr) : db::Value(reason), now});
    audit::record(tx, {admin.user_id, approve ? "product.approve" : "product.reject", "product", id, reason,
                       json::object(), request_id});
    changed(tx, id, approve ? "product.approved" : "product.rejected", request_id);
    return render_product(tx, *load_product(tx, id), true);
  });
}

std::optional<std::string> Catalog::owner_of(db::Tx& tx, const std::string& type, const std::string& id) {
  std::optional<db::Row> r;
  if (type == "product") r = tx.query_one("SELECT seller_id AS owner FROM products WHERE id = $1 AND deleted_at IS NULL", {id});
  else if (type == "review") r = tx.query_one("SELECT buyer_id AS owner FROM product_reviews WHERE id = $1", {id});
  if (!r) return std::nullopt;
  return r->text("owner");
}

// ---- stock

std::vector<SkuQuote> Catalog::quote(db::Tx& tx, const std::vector<std::string>& sku_ids) {
  std::vector<SkuQuote> out;
  if (sku_ids.empty()) return out;
  db::Params params;
  std::string in = db::bind_list(params, sku_ids);
  std::map<std::string, SkuQuote> found;
  for (const auto& r : tx.query("SELECT s.id, s.product_id, s.price, s.currency, s.stock, s.reserved, s.attributes,"
                                " s.deleted_at AS sku_deleted, p.seller_id, p.title, p.status, p.category_id,"
                                " p.deleted_at AS product_deleted FROM skus s JOIN products p ON p.id = s.product_id"
                                " WHERE s.id IN (" + in + ")",
                                params)) {
    SkuQuote q;
    q.sku_id = r.text("id");
    q.product_id = r.text("product_id");
    q.seller_id = r.text("seller_id");
    q.title = r.text("title");
    q.currency = r.text("currency");
    q.category_id = r.text("category_id");
    q.product_status = r.text("status");
    q.price = r.integer("price");
    q.stock = r.integer("stock");
    q.reserved = r.integer("reserved");
    q.attributes = r.json("attributes");
    q.deleted = !r.is_null("sku_deleted") || !r.is_null("product_deleted");
    auto img = tx.query_one("SELECT id, sizes FROM product_images WHERE product_id = $1 AND status = 'ready'"
                            " AND deleted_at IS NULL ORDER BY position, id LIMIT 1",
                            {q.product_id});
    if (img) {
      // The smallest rendition (a thumbnail for order lines), not whichever
      // width sorts last as text.
      json sizes = img->json("sizes");
      if (!sizes.empty()) {
        int smallest = *std::min_element(sizes.begin(), sizes.end());
        q.image = image_urls(q.product_id, img->text("id"), json::array({smallest}))[std::to_string(smallest)];
      }
    }
    found[q.sku_id] = std::move(q);
  }
  for (const auto& id : sku_ids)
    if (auto it = found.find(id); it != found.end()) out.push_back(it->second);
  return out;
}

namespace {
// One guarded update per line, in SKU id order so that two checkouts lock
// rows in the same order (no deadlock on PostgreSQL).
template <class F>
void per_line(std::vector<StockLine> lines, F fn) {
  std::sort(lines.begin(), lines.end(), [](const StockLine& a, const StockLine& b) { return a.sku_id < b.sku_id; });
  for (const auto& l : lines) {
    // A negative quantity would turn each guard around (reserve would free units).
    if (l.quantity <= 0)
      throw std::logic_error("stock line for " + l.sku_id + " has quantity " + std::to_string(l.quantity));
    fn(l);
  }
}
}  // namespace

void Catalog::reserve(db::Tx& tx, const std::vector<StockLine>& lines, const std::string&) {
  per_line(lines, [&](const StockLine& l) {
    if (tx.exec("UPDATE skus SET reserved = reserved + $2 WHERE id = $1 AND deleted_at IS NULL"
                " AND stock - reserved >= $2",
                {l.sku_id, l.quantity}) == 0) {
      auto now = tx.query_one("SELECT stock - reserved AS available FROM skus WHERE id = $1", {l.sku_id});
      throw ApiError::conflict("insufficient_stock", "Not enough stock left for this item.",
                               {{"sku_id", l.sku_id}, {"requested", l.quantity},
                                {"available", now ? now->integer("available") : 0}});
    }
  });
  forget_at_commit(tx, lines);
}

namespace {
void stock_update(db::Tx& tx, const std::vector<StockLine>& lines, const char* sql, const char* what) {
  per_line(lines, [&](const StockLine& l) {
    if (tx.exec(sql, {l.sku_id, l.quantity}) == 0)
      throw std::logic_error(std::string("stock ") + what + " found nothing to change for " + l.sku_id);
  });
}
}  // namespace

void Catalog::commit(db::Tx& tx, const std::vector<StockLine>& lines, const std::string&) {
  stock_update(tx, lines, "UPDATE skus SET stock = stock - $2, reserved = reserved - $2 WHERE id = $1 AND reserved >= $2",
               "commit");
  forget_at_commit(tx, lines);
}

void Catalog::release(db::Tx& tx, const std::vector<StockLine>& lines, const std::string&) {
  stock_update(tx, lines, "UPDATE skus SET reserved = reserved - $2 WHERE id = $1 AND reserved >= $2", "release");
  forget_at_commit(tx, lines);
}

void Catalog::restock(db::Tx& tx, const std::vector<StockLine>& lines, const std::string&) {
  stock_update(tx, lines, "UPDATE skus SET stock = stock + $2 WHERE id = $1", "restock");
  forget_at_commit(tx, lines);
}

// ---- search

std::optional<json> Catalog::search_document(db::Tx& tx, const std::string& product_id) {
  auto row = load_product(tx, product_id);
  if (!row || !row->is_null("deleted_at") || row->text("status") != "active") return std::nullopt;
  auto category = tx.query_one("SELECT path FROM categories WHERE id = $1", {row->text("category_id")});
  std::string path = category ? category->text("path") : "";
  json category_names = json::array();
  {
    std::vector<std::string> ids;
    for (size_t s = 1, e; (e = path.find('/', s)) != std::string::npos; s = e + 1) ids.push_back(path.substr(s, e - s));
    if (!ids.empty()) {
      db::Params params;
      std::string in = db::bind_list(params, ids);
      for (const auto& c : tx.query("SELECT name FROM categories WHERE id IN (" + in + ")", params))
        category_names.push_back(c.text("name"));
    }
  }
  json sku_attributes = json::array();
  int64_t available = 0;
  for (const auto& s : tx.query("SELECT attributes, stock - reserved AS available FROM skus"
                                " WHERE product_id = $1 AND deleted_at IS NULL",
                                {product_id})) {
    sku_attributes.push_back(s.json("attributes"));
    available += s.integer("available");
  }
  // The first ready image's smallest rendition, for results pages.
  json image = nullptr;
  if (auto img = tx.query_one("SELECT id, sizes FROM product_images WHERE product_id = $1 AND status = 'ready'"
                              " AND deleted_at IS NULL ORDER BY position, id LIMIT 1",
                              {product_id})) {
    json sizes = img->json("sizes");
    if (!sizes.empty()) {
      int smallest = *std::min_element(sizes.begin(), sizes.end());
      image = image_urls(product_id, img->text("id"), json::array({smallest}))[std::to_string(smallest)];
    }
  }
  std::string seller = row->text("seller_id");
  auto names = identity_.business_names(tx, {seller});
  json rating = rating_of(row->integer("rating_count"), row->integer("rating_total"));
  return json{{"id", product_id},
              {"image", image},
              {"seller_id", seller},
              {"seller_name", names.count(seller) ? names[seller] : ""},
              {"title", row->text("title")},
              {"description", row->text("description")},
              {"brand", row->nullable_text("brand")},
              {"category_id", row->text("category_id")},
              {"category_path", path},
              {"category_names", category_names},
              {"attributes", row->json("attributes")},
              {"sku_attributes", sku_attributes},
              {"condition", row->text("condition")},
              {"city", row->nullable_text("city")},
              {"lat", row->is_null("lat") ? json(nullptr) : json(row->real("lat"))},
              {"lng", row->is_null("lng") ? json(nullptr) : json(row->real("lng"))},
              {"price_min", row->integer("price_min")},
              {"price_max", row->integer("price_max")},
              {"currency", row->text("currency")},
              {"in_stock", available > 0},
              {"rating", rating["average"]},
              {"rating_count", rating["count"]},
              {"published_at", row->nullable_text("published_at")},
              {"created_at", row->text("created_at")}};
}

std::vector<std::string> Catalog::product_ids(db::Tx& tx, const std::string& after, int limit) {
  std::vector<std::string> out;
  for (const auto& r : tx.query("SELECT id FROM products WHERE id > $1 ORDER BY id LIMIT $2", {after, int64_t(limit)}))
    out.push_back(r.text("id"));
  return out;
}

}  // namespace souq::catalog
