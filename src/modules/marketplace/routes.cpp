// /api/v1/requests, /api/v1/offers, /api/v1/deals, /api/v1/seller/categories,
// /api/v1/admin/stats: parse and check input, call the service.
#include "core/id.hpp"
#include "core/money.hpp"
#include "core/time.hpp"
#include "core/validation.hpp"
#include "http/cached_list.hpp"
#include "http/paging.hpp"
#include "http/response.hpp"
#include "modules/marketplace/module.hpp"

namespace souq::marketplace {

using api::Request;
using api::Response;
using identity::Principal;

namespace {

// The fields of a request, checked; `partial` for PATCH (only those sent).
json request_fields(const json& body, bool partial) {
  Validator v(body);
  v.only({"title", "description", "category", "quantity", "budget_min", "budget_max", "currency", "city", "lat", "lng",
          "expires_at", "images", "process"});
  if (partial) v.forbid({"process"}, "cannot be changed once the request is posted");
  json out = json::object();
  auto want = [&](const char* field) { return !partial || v.has(field); };
  if (want("title"))
    if (auto x = v.text("title", 3, 120)) out["title"] = *x;
  if (want("description"))
    if (auto x = v.text("description", 0, 4000, false)) out["description"] = *x;
  if (want("category"))
    if (auto x = v.slug("category")) out["category"] = *x;
  if (want("quantity"))
    if (auto x = v.integer("quantity", 1, 1'000'000)) out["quantity"] = *x;
  if (want("budget_min"))
    if (auto x = v.amount("budget_min")) out["budget_min"] = *x;
  if (want("budget_max"))
    if (auto x = v.amount("budget_max")) out["budget_max"] = *x;
  if (want("currency"))
    if (auto x = v.currency("currency")) out["currency"] = *x;
  if (want("city"))
    if (auto x = v.text("city", 2, 80)) out["city"] = *x;
  v.point(out, partial);
  if (v.has("expires_at"))
    if (auto x = v.timestamp("expires_at")) out["expires_at"] = *x;
  if (v.has("images"))
    if (auto x = v.strings("images", 10, 1, 300)) out["images"] = *x;
  if (!partial && v.has("process"))
    if (auto x = v.text("process", 1, 60)) out["process"] = *x;
  v.done();
  if (partial && out.empty()) throw ApiError::validation({{"body", "names no field to change"}});
  return out;
}

// ?status=&category=&city=&q=&currency=&budget_min=&budget_max=&lat=&lng=&radius_km=&sort=&limit=&cursor=
RequestFilter request_filter(const Request& req) {
  RequestFilter f;
  f.limit = api::page_limit(req, 20, 100);
  f.cursor = api::page_cursor_json(req);
  f.status = req.query_param("status");
  if (f.status && *f.status != "active" && *f.status != "closed" && *f.status != "cancelled" && *f.status != "expired" &&
      *f.status != "any")
    throw ApiError::validation({{"status", "must be active, closed, cancelled, expired or any"}});
  if ((f.category = req.query_param("category")) && !is_slug(*f.category))
    throw ApiError::validation({{"category", "must be a category slug"}});
  f.city = req.query_param("city");
  f.q = req.query_param("q");
  if (f.q && (f.q->empty() || f.q->size() > 100)) throw ApiError::validation({{"q", "must be 1 to 100 characters"}});
  f.currency = req.query_param("currency");
  if (f.currency && !Currency::find(*f.currency)) throw ApiError::validation({{"currency", "must be an ISO 4217 code"}});
  f.budget_min = req.query_int("budget_min", 0, 1'000'000'000'000'000);
  f.budget_max = req.query_int("budget_max", 0, 1'000'000'000'000'000);
  if ((f.budget_min || f.budget_max) && !f.currency)
    throw ApiError::validation({{"currency", "is required with a budget filter (amounts are in its minor units)"}});
  f.lat = req.query_number("lat", -90, 90);
  f.lng = req.query_number("lng", -180, 180);
  f.radius_km = req.query_number("radius_km", 0.1, 20000);
  if ((f.lat || f.lng || f.radius_km) && !(f.lat && f.lng && f.radius_km))
    throw ApiError::validation({{"radius_km", "lat, lng and radius_km go together"}});
  f.sort = req.query_param("sort").value_or("newest");
  if (f.sort != "newest" && f.sort != "ending_soon")
    throw ApiError::validation({{"sort", "must be newest or ending_soon"}});
  return f;
}


}  // namespace

void register_policies(identity::Policy& policy) {
  // Seed 000's authorization rules: everyone signed in may post a request;
  // offers and the seller feed are for approved sellers (offers check that in
  // the service, with a code of their own); statistics are for admins.
  policy.allow("requests.create", [](const Principal& p, const json&) { return p.has_role("buyer"); });
  policy.allow("requests.feed", [](const Principal& p, const json&) { return p.has_role("seller"); });
  policy.allow("admin.stats", [](const Principal& p, const json&) { return p.has_role("admin"); });
}

void register_routes(api::Router& router, Marketplace& m, identity::Identity& identity, const identity::Policy& policy,
                     BlockingPool& blocking) {
  router.post("/api/v1/requests", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    policy.check(who, "requests.create");
    json fields = request_fields(req.json_object(), false);
    co_return api::ok(req, co_await blocking.run([&] { return m.create_request(who, fields, req.request_id); }),
                      http::status::created);
  });

  // Open requests are public; ?mine=true lists the caller's own in any status.
  router.get("/api/v1/requests", [&](Request& req) -> awaitable<Response> {
    RequestFilter f = request_filter(req);
    bool mine = req.query_param("mine") == "true";
    if (mine && req.header(http::field::authorization).empty())
      throw ApiError(401, "unauthenticated", "Sign in to list your own requests.");
    auto read = [&m, &f, mine](db::Tx& tx, const Principal* viewer) {
      if (mine) f.buyer_id = viewer->user_id;
      bool admin = viewer && viewer->has_role("admin");
      if (f.status && *f.status != "active" && !mine && !admin)
        throw ApiError::validation({{"status", "only open requests are listed publicly; add mine=true for your own"}});
      if (mine && !f.status) f.status = "any";
      return m.requests(tx, f, viewer);
    };
    // What an anonymous caller sees is the same for all of them: cached.
    auto make = [&]() { return identity::viewer_read(req, identity, blocking, read); };
    co_return co_await api::cached_list(req, m.list_cache(), make);
  });

  // A seller's feed: open requests in the categories they serve, not their own.
  router.get("/api/v1/requests/feed", [&](Request& req) -> awaitable<Response> {
    RequestFilter f = request_filter(req);
    if (f.status && *f.status != "active") throw ApiError::validation({{"status", "the feed has open requests only"}});
    auto read = [&m, &policy, &f](db::Tx& tx, const Principal& who) {
      policy.check(who, "requests.feed");
      for (const auto& c : m.seller_categories(tx, who.user_id)) f.categories.push_back(c);
      if (f.categories.empty()) return std::make_pair(json::array(), json(nullptr));
      f.exclude_buyer_id = who.user_id;
      return m.requests(tx, f, &who);
    };
    auto [items, next] = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  router.get("/api/v1/requests/{id:id}", [&](Request& req) -> awaitable<Response> {
    const std::string& id = req.param("id");
    auto read = [&m, &id](db::Tx& tx, const Principal* viewer) { return m.request(tx, id, viewer); };
    co_return api::ok(req, co_await identity::viewer_read(req, identity, blocking, read));
  });

  router.patch("/api/v1/requests/{id:id}", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    json changes = request_fields(req.json_object(), true);
    co_return api::ok(req, co_await blocking.run([&] {
      return m.update_request(who, req.param("id"), changes, req.request_id);
    }));
  });

  router.post("/api/v1/requests/{id:id}/cancel", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    std::string reason = lone_text(req.body, "reason", 3, 1000, false);
    co_return api::ok(req, co_await blocking.run([&] {
      return m.cancel_request(who, req.param("id"), reason, req.request_id);
    }));
  });

  router.get("/api/v1/requests/{id:id}/offers", [&](Request& req) -> awaitable<Response> {
    const std::string& id = req.param("id");
    int limit = api::page_limit(req);
    auto before = api::page_cursor(req);
    auto read = [&m, &id, &before, limit](db::Tx& tx, const Principal& who) { return m.offers_on(tx, id, who, before, limit); };
    auto [items, next] = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  router.post("/api/v1/offers", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"request_id", "price", "currency", "message", "delivery_days", "valid_until"});
    json f = json::object();
    if (auto x = v.text("request_id", 1, 40)) {
      if (!is_id(*x, "req")) v.fail("request_id", "must be a request id");
      else f["request_id"] = *x;
    }
    if (auto x = v.amount("price")) f["price"] = *x;
    if (auto x = v.currency("currency")) f["currency"] = *x;
    if (auto x = v.text("message", 0, 2000, false)) f["message"] = *x;
    if (auto x = v.integer("delivery_days", 1, 365)) f["delivery_days"] = *x;
    if (v.has("valid_until"))
      if (auto x = v.timestamp("valid_until")) f["valid_until"] = *x;
    v.done();
    co_return api::ok(req, co_await blocking.run([&] { return m.create_offer(who, f, req.request_id); }),
                      http::status::created);
  });

