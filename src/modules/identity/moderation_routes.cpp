// /api/v1/seller-profiles, /api/v1/admin/seller-profiles, /api/v1/admin/users/{id}/…, /api/v1/admin/audit
#include "core/id.hpp"
#include "core/validation.hpp"
#include "http/paging.hpp"
#include "http/response.hpp"
#include "modules/audit/module.hpp"
#include "modules/identity/module.hpp"
#include "modules/identity/policy.hpp"

namespace souq::identity {

using api::Request;
using api::Response;

namespace {


}  // namespace

void register_moderation_routes(api::Router& router, Identity& identity, const Policy& policy, BlockingPool& blocking,
                                sms::Sms* sms) {
  router.post("/api/v1/seller-profiles", [&](Request& req) -> awaitable<Response> {
    auto who = co_await require_user(req, identity, blocking);
    policy.check(who, "seller_profiles.apply");
    Validator v(req.json_object());
    v.only({"business_name", "description", "city", "documents"});
    json fields = {{"business_name", v.text("business_name", 2, 120).value_or("")},
                   {"description", v.text("description", 0, 4000, false).value_or("")},
                   {"city", v.text("city", 2, 80).value_or("")},
                   {"documents", json::array()}};
    if (v.has("documents")) {
      const auto& docs = req.body["documents"];
      if (!docs.is_array() || docs.size() > 10) v.fail("documents", "must be a list of at most 10 file references");
      else
        for (const auto& d : docs)
          if (!d.is_string() || d.get<std::string>().empty() || d.get<std::string>().size() > 300)
            v.fail("documents", "each document must be a file reference of 1 to 300 characters");
          else fields["documents"].push_back(d);
    }
    v.done();
    co_return api::ok(req, co_await blocking.run([&] { return identity.apply_to_sell(who, fields); }),
                      http::status::created);
  });

  router.get("/api/v1/seller-profiles/me", [&](Request& req) -> awaitable<Response> {
    auto who = co_await require_user(req, identity, blocking);
    co_return api::ok(req, co_await blocking.run([&] { return identity.my_seller_profile(who.user_id); }));
  });

  router.get("/api/v1/admin/seller-profiles", [&](Request& req) -> awaitable<Response> {
    auto who = co_await require_user(req, identity, blocking);
    policy.check(who, "seller_profiles.review");
    auto status = req.query_param("status").value_or("pending");
    if (status != "pending" && status != "approved" && status != "rejected")
      throw ApiError::validation({{"status", "must be pending, approved or rejected"}});
    int limit = api::page_limit(req);
    auto cursor = api::page_cursor(req);
    auto [items, next] = co_await blocking.run([&] { return identity.seller_profiles(status, cursor, limit); });
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  for (bool approve : {true, false}) {
    router.post(std::string("/api/v1/admin/seller-profiles/{id:id}/") + (approve ? "approve" : "reject"),
                [&, approve](Request& req) -> awaitable<Response> {
                  auto who = co_await require_user(req, identity, blocking);
                  policy.check(who, "seller_profiles.review");
                  std::string reason = lone_text(req.body, "reason", 3, 1000, !approve);  // a rejection must say why
                  std::string id = req.param("id");
                  co_return api::ok(req, co_await blocking.run([&] {
                    return identity.decide_seller_profile(who, id, approve, reason, req.request_id);
                  }));
                });
  }

  using Action = json (Identity::*)(const Principal&, const std::string&, const std::string&, const std::string&);
  for (auto [name, action] : {std::pair<const char*, Action>{"warn", &Identity::warn},
                              std::pair<const char*, Action>{"suspend", &Identity::suspend},
                              std::pair<const char*, Action>{"unsuspend", &Identity::unsuspend}}) {
    router.post(std::string("/api/v1/admin/users/{id:id}/") + name,
                [&, action = action](Request& req) -> awaitable<Response> {
                  auto who = co_await require_user(req, identity, blocking);
                  policy.check(who, "users.moderate");
                  std::string reason = lone_text(req.body, "reason", 3, 1000, true);
                  std::string id = req.param("id");
                  co_return api::ok(req, co_await blocking.run([&] {
                    return (identity.*action)(who, id, reason, req.request_id);
                  }));
                });
  }

  if (sms)
    router.get("/api/v1/admin/sms", [&, sms](Request& req) -> awaitable<Response> {
      auto who = co_await require_user(req, identity, blocking);
      policy.check(who, "sms.read");
      std::string to = req.query_param("to").value_or("");
      int limit = api::page_limit(req);
      co_return api::ok(req, co_await blocking.run([&] { return sms->recent(to, limit); }));
    });

  router.get("/api/v1/admin/audit", [&](Request& req) -> awaitable<Response> {
    auto who = co_await require_user(req, identity, blocking);
    policy.check(who, "audit.read");
    audit::Filter filter;
    filter.action = req.query_param("action");
    filter.actor_id = req.query_param("actor_id");
    filter.target_type = req.query_param("target_type");
    filter.target_id = req.query_param("target_id");
    filter.before = api::page_cursor(req);
    filter.limit = api::page_limit(req);
    auto [items, next] = co_await blocking.run([&] {
      return identity.db().read([&](db::Tx& tx) { return audit::list(tx, filter); });
    });
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });
}

}  // namespace souq::identity
