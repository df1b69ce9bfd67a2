// Products and their SKUs: created by approved sellers (with SKUs in one
// call), edited, moderated, archived, soft-deleted; the public page cached.
#include <algorithm>
#include <cmath>
#include <set>

#include "core/id.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "modules/audit/module.hpp"
#include "modules/catalog/internal.hpp"
#include "modules/catalog/module.hpp"

namespace souq::catalog {
namespace {

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
    forget(product_id);
    if (publish_) publish_(kProductChanged, product_id);
  });
}

void Catalog::forget_seller_at_commit(db::Tx& tx, const std::string& seller_id) {
  tx.after_commit([this, seller_id] {
    forget_seller(seller_id);
    if (publish_) publish_(kSellerChanged, seller_id);
  });
}

void Catalog::forget_all_at_commit(db::Tx& tx) {
  tx.after_commit([this] {
    forget_all();
    if (publish_) publish_(kCatalogChanged, "");
  });
}

// A seller's account or application changed. Their products are shown only
// while the account is active and the seller approved; every cached page of
// theirs goes either way (it embeds their name).
void Catalog::on_seller_event(const json& event) {
  const json& payload = event.at("payload");
  if (!payload.contains("user_id") || !payload["user_id"].is_string()) return;
  refresh_seller(payload["user_id"], jobs::request_id_of(event));
}

void Catalog::refresh_seller(const std::string& seller, const std::string& request_id) {
  db_.write([&](db::Tx& tx) {
    // One seller's standing is decided one transaction at a time, reading
    // it after the lock: a suspension and a reinstatement handled at once
    // leave the later one's answer.
    db::lock_keys(tx, {"catalog-seller:" + seller});
    bool active = identity_.is_active(tx, seller) && !identity_.business_names(tx, {seller}).empty();
    int64_t flag = active ? 1 : 0;
    if (tx.exec("UPDATE products SET seller_active = $2 WHERE seller_id = $1 AND seller_active <> $2", {seller, flag}) > 0)
      outbox_.emit(tx, "seller_products.changed", {{"seller_id", seller}, {"active", active}}, seller, request_id);
    forget_seller_at_commit(tx, seller);
  });
}

// Once (catalog_upkeep): every seller's products get their standing, a
// page of sellers per job.
void Catalog::refresh_sellers(const std::string& after) {
  auto sellers = db_.read([&](db::Tx& tx) {
    std::vector<std::string> out;
    for (const auto& r : tx.query("SELECT DISTINCT seller_id FROM products WHERE seller_id > $1 ORDER BY seller_id LIMIT 200",
                                  {after}))
      out.push_back(r.text("seller_id"));
    return out;
  });
  for (const auto& seller : sellers) refresh_seller(seller, "");
  if (sellers.size() == 200)
    db_.write([&](db::Tx& tx) { queue_.enqueue(tx, "catalog.seller_standing", {{"after", sellers.back()}}); });
}

void Catalog::register_jobs() {
  queue_.handle("catalog.image", [this](const jobs::Job& job) { render_image(job.payload.at("image_id")); });
  queue_.handle("catalog.seller_standing", [this](const jobs::Job& job) { refresh_sellers(job.payload.value("after", "")); });
  outbox_.subscribe("seller_profile.*", "catalog", [this](const json& event) { on_seller_event(event); });
  // Work a migration left for the code (one node takes it).
  db_.write([&](db::Tx& tx) {
    if (tx.exec("DELETE FROM catalog_upkeep WHERE task = 'seller_standing'") == 1)
      queue_.enqueue(tx, "catalog.seller_standing", {{"after", ""}});
  });
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
    auto category = find_category(tx, f.at("category"), true);
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
  if (deleted || row->text("status") != "active" || row->integer("seller_active") == 0)
    throw ApiError::not_found("No such product.");
  return render_product(tx, *row, false);
}

