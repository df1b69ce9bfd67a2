// /api/v1/categories, /api/v1/admin/categories, /api/v1/products…,
// /api/v1/reviews…, /api/v1/admin/products…, /media/…: parse and check
// input, call the service.
#include <set>

#include "core/id.hpp"
#include "core/validation.hpp"
#include "http/cached_list.hpp"
#include "http/paging.hpp"
#include "http/response.hpp"
#include "modules/catalog/module.hpp"

namespace souq::catalog {

using api::Request;
using api::Response;
using identity::Principal;

namespace {

bool is_key(const std::string& k) {
  if (k.empty() || k.size() > 40) return false;
  for (char c : k)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

// {key: text | number | boolean}, at most `max` keys named in snake_case.
std::optional<json> attribute_values(Validator& v, const json& body, const char* field, size_t max) {
  if (!body.contains(field)) return std::nullopt;
  const json& a = body[field];
  if (!a.is_object() || a.size() > max) {
    v.fail(field, "must be an object of at most " + std::to_string(max) + " attributes");
    return std::nullopt;
  }
  for (const auto& [k, value] : a.items()) {
    if (!is_key(k)) v.fail(field, "attribute names are lower-case letters, digits and _: " + k);
    else if (!(value.is_string() || value.is_number() || value.is_boolean()) ||
             (value.is_string() && (value.get<std::string>().empty() || value.get<std::string>().size() > 200)))
      v.fail(field, "attribute " + k + " must be text (1 to 200 characters), a number or true/false");
  }
  return a;
}

json sku_fields(const json& body, bool partial) {
  Validator v(body);
  v.only({"code", "price", "currency", "stock", "attributes"});
  json out = json::object();
  auto want = [&](const char* f) { return !partial || v.has(f); };
  if (v.has("code") && !(partial && body["code"].is_null()))
    if (auto x = v.text("code", 1, 64)) out["code"] = *x;
  if (partial && v.has("code") && body["code"].is_null()) out["code"] = nullptr;
  if (want("price"))
    if (auto x = v.amount("price", 1)) out["price"] = *x;
  if (want("currency"))
    if (auto x = v.currency("currency")) out["currency"] = *x;
  if (want("stock"))
    if (auto x = v.integer("stock", 0, 1'000'000'000)) out["stock"] = *x;
  if (auto a = attribute_values(v, body, "attributes", 10)) out["attributes"] = *a;
  v.done();
  if (partial && out.empty()) throw ApiError::validation({{"body", "names no field to change"}});
  return out;
}

json product_fields(const json& body, bool partial) {
  Validator v(body);
  v.only({"title", "description", "brand", "category", "attributes", "condition", "city", "lat", "lng", "status", "skus"});
  if (partial) v.forbid({"skus"}, "SKUs change through /products/{id}/skus");
  json out = json::object();
  auto want = [&](const char* f) { return !partial || v.has(f); };
  if (want("title"))
    if (auto x = v.text("title", 3, 200)) out["title"] = *x;
  if (v.has("description"))
    if (auto x = v.multiline("description", 0, 10000, false)) out["description"] = *x;
  if (v.has("brand")) {
    if (body["brand"].is_null() && partial) out["brand"] = nullptr;
    else if (auto x = v.text("brand", 1, 80)) out["brand"] = *x;
  }
  if (want("category"))
    if (auto x = v.text("category", 1, 64)) {
      if (!is_slug(*x) && !is_id(*x, "cat")) v.fail("category", "must be a category slug or id");
      else out["category"] = *x;
    }
  if (auto a = attribute_values(v, body, "attributes", 50)) out["attributes"] = *a;
  if (v.has("condition"))
    if (auto x = v.one_of("condition", {"new", "used", "refurbished"})) out["condition"] = *x;
  if (v.has("city")) {
    if (body["city"].is_null() && partial) out["city"] = nullptr;
    else if (auto x = v.text("city", 2, 80)) out["city"] = *x;
  }
  v.point(out, partial);
  if (v.has("status")) {
    if (auto x = partial ? v.one_of("status", {"draft", "active", "archived"}) : v.one_of("status", {"draft", "active"}))
      out["status"] = *x;
  }
  if (!partial) {
    if (!v.has("skus") || !body["skus"].is_array() || body["skus"].empty() || body["skus"].size() > 100) {
      v.fail("skus", "must be a list of 1 to 100 SKUs");
    } else {
      json skus = json::array();
      for (size_t i = 0; i < body["skus"].size(); ++i) {
        try {
          skus.push_back(sku_fields(body["skus"][i], false));
        } catch (const ApiError& e) {
          v.fail("skus[" + std::to_string(i) + "]", e.details().value("fields", json::object()).dump());
        }
      }
      out["skus"] = skus;
    }
  }
  v.done();
  if (partial && out.empty()) throw ApiError::validation({{"body", "names no field to change"}});
  return out;
}

json attribute_definitions(Validator& v, const json& body) {
  const json& a = body["attributes"];
  if (!a.is_array() || a.size() > 50) {
    v.fail("attributes", "must be a list of at most 50 attribute definitions");
    return json::array();
  }
  json out = json::array();
  std::set<std::string> keys;
  for (size_t i = 0; i < a.size(); ++i) {
    std::string where = "attributes[" + std::to_string(i) + "]";
    const json& d = a[i];
    if (!d.is_object()) {
      v.fail(where, "must be an object");
      continue;
    }
    // Each field of its type: a wrong one is a 422 naming it, never a failed conversion.
    auto text_field = [&](const char* f, size_t max) -> std::optional<std::string> {
      if (!d.contains(f)) return std::nullopt;
      if (!d[f].is_string() || d[f].get<std::string>().empty() || d[f].get<std::string>().size() > max) {
        v.fail(where, std::string(f) + " must be text of 1 to " + std::to_string(max) + " characters");
        return std::nullopt;
      }
      return d[f].get<std::string>();
    };
    auto flag = [&](const char* f) {
      if (!d.contains(f)) return false;
      if (!d[f].is_boolean()) {
        v.fail(where, std::string(f) + " must be true or false");
        return false;
      }
      return d[f].get<bool>();
    };
    std::string key = text_field("key", 40).value_or("");
    std::string type = text_field("type", 20).value_or("");
    if (!is_key(key) || !keys.insert(key).second) v.fail(where, "key must be unique, lower-case letters, digits and _");
    if (type != "text" && type != "number" && type != "integer" && type != "boolean" && type != "enum")
      v.fail(where, "type must be text, number, integer, boolean or enum");
    bool values_ok =
        d.contains("values") && d["values"].is_array() && !d["values"].empty() && d["values"].size() <= 100 &&
        std::all_of(d["values"].begin(), d["values"].end(),
                    [](const json& x) {
                      return x.is_string() && !x.get<std::string>().empty() && x.get<std::string>().size() <= 200;
                    }) &&
        std::set<json>(d["values"].begin(), d["values"].end()).size() == d["values"].size();
    if (type == "enum" && !values_ok)
      v.fail(where, "an enum names its values: a list of 1 to 100 different strings (1 to 200 characters)");
    if (type != "enum" && d.contains("values")) v.fail(where, "only an enum has values");
    json def = {{"key", key}, {"type", type}, {"label", text_field("label", 80).value_or(key)},
                {"required", flag("required")}, {"facet", flag("facet")}};
    if (type == "enum" && values_ok) def["values"] = d["values"];
    if (auto unit = text_field("unit", 20)) def["unit"] = *unit;
    for (const auto& [k, _] : d.items())
      if (k != "key" && k != "type" && k != "label" && k != "required" && k != "facet" && k != "values" && k != "unit")
        v.fail(where, "unknown field " + k);
    out.push_back(def);
  }
  return out;
}

json category_fields(const json& body, bool partial) {
  Validator v(body);
  v.only({"name", "slug", "parent", "position", "description", "attributes"});
  json out = json::object();
  if (!partial || v.has("name"))
    if (auto x = v.text("name", 1, 80)) out["name"] = *x;
  if (!partial || v.has("slug"))
    if (auto x = v.slug("slug")) out["slug"] = *x;
  if (v.has("parent")) {
    if (body["parent"].is_null()) out["parent"] = nullptr;
    else if (auto x = v.text("parent", 1, 64)) {
      if (!is_slug(*x) && !is_id(*x, "cat")) v.fail("parent", "must be a category slug or id, or null");
      else out["parent"] = *x;
    }
  }
  if (v.has("position"))
    if (auto x = v.integer("position", -1'000'000, 1'000'000)) out["position"] = *x;
  if (v.has("description"))
    if (auto x = v.multiline("description", 0, 2000, false)) out["description"] = *x;
  if (v.has("attributes")) out["attributes"] = attribute_definitions(v, body);
  v.done();
  if (partial && out.empty()) throw ApiError::validation({{"body", "names no field to change"}});
  return out;
}

}  // namespace

void register_policies(identity::Policy& policy) {
  policy.allow("catalog.manage", [](const Principal& p, const json&) { return p.has_role("admin"); });
}

void register_routes(api::Router& router, Catalog& c, identity::Identity& identity, const identity::Policy& policy,
                     BlockingPool& blocking) {
  // ---- categories
  router.get("/api/v1/categories", [&](Request& req) -> awaitable<Response> {
    co_return api::ok(req, co_await blocking.run([&] { return c.categories(); }));
  });

  router.post("/api/v1/admin/categories", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    policy.check(who, "catalog.manage");
    json f = category_fields(req.json_object(), false);
    co_return api::ok(req, co_await blocking.run([&] { return c.create_category(who, f, req.request_id); }),
                      http::status::created);
  });

  router.patch("/api/v1/admin/categories/{id}", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    policy.check(who, "catalog.manage");
    json f = category_fields(req.json_object(), true);
    co_return api::ok(req, co_await blocking.run([&] { return c.update_category(who, req.param("id"), f, req.request_id); }));
  });

  router.del("/api/v1/admin/categories/{id}", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    policy.check(who, "catalog.manage");
    std::string id = co_await blocking.run([&] { return c.delete_category(who, req.param("id"), req.request_id); });
    co_return api::ok(req, json{{"id", id}, {"deleted", true}});
  });