  router.get("/api/v1/offers/{id:id}", [&](Request& req) -> awaitable<Response> {
    const std::string& id = req.param("id");
    auto read = [&m, &id](db::Tx& tx, const Principal& who) { return m.offer(tx, id, who); };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.post("/api/v1/offers/{id:id}/withdraw", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    co_return api::ok(req, co_await blocking.run([&] { return m.withdraw_offer(who, req.param("id"), req.request_id); }));
  });

  router.post("/api/v1/offers/{id:id}/accept", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    co_return api::ok(req, co_await blocking.run([&] { return m.accept_offer(who, req.param("id"), req.request_id); }));
  });

  router.get("/api/v1/deals", [&](Request& req) -> awaitable<Response> {
    transactions::ListFilter f;
    f.kind = "deal";
    f.limit = api::page_limit(req);
    f.before = api::page_cursor(req);
    f.state = req.query_param("state");
    f.role = req.query_param("role");
    if (f.role && *f.role != "buyer" && *f.role != "seller") throw ApiError::validation({{"role", "must be buyer or seller"}});
    auto read = [&m, &f](db::Tx& tx, const Principal& who) { return m.transactions().list(tx, who, f); };
    auto [items, next] = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  router.get("/api/v1/deals/{id:id}", [&](Request& req) -> awaitable<Response> {
    const std::string& id = req.param("id");
    auto read = [&m, &id](db::Tx& tx, const Principal& who) { return m.deal(tx, id, who); };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.get("/api/v1/seller/categories", [&](Request& req) -> awaitable<Response> {
    auto read = [&m](db::Tx& tx, const Principal& who) { return json{{"categories", m.seller_categories(tx, who.user_id)}}; };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.put("/api/v1/seller/categories", [&](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    policy.check(who, "requests.feed");
    Validator v(req.json_object());
    v.only({"categories"});
    auto categories = v.strings("categories", 50, 1, 60, true);
    if (categories)
      for (const auto& c : *categories)
        if (!is_slug(c)) v.fail("categories", "each must be a category slug: " + c);
    v.done();
    co_return api::ok(req, co_await blocking.run([&] {
      return json{{"categories", m.set_seller_categories(who, *categories)}};
    }));
  });

  // ?from=YYYY-MM-DD&to=YYYY-MM-DD (default: the last 30 days, at most 366).
  router.get("/api/v1/admin/stats", [&](Request& req) -> awaitable<Response> {
    auto day = [&](const char* name, std::string fallback) {
      auto text = req.query_param(name).value_or(fallback);
      if (text.size() != 10 || !parse_time(text + "T00:00:00Z"))
        throw ApiError::validation({{name, "must be a date, YYYY-MM-DD"}});
      return text;
    };
    auto today = now();
    std::string to = day("to", format_time(today).substr(0, 10));
    std::string from = day("from", format_time(*parse_time(to + "T00:00:00Z") - std::chrono::hours(24 * 29)).substr(0, 10));
    auto span = *parse_time(to + "T00:00:00Z") - *parse_time(from + "T00:00:00Z");
    if (span < std::chrono::hours(0) || span > std::chrono::hours(24 * 365))
      throw ApiError::validation({{"from", "must be on or before to, at most 366 days earlier"}});
    auto read = [&m, &policy, &from, &to](db::Tx& tx, const Principal& who) {
      policy.check(who, "admin.stats");
      return json{{"from", from}, {"to", to}, {"days", m.stats(tx, from, to)}};
    };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });
}

}  // namespace souq::marketplace
