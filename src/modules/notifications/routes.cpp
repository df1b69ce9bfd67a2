#include <regex>

#include "core/id.hpp"
#include "core/validation.hpp"
#include "http/paging.hpp"
#include "http/response.hpp"
#include "modules/identity/policy.hpp"
#include "modules/notifications/module.hpp"

namespace souq::notifications {
namespace {

void require_admin(const identity::Principal& who) {
  if (!who.has_role("admin")) throw ApiError(403, "forbidden", "Only admins manage notifications.");
}

std::string template_locale(const api::Request& req) {
  static const std::regex tag("^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$");
  std::string locale = req.param("locale");
  if (!std::regex_match(locale, tag)) throw ApiError::validation({{"locale", "must be a language tag such as en or ar-EG"}});
  return locale;
}

}  // namespace

void register_routes(api::Router& router, Notifications& notifications, identity::Identity& identity,
                     BlockingPool& blocking) {
  router.get("/api/v1/notifications", [&](api::Request& req) -> awaitable<api::Response> {
    int limit = api::page_limit(req, 20, 100);
    auto cursor = api::page_cursor(req);
    if (cursor && !is_id(*cursor, "ntf")) throw ApiError::validation({{"cursor", "is not a cursor from this list"}});
    auto unread = req.query_param("unread_only").value_or("false");
    if (unread != "true" && unread != "false") throw ApiError::validation({{"unread_only", "must be true or false"}});
    auto read = [&notifications, cursor, limit, unread](db::Tx& tx, const identity::Principal& who) {
      auto page = notifications.list(tx, who.user_id, cursor, limit, unread == "true");
      return std::make_pair(page, Notifications::unread_count(tx, who.user_id));
    };
    auto [page, count] = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, page.items, http::status::ok, {{"next_cursor", page.next_cursor}, {"unread_count", count}});
  });

  router.get("/api/v1/notifications/unread-count", [&](api::Request& req) -> awaitable<api::Response> {
    auto read = [](db::Tx& tx, const identity::Principal& who) { return Notifications::unread_count(tx, who.user_id); };
    int64_t count = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, {{"unread_count", count}});
  });

  router.post("/api/v1/notifications/read-all", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    std::optional<std::string> up_to;
    if (!req.body.is_null()) {
      Validator v(req.json_object());
      v.only({"up_to"});
      up_to = v.text("up_to", 1, 64, false);
      v.done();
      if (up_to && !is_id(*up_to, "ntf")) throw ApiError::validation({{"up_to", "must be a notification id"}});
    }
    co_return api::ok(req, co_await blocking.run([&] { return notifications.mark_all_read(who.user_id, up_to); }));
  });

  router.post("/api/v1/notifications/{id:id}/read", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    std::string id = req.param("id");
    co_return api::ok(req, co_await blocking.run([&] { return notifications.mark_read(who.user_id, id); }));
  });

  router.get("/api/v1/users/me/notification-preferences", [&](api::Request& req) -> awaitable<api::Response> {
    auto read = [&notifications](db::Tx& tx, const identity::Principal& who) {
      return notifications.preferences(tx, who.user_id);
    };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.patch("/api/v1/users/me/notification-preferences", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    const json& changes = req.json_object();
    co_return api::ok(req, co_await blocking.run([&] { return notifications.update_preferences(who.user_id, changes); }));
  });

  router.get("/api/v1/admin/notification-templates", [&](api::Request& req) -> awaitable<api::Response> {
    auto read = [&notifications](db::Tx& tx, const identity::Principal& who) {
      require_admin(who);
      return notifications.templates(tx);
    };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.put("/api/v1/admin/notification-templates/{type}/{locale}", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    require_admin(who);
    std::string type = req.param("type"), locale = template_locale(req);
    Validator v(req.json_object());
    v.only({"title", "body"});
    auto title = v.text("title", 1, 200);
    auto body = v.multiline("body", 1, 1000);
    v.done();
    co_return api::ok(req, co_await blocking.run([&] {
      return notifications.put_template(who, type, locale, *title, *body, req.request_id);
    }));
  });

  router.del("/api/v1/admin/notification-templates/{type}/{locale}", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    require_admin(who);
    std::string type = req.param("type"), locale = template_locale(req);
    co_return api::ok(req, co_await blocking.run([&] { return notifications.reset_template(who, type, locale, req.request_id); }));
  });

  router.get("/api/v1/admin/notification-deliveries", [&](api::Request& req) -> awaitable<api::Response> {
    std::string user = req.query_param("user_id").value_or("");
    std::string channel = req.query_param("channel").value_or("");
    if (!user.empty() && !is_id(user, "usr")) throw ApiError::validation({{"user_id", "must be a user id"}});
    if (!channel.empty() && channel != "push" && channel != "email")
      throw ApiError::validation({{"channel", "must be push or email"}});
    int limit = api::page_limit(req, 50, 200);
    auto read = [&notifications, user, channel, limit](db::Tx& tx, const identity::Principal& who) {
      require_admin(who);
      return notifications.deliveries(tx, user, channel, limit);
    };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });
}

}  // namespace souq::notifications