  // ---- products
  router.post("/api/v1/products", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Catalog::require_seller(who);  // who may sell before what they sent
    json f = product_fields(req.json_object(), false);
    co_return api::ok(req, co_await blocking.run([&] { return c.create_product(who, f, req.request_id); }),
                      http::status::created);
  });

  // ?seller=&category=&status=&mine=true: active products publicly; a
  // seller's own (any status) with mine=true; admins any.
  router.get("/api/v1/products", [&](Request& req) -> awaitable<Response> {
    ProductFilter f;
    f.limit = api::page_limit(req, 20, 100);
    f.before = api::page_cursor(req);
    f.seller_id = req.query_param("seller");
    if (f.seller_id && !is_id(*f.seller_id, "usr")) throw ApiError::validation({{"seller", "must be a user id"}});
    auto category = req.query_param("category");
    if (category && !is_slug(*category) && !is_id(*category, "cat"))
      throw ApiError::validation({{"category", "must be a category slug or id"}});
    f.status = req.query_param("status");
    if (f.status && *f.status != "draft" && *f.status != "pending_review" && *f.status != "active" &&
        *f.status != "rejected" && *f.status != "archived")
      throw ApiError::validation({{"status", "must be draft, pending_review, active, rejected or archived"}});
    bool mine = req.query_param("mine") == "true";
    if (mine && req.header(http::field::authorization).empty())
      throw ApiError(401, "unauthenticated", "Sign in to list your own products.");
    // Taken before the read: a page rendered from a snapshot older than a
    // change is not kept (ProductCache).
    uint64_t ticket = c.cache().ticket();
    auto read = [&c, f, mine, category, ticket](db::Tx& tx, const Principal* viewer) mutable -> std::pair<std::string, json> {
      if (category) {
        auto cat = c.find_category(tx, *category);
        if (!cat) throw ApiError::validation({{"category", "no such category"}});
        f.category_id = (*cat)["id"].get<std::string>();
      }
      bool admin = viewer && viewer->has_role("admin");
      if (mine) f.seller_id = viewer->user_id;
      if (!mine && !admin) {
        if (f.status && *f.status != "active")
          throw ApiError::validation({{"status", "only active products are listed publicly; add mine=true for your own"}});
        f.status = "active";
        f.public_only = true;
      }
      // Anonymous: each product's public page, as the product route serves it.
      if (!viewer) return c.public_products(tx, f, ticket);
      auto [items, next] = c.products(tx, f, viewer);
      return {dump_json(items), std::move(next)};
    };
    // What an anonymous caller sees is the same for all of them: kept briefly.
    auto make = [&]() { return identity::viewer_read(req, identity, blocking, read); };
    co_return co_await api::cached_list(req, c.list_cache(), make);
  });

