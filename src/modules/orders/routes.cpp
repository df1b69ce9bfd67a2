// /api/v1/cart…, /api/v1/orders…, /api/v1/seller/orders…, /api/v1/admin/orders:
// parse and check input, call the service.
#include "core/id.hpp"
#include "core/validation.hpp"
#include "http/paging.hpp"
#include "http/response.hpp"
#include "modules/orders/module.hpp"

namespace souq::orders {

using api::Request;
using api::Response;
using identity::Principal;

namespace {

int64_t quantity_of(const json& body) {
  Validator v(body);
  v.only({"sku_id", "quantity"});
  auto q = v.integer("quantity", 1, Orders::kMaxQuantity);
  v.done();
  return *q;
}

std::string sku_param(const Request& req) {
  const std::string& sku = req.param("sku_id");
  if (!is_id(sku, "sku")) throw ApiError::validation({{"sku_id", "must be a SKU id"}});
  return sku;
}

json address_of(Validator& v, const json& body) {
  const json& a = body["shipping_address"];
  if (!a.is_object()) {
    v.fail("shipping_address", "must be an object");
    return nullptr;
  }
  Validator av(a);
  av.only({"name", "line1", "line2", "city", "region", "postal_code", "country", "phone"});
  json out = json::object();
  if (auto x = av.text("name", 1, 120)) out["name"] = *x;
  if (auto x = av.text("line1", 1, 200)) out["line1"] = *x;
  if (auto x = av.text("line2", 0, 200, false)) out["line2"] = *x;
  if (auto x = av.text("city", 1, 80)) out["city"] = *x;
  if (auto x = av.text("region", 0, 80, false)) out["region"] = *x;
  if (auto x = av.text("postal_code", 0, 20, false)) out["postal_code"] = *x;
  if (auto x = av.text("country", 2, 2)) out["country"] = *x;
  if (av.has("phone"))
    if (auto x = av.phone("phone")) out["phone"] = *x;
  try {
    av.done();
  } catch (const ApiError& e) {
    v.fail("shipping_address", e.details().value("fields", json::object()).dump());
  }
  return out;
}

std::optional<std::string> state_param(const Request& req) {
  auto state = req.query_param("state");
  if (state && (state->empty() || state->size() > 40 || !is_slug(*state, 40) ))
    throw ApiError::validation({{"state", "must be a state name of the purchase process"}});
  return state;
}

// ?limit=&cursor=&state= of every order list.
OrderFilter list_filter(const Request& req) {
  OrderFilter f;
  f.limit = api::page_limit(req, 20, 100);
  f.before = api::page_cursor(req);
  f.state = state_param(req);
  return f;
}

// One page of orders as `f` says, for the signed-in caller; `check` (if
// any) decides first whether the caller may ask.
awaitable<Response> list_orders(Request& req, Orders& o, identity::Identity& identity, BlockingPool& blocking,
                                OrderFilter f, std::function<void(const Principal&)> check = {}) {
  auto read = [&o, f, check](db::Tx& tx, const Principal& who) {
    if (check) check(who);
    return o.orders(tx, f, who);
  };
  auto [items, next] = co_await identity::authed_read(req, identity, blocking, read);
  co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
}

}  // namespace

void register_policies(identity::Policy& policy) {
  policy.allow("orders.admin", [](const Principal& p, const json&) { return p.has_role("admin"); });
}

void register_routes(api::Router& router, Orders& o, identity::Identity& identity, const identity::Policy& policy,
                     api::Idempotency& idempotency, BlockingPool& blocking) {
  // ---- cart
  router.get("/api/v1/cart", [&](Request& req) -> awaitable<Response> {
    auto read = [&o](db::Tx& tx, const Principal& who) { return o.cart(tx, who.user_id); };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.post("/api/v1/cart/items", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"sku_id", "quantity"});
    auto sku = v.text("sku_id", 1, 64);
    if (sku && !is_id(*sku, "sku")) v.fail("sku_id", "must be a SKU id");
    auto quantity = v.integer("quantity", 1, Orders::kMaxQuantity);
    v.done();
    co_return api::ok(req, co_await blocking.run([&] { return o.add_to_cart(who, *sku, *quantity); }));
  });