std::shared_ptr<const std::string> Catalog::public_product(const std::string& id) {
  uint64_t ticket = cache_.ticket();
  auto page = db_.read([&](db::Tx& tx) {
    auto row = load_product(tx, id);
    if (!row || !row->is_null("deleted_at") || row->text("status") != "active" || row->integer("seller_active") == 0)
      return std::pair<std::string, std::shared_ptr<const std::string>>{};
    return std::pair{row->text("seller_id"), std::make_shared<const std::string>(dump_json(render_product(tx, *row, false)))};
  });
  if (page.second) cache_.store(id, page.first, page.second, ticket);
  return page.second;
}

json Catalog::update_product(const identity::Principal& who, const std::string& id, const json& f,
                             const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto row = owned_product(tx, who, id);
    std::string status = row.text("status");
    json definitions;
    std::string category_id = row.text("category_id");
    if (f.contains("category")) {
      auto category = find_category(tx, f["category"], true);
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

db::Rows Catalog::list_rows(db::Tx& tx, const ProductFilter& f) {
  std::string sql = std::string("SELECT ") + kProductColumns + " FROM products p WHERE p.deleted_at IS NULL";
  db::Params params;
  auto bind = [&](db::Value v) {
    params.push_back(std::move(v));
    return "$" + std::to_string(params.size());
  };
  if (f.seller_id) sql += " AND p.seller_id = " + bind(*f.seller_id);
  if (f.status) sql += " AND p.status = " + bind(*f.status);
  if (f.public_only) sql += " AND p.status = 'active' AND p.seller_active = 1";
  if (f.category_id) {
    auto cat = tx.query_one("SELECT path FROM categories WHERE id = $1", {*f.category_id});
    if (!cat) return {};
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
  return tx.query(sql, params);
}

std::pair<json, json> Catalog::products(db::Tx& tx, const ProductFilter& f, const identity::Principal* viewer) {
  auto rows = list_rows(tx, f);
  bool admin = viewer && viewer->has_role("admin");
  std::vector<db::Row> shown(rows.begin(), rows.begin() + std::min<std::ptrdiff_t>(rows.size(), f.limit));
  Related related_rows = related(tx, shown);
  return db::page_of(rows, f.limit, [&](const db::Row& r) {
    bool owner = admin || (viewer && viewer->user_id == r.text("seller_id"));
    return render_row(r, related_rows, owner);
  });
}

std::pair<std::string, json> Catalog::public_products(db::Tx& tx, ProductFilter f, uint64_t ticket) {
  f.public_only = true;
  auto rows = list_rows(tx, f);
  size_t shown = std::min(rows.size(), size_t(f.limit));
  std::vector<std::shared_ptr<const std::string>> pages(shown);
  std::vector<size_t> missing;
  for (size_t i = 0; i < shown; ++i)
    if (!(pages[i] = cache_.find(rows[i].text("id")))) missing.push_back(i);
  std::vector<db::Row> unrendered;
  for (size_t i : missing) unrendered.push_back(rows[i]);
  Related related_rows = related(tx, unrendered);
  for (size_t i : missing) {
    pages[i] = std::make_shared<const std::string>(dump_json(render_row(rows[i], related_rows, false)));
    cache_.store(rows[i].text("id"), rows[i].text("seller_id"), pages[i], ticket);
  }
  std::string data = "[";
  for (size_t i = 0; i < shown; ++i) (data += i ? "," : "") += *pages[i];
  data += "]";
  json next = rows.size() > shown ? json(rows[shown - 1].text("id")) : json(nullptr);
  return {std::move(data), std::move(next)};
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
                                " s.deleted_at AS sku_deleted, p.seller_id, p.title, p.status, p.category_id, p.seller_active,"
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
    q.seller_active = r.integer("seller_active") != 0;
    found[q.sku_id] = std::move(q);
  }
  // Each line's thumbnail (the smallest rendition of the first ready image).
  std::vector<std::string> products;
  for (const auto& [_, q] : found) products.push_back(q.product_id);
  std::sort(products.begin(), products.end());
  products.erase(std::unique(products.begin(), products.end()), products.end());
  auto images = grouped(tx, "SELECT id, product_id, status, sizes FROM product_images", "product_id", products,
                        " AND status = 'ready' AND deleted_at IS NULL ORDER BY product_id, position, id");
  for (auto& [_, q] : found) q.image = thumbnail(q.product_id, images[q.product_id]);
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

// Each stock change returns the product and what its SKU has left: the
// product's cached page goes, and the search index hears of a SKU that ran
// out or came back (in_stock), not of every unit sold.
void Catalog::stock_changed(db::Tx& tx, const std::vector<std::pair<std::string, bool>>& touched,
                            const std::string& request_id) {
  std::map<std::string, bool> products;  // product id → a SKU crossed zero
  for (const auto& [product_id, crossed] : touched) products[product_id] = products[product_id] || crossed;
  for (const auto& [product_id, crossed] : products) {
    forget_at_commit(tx, product_id);
    if (crossed) outbox_.emit(tx, "product.stock_changed", {{"product_id", product_id}}, product_id, request_id);
  }
}

// One guarded update per line (`change` is "… WHERE id = $1 AND guard", $2
// the quantity); `refused(line)` when the guard finds nothing to change.
// A SKU crosses zero when a reservation takes its last unit, or when units
// coming back (release, restock) are all it has; commit leaves what can be
// bought as it was.
void Catalog::move_stock(db::Tx& tx, const std::vector<StockLine>& lines, const char* change, Crossing crossing,
                         const std::function<void(const StockLine&)>& refused, const std::string& request_id) {
  std::string sql = std::string("UPDATE skus SET ") + change + " RETURNING product_id, stock - reserved AS available";
  std::vector<std::pair<std::string, bool>> touched;
  per_line(lines, [&](const StockLine& l) {
    auto row = tx.query_one(sql, {l.sku_id, l.quantity});
    if (!row) return refused(l);  // it throws
    int64_t available = row->integer("available");
    touched.emplace_back(row->text("product_id"), (crossing == Crossing::to_zero && available == 0) ||
                                                      (crossing == Crossing::from_zero && available == l.quantity));
  });
  stock_changed(tx, touched, request_id);
}

namespace {
// Commit, release and restock follow the orders module's own bookkeeping:
// a line whose units are not where it says is a bug, not bad input.
std::function<void(const StockLine&)> must_find(const char* what) {
  return [what](const StockLine& l) {
    throw std::logic_error(std::string("stock ") + what + " found nothing to change for " + l.sku_id);
  };
}
}  // namespace

void Catalog::reserve(db::Tx& tx, const std::vector<StockLine>& lines, const std::string& request_id) {
  move_stock(tx, lines, "reserved = reserved + $2 WHERE id = $1 AND deleted_at IS NULL AND stock - reserved >= $2",
             Crossing::to_zero,
             [&](const StockLine& l) {
               auto now = tx.query_one("SELECT stock - reserved AS available FROM skus WHERE id = $1", {l.sku_id});
               throw ApiError::conflict("insufficient_stock", "Not enough stock left for this item.",
                                        {{"sku_id", l.sku_id}, {"requested", l.quantity},
                                         {"available", now ? now->integer("available") : 0}});
             },
             request_id);
}

void Catalog::commit(db::Tx& tx, const std::vector<StockLine>& lines, const std::string& request_id) {
  move_stock(tx, lines, "stock = stock - $2, reserved = reserved - $2 WHERE id = $1 AND reserved >= $2", Crossing::none,
             must_find("commit"), request_id);
}

void Catalog::release(db::Tx& tx, const std::vector<StockLine>& lines, const std::string& request_id) {
  move_stock(tx, lines, "reserved = reserved - $2 WHERE id = $1 AND reserved >= $2", Crossing::from_zero,
             must_find("release"), request_id);
}

void Catalog::restock(db::Tx& tx, const std::vector<StockLine>& lines, const std::string& request_id) {
  move_stock(tx, lines, "stock = stock + $2 WHERE id = $1", Crossing::from_zero, must_find("restock"), request_id);
}

}  // namespace souq::catalog