  // The public page comes from the cache; owners and admins read through.
  router.get("/api/v1/products/{id:id}", [&](Request& req) -> awaitable<Response> {
    std::string id = req.param("id");
    if (req.header(http::field::authorization).empty()) {
      // A page in memory is answered here, without a trip to the blocking pool.
      auto page = c.cache().find(id);
      if (!page) page = co_await blocking.run([&] { return c.public_product(id); });
      if (!page) throw ApiError::not_found("No such product.");
      co_return api::ok_rendered(req, *page, nullptr);
    }
    auto read = [&c, id](db::Tx& tx, const Principal* viewer) { return c.product(tx, id, viewer); };
    co_return api::ok(req, co_await identity::viewer_read(req, identity, blocking, read));
  });

  auto update = [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    json f = product_fields(req.json_object(), true);
    co_return api::ok(req, co_await blocking.run([&] { return c.update_product(who, req.param("id"), f, req.request_id); }));
  };
  router.patch("/api/v1/products/{id:id}", update);
  router.put("/api/v1/products/{id:id}", update);

  router.del("/api/v1/products/{id:id}", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    co_await blocking.run([&] { c.delete_product(who, req.param("id"), req.request_id); });
    co_return api::ok(req, json{{"id", req.param("id")}, {"deleted", true}});
  });

  router.post("/api/v1/products/{id:id}/skus", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    json f = sku_fields(req.json_object(), false);
    co_return api::ok(req, co_await blocking.run([&] { return c.add_sku(who, req.param("id"), f, req.request_id); }),
                      http::status::created);
  });

  router.patch("/api/v1/products/{id:id}/skus/{sku:id}", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    json f = sku_fields(req.json_object(), true);
    co_return api::ok(req, co_await blocking.run([&] {
      return c.update_sku(who, req.param("id"), req.param("sku"), f, req.request_id);
    }));
  });

  router.del("/api/v1/products/{id:id}/skus/{sku:id}", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    co_return api::ok(req, co_await blocking.run([&] {
      return c.delete_sku(who, req.param("id"), req.param("sku"), req.request_id);
    }));
  });

  // The image is the body; renditions follow from a job.
  router.post("/api/v1/products/{id:id}/images", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    std::string type(req.header(http::field::content_type));
    if (req.message.body().empty()) throw ApiError::validation({{"body", "is the image file; it is empty"}});
    co_return api::ok(req, co_await blocking.run([&] {
      return c.add_image(who, req.param("id"), type, req.message.body(), req.request_id);
    }), http::status::created);
  }, {.raw_body = true, .max_body = c.options().max_image});

  router.del("/api/v1/products/{id:id}/images/{image:id}", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    co_return api::ok(req, co_await blocking.run([&] {
      return c.delete_image(who, req.param("id"), req.param("image"), req.request_id);
    }));
  });

  router.get("/media/products/{product:id}/{image:id}/{file}", [&](Request& req) -> awaitable<Response> {
    std::string key = "products/" + req.param("product") + "/" + req.param("image") + "/" + req.param("file");
    auto bytes = co_await blocking.run([&] { return c.media(key); });
    if (!bytes) throw ApiError::not_found("No such file.");
    auto res = api::text_response(req, http::status::ok, "image/webp", std::move(*bytes));
    res.set(http::field::cache_control, "public, max-age=31536000, immutable");
    co_return res;
  });

  // ---- reviews
  router.get("/api/v1/products/{id:id}/reviews", [&](Request& req) -> awaitable<Response> {
    std::string id = req.param("id");
    int limit = api::page_limit(req, 20, 100);
    auto before = api::page_cursor(req);
    auto [items, next] = co_await blocking.run([&] {
      return c.db().read([&](db::Tx& tx) { return c.reviews(tx, id, before, limit); });
    });
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  router.post("/api/v1/products/{id:id}/reviews", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"rating", "title", "body", "order_item_id"});
    json f = json::object();
    if (auto x = v.integer("rating", 1, 5)) f["rating"] = *x;
    if (auto x = v.text("title", 0, 120, false)) f["title"] = *x;
    if (auto x = v.multiline("body", 0, 5000, false)) f["body"] = *x;
    if (v.has("order_item_id"))
      if (auto x = v.text("order_item_id", 1, 64)) f["order_item_id"] = *x;
    v.done();
    co_return api::ok(req, co_await blocking.run([&] { return c.create_review(who, req.param("id"), f, req.request_id); }),
                      http::status::created);
  });

  router.post("/api/v1/reviews/{id:id}/reply", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    std::string text = lone_text(req.body, "body", 1, 2000, true);
    co_return api::ok(req, co_await blocking.run([&] { return c.reply_to_review(who, req.param("id"), text, req.request_id); }));
  });

  // ---- moderation
  router.get("/api/v1/admin/products", [&](Request& req) -> awaitable<Response> {
    ProductFilter f;
    f.limit = api::page_limit(req, 20, 100);
    f.before = api::page_cursor(req);
    f.status = req.query_param("status").value_or("pending_review");
    if (*f.status != "draft" && *f.status != "pending_review" && *f.status != "active" && *f.status != "rejected" &&
        *f.status != "archived")
      throw ApiError::validation({{"status", "must be draft, pending_review, active, rejected or archived"}});
    auto read = [&c, &policy, f](db::Tx& tx, const Principal& who) {
      policy.check(who, "catalog.manage");
      return c.products(tx, f, &who);
    };
    auto [items, next] = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  for (const char* decision : {"approve", "reject"}) {
    bool approve = std::string(decision) == "approve";
    router.post(std::string("/api/v1/admin/products/{id:id}/") + decision, [&, approve](Request& req) -> awaitable<Response> {
      auto who = co_await identity::require_user(req, identity, blocking);
      policy.check(who, "catalog.manage");
      std::string reason = lone_text(req.body, "reason", approve ? 0 : 3, 1000, !approve);
      co_return api::ok(req, co_await blocking.run([&] { return c.moderate(who, req.param("id"), approve, reason, req.request_id); }));
    });
  }

  for (const char* action : {"hide", "show"}) {
    std::string status = std::string(action) == "hide" ? "hidden" : "published";
    router.post(std::string("/api/v1/admin/reviews/{id:id}/") + action, [&, status](Request& req) -> awaitable<Response> {
      auto who = co_await identity::require_user(req, identity, blocking);
      policy.check(who, "catalog.manage");
      std::string reason = lone_text(req.body, "reason", 3, 1000, true);
      co_return api::ok(req, co_await blocking.run([&] {
        return c.set_review_status(who, req.param("id"), status, reason, req.request_id);
      }));
    });
  }
}

}  // namespace souq::catalog