  router.put("/api/v1/cart/items/{sku_id}", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    std::string sku = sku_param(req);
    int64_t quantity = quantity_of(req.json_object());
    co_return api::ok(req, co_await blocking.run([&] { return o.set_quantity(who, sku, quantity); }));
  });

  router.del("/api/v1/cart/items/{sku_id}", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    std::string sku = sku_param(req);
    co_return api::ok(req, co_await blocking.run([&] { return o.remove_from_cart(who, sku); }));
  });

  router.del("/api/v1/cart", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    co_return api::ok(req, co_await blocking.run([&] { return o.clear_cart(who); }));
  });

  // ---- checkout: the server prices the cart; the body says how to pay.
  router.post("/api/v1/orders", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    const json& body = req.body.is_null() ? json::object() : req.json_object();
    Validator v(body);
    v.only({"provider", "expected_total", "shipping_address", "return_url"});
    CheckoutRequest r;
    if (v.has("provider"))
      if (auto x = v.text("provider", 1, 40)) r.provider = *x;
    if (v.has("expected_total"))
      if (auto x = v.amount("expected_total", 1)) r.expected_total = *x;
    if (v.has("shipping_address")) r.shipping_address = address_of(v, body);
    if (v.has("return_url"))
      if (auto x = v.url("return_url")) r.return_url = *x;
    v.done();
    co_return co_await idempotency.run(req, who.user_id, blocking, [&]() -> awaitable<Response> {
      json out = co_await blocking.run([&] { return o.checkout(who, r, req.request_id); });
      co_return api::ok(req, std::move(out), http::status::created);
    });
  });

  // What a checkout still owes, paid again through a gateway (after its
  // first payment failed to start or was declined, or to pay later).
  router.post("/api/v1/checkouts/{id:id}/payments", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"provider", "return_url"});
    auto provider = v.text("provider", 1, 40);
    std::optional<std::string> return_url;
    if (v.has("return_url"))
      if (auto x = v.url("return_url")) return_url = *x;
    v.done();
    co_return co_await idempotency.run(req, who.user_id, blocking, [&]() -> awaitable<Response> {
      json out = co_await blocking.run(
          [&] { return o.pay_checkout_again(who, req.param("id"), *provider, return_url, req.request_id); });
      co_return api::ok(req, std::move(out), http::status::created);
    });
  });

  router.get("/api/v1/orders", [&](Request& req) -> awaitable<Response> {
    OrderFilter f = list_filter(req);
    f.role = "buyer";
    co_return co_await list_orders(req, o, identity, blocking, f);
  });

  router.get("/api/v1/orders/{id:id}", [&](Request& req) -> awaitable<Response> {
    std::string id = req.param("id");
    auto read = [&o, id](db::Tx& tx, const Principal& who) { return o.order(tx, id, who); };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.put("/api/v1/orders/{id:id}/cancel", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    std::string reason = lone_text(req.body, "reason", 3, 1000, false);
    co_return api::ok(req, co_await blocking.run([&] { return o.cancel(who, req.param("id"), reason, req.request_id); }));
  });

  // The buyer confirms receipt: the seller is paid.
  router.put("/api/v1/orders/{id:id}/confirm", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    co_return api::ok(req, co_await blocking.run([&] { return o.step(who, req.param("id"), "confirm", req.request_id); }));
  });

  // ---- the seller's side
  router.get("/api/v1/seller/orders", [&](Request& req) -> awaitable<Response> {
    OrderFilter f = list_filter(req);
    f.role = "seller";
    co_return co_await list_orders(req, o, identity, blocking, f);
  });

  router.put("/api/v1/seller/orders/{id:id}/ship", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"carrier", "tracking_number"});
    auto carrier = v.text("carrier", 2, 60);
    auto tracking = v.text("tracking_number", 3, 64);
    v.done();
    co_return api::ok(req, co_await blocking.run([&] {
      return o.ship(who, req.param("id"), *carrier, *tracking, req.request_id);
    }));
  });

  router.put("/api/v1/seller/orders/{id:id}/deliver", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    co_return api::ok(req, co_await blocking.run([&] { return o.step(who, req.param("id"), "deliver", req.request_id); }));
  });

  // ---- admins
  router.get("/api/v1/admin/orders", [&](Request& req) -> awaitable<Response> {
    OrderFilter f = list_filter(req);
    f.everyone = true;
    f.buyer_id = req.query_param("buyer");
    f.seller_id = req.query_param("seller");
    for (auto* p : {&f.buyer_id, &f.seller_id})
      if (*p && !is_id(**p, "usr")) throw ApiError::validation({{p == &f.buyer_id ? "buyer" : "seller", "must be a user id"}});
    co_return co_await list_orders(req, o, identity, blocking, f,
                                   [&policy](const Principal& who) { policy.check(who, "orders.admin"); });
  });
}

}  // namespace souq::orders
