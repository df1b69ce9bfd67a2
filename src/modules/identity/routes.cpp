// /api/v1/auth/* and /api/v1/users/*: thin routes over the Identity service.
#include <algorithm>

#include "core/validation.hpp"
#include "http/response.hpp"
#include "modules/identity/module.hpp"

namespace souq::identity {

using api::Request;
using api::Response;

namespace {

Client client_of(const Request& req) { return {std::string(req.header(http::field::user_agent)), req.client_ip}; }

ApiError invalid_credentials() {
  return {401, "invalid_credentials", "The email or password is not right."};
}

}  // namespace

awaitable<Principal> require_user(Request& req, Identity& identity, BlockingPool& blocking) {
  Principal claimed = identity.verify_token(req.header(http::field::authorization));
  if (identity.from_cache(claimed)) co_return claimed;
  co_return co_await blocking.run([&] { return identity.resolve(claimed); });
}

void register_routes(api::Router& router, Identity& identity, BlockingPool& blocking, BlockingPool& cpu) {
  router.post("/api/v1/auth/register", [&](Request& req) -> awaitable<Response> {
    Validator v(req.json_object());
    v.only({"email", "password", "display_name", "locale"});
    auto email = v.email("email");
    auto password = v.password("password");
    auto name = v.text("display_name", 1, 80);
    auto locale = v.locale("locale");
    v.done();
    auto hash = co_await cpu.run([&] { return hash_password(*password); });
    auto [user, tokens] = co_await blocking.run([&] {
      return identity.register_with_password(*email, hash, *name, locale.value_or("en"), client_of(req));
    });
    json data = tokens.to_json();
    data["user"] = std::move(user);
    co_return api::ok(req, data, http::status::created);
  });

  router.post("/api/v1/auth/login", [&](Request& req) -> awaitable<Response> {
    Validator v(req.json_object());
    v.only({"email", "password"});
    auto email = v.email("email");
    auto password = v.password("password", 1, 128);
    if (!email || !password) throw invalid_credentials();  // never say which part is wrong
    auto stored = co_await blocking.run([&] {
      identity.check_login_throttle(*email, req.client_ip);
      return identity.password_hash_for(*email);
    });
    // Unknown emails still cost one hash, so timing does not reveal accounts.
    static const std::string decoy = hash_password("decoy password for unknown accounts");
    bool ok = co_await cpu.run([&] { return verify_password(*password, stored ? stored->second : decoy); });
    if (!stored || !ok) {
      co_await blocking.run([&] { identity.record_login_failure(*email, req.client_ip); });
      throw invalid_credentials();
    }
    auto tokens = co_await blocking.run([&] { return identity.start_session(stored->first, client_of(req)); });
    co_return api::ok(req, tokens.to_json());
  });

  router.post("/api/v1/auth/otp/request", [&](Request& req) -> awaitable<Response> {
    Validator v(req.json_object());
    v.only({"phone"});
    auto phone = v.phone("phone");
    v.done();
    co_return api::ok(req, co_await blocking.run([&] {
      return identity.request_otp(*phone, req.client_ip, req.request_id);
    }), http::status::accepted);
  });

  router.post("/api/v1/auth/otp/verify", [&](Request& req) -> awaitable<Response> {
    Validator v(req.json_object());
    v.only({"phone", "code", "display_name"});
    auto phone = v.phone("phone");
    auto code = v.text("code", 6, 6);
    if (code && !std::all_of(code->begin(), code->end(), [](unsigned char c) { return std::isdigit(c); }))
      v.fail("code", "must be 6 digits");
    auto name = v.text("display_name", 1, 80, false);
    v.done();
    co_return api::ok(req, co_await blocking.run([&] {
      return identity.verify_otp(*phone, *code, name.value_or(""), client_of(req));
    }));
  });

  router.post("/api/v1/auth/oidc", [&](Request& req) -> awaitable<Response> {
    Validator v(req.json_object());
    v.only({"id_token", "nonce"});
    auto token = v.text("id_token", 10, 16384);
    auto nonce = v.text("nonce", 8, 256);
    v.done();
    co_return api::ok(req, co_await blocking.run([&] {
      return identity.sign_in_oidc(*token, *nonce, client_of(req));
    }));
  });

  router.post("/api/v1/auth/refresh", [&](Request& req) -> awaitable<Response> {
    Validator v(req.json_object());
    v.only({"refresh_token"});
    auto token = v.text("refresh_token", 1, 200);
    v.done();
    auto tokens = co_await blocking.run([&] { return identity.refresh(*token, client_of(req)); });
    co_return api::ok(req, tokens.to_json());
  });

  router.post("/api/v1/auth/logout", [&](Request& req) -> awaitable<Response> {
    auto who = co_await require_user(req, identity, blocking);
    co_await blocking.run([&] { identity.logout(who); });
    co_return api::ok(req, {{"signed_out", "session"}});
  });

  router.post("/api/v1/auth/logout-all", [&](Request& req) -> awaitable<Response> {
    auto who = co_await require_user(req, identity, blocking);
    co_await blocking.run([&] { identity.logout_all(who.user_id, "logout_all"); });
    co_return api::ok(req, {{"signed_out", "all_sessions"}});
  });

  router.post("/api/v1/auth/password", [&](Request& req) -> awaitable<Response> {
    auto who = co_await require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"current_password", "new_password"});
    auto current = v.password("current_password", 1, 128);
    auto next = v.password("new_password");
    v.done();
    auto stored = co_await blocking.run([&] { return identity.password_hash_of(who.user_id); });
    bool ok = stored && co_await cpu.run([&] { return verify_password(*current, *stored); });
    if (!ok) throw ApiError(403, "wrong_password", "The current password is not right.");
    auto hash = co_await cpu.run([&] { return hash_password(*next); });
    co_await blocking.run([&] { identity.change_password(who, hash); });
    co_return api::ok(req, {{"password_changed", true}, {"other_sessions", "signed_out"}});
  });

  router.get("/api/v1/users/me", [&](Request& req) -> awaitable<Response> {
    co_return api::ok(req, co_await authed_read(req, identity, blocking, [&identity](db::Tx& tx, const Principal& who) {
      return identity.me(tx, who);
    }));
  });

  router.put("/api/v1/users/me", [&](Request& req) -> awaitable<Response> {
    auto who = co_await require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.forbid({"id", "roles", "status", "email", "phone", "password", "password_hash", "created_at"},
             "cannot be changed here");
    v.only({"display_name", "locale", "avatar_url"});
    json changes = json::object();
    if (v.has("display_name"))
      if (auto name = v.text("display_name", 1, 80)) changes["display_name"] = *name;
    if (v.has("locale"))
      if (auto locale = v.locale("locale", true)) changes["locale"] = *locale;
    if (v.has("avatar_url")) {
      if (req.body["avatar_url"].is_null()) changes["avatar_url"] = nullptr;
      else if (auto url = v.url("avatar_url", true)) changes["avatar_url"] = *url;
    }
    v.done();
    co_return api::ok(req, co_await blocking.run([&] { return identity.update_me(who.user_id, changes); }));
  });

  // PUT: the device id is the client's (its installation id), so registering
  // and updating a push token are the same idempotent call.
  router.put("/api/v1/devices/{device_id}", [&](Request& req) -> awaitable<Response> {
    auto who = co_await require_user(req, identity, blocking);
    std::string device_id = req.param("device_id");
    Validator v(req.json_object());
    v.only({"platform", "push_token", "app_version"});
    if (device_id.size() < 8 || device_id.size() > 128)
      v.fail("device_id", "must be 8 to 128 characters (the app's installation id)");
    auto platform = v.text("platform", 2, 10);
    if (platform && *platform != "ios" && *platform != "android" && *platform != "web")
      v.fail("platform", "must be ios, android or web");
    auto token = v.text("push_token", 8, 4096);
    auto version = v.text("app_version", 1, 40, false);
    v.done();
    co_return api::ok(req, co_await blocking.run([&] {
      return identity.register_device(who.user_id, device_id, *platform, *token, version);
    }));
  });

  router.get("/api/v1/devices", [&](Request& req) -> awaitable<Response> {
    co_return api::ok(req, co_await authed_read(req, identity, blocking, [&identity](db::Tx& tx, const Principal& who) {
      return identity.devices(tx, who.user_id);
    }));
  });

  router.del("/api/v1/devices/{device_id}", [&](Request& req) -> awaitable<Response> {
    auto who = co_await require_user(req, identity, blocking);
    std::string device_id = req.param("device_id");
    co_await blocking.run([&] { identity.remove_device(who.user_id, device_id); });
    co_return api::ok(req, {{"removed", device_id}});
  });

  // Public: buyers see who sells to them before they sign in. Admins (signed
  // in) also see suspended accounts.
  router.get("/api/v1/users/{id:id}", [&](Request& req) -> awaitable<Response> {
    // Named, not a temporary in the co_await: g++ 12 destroys a temporary
    // closure's captures twice there.
    std::string id = req.param("id");
    auto read = [&identity, &id](db::Tx& tx, const Principal* viewer) { return identity.public_profile(tx, id, viewer); };
    co_return api::ok(req, co_await viewer_read(req, identity, blocking, read));
  });
}

}  // namespace souq::identity
