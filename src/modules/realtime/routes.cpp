#include <cstdlib>

#include "core/crypto.hpp"
#include "core/time.hpp"
#include "http/response.hpp"
#include "modules/realtime/hub.hpp"
#include "modules/realtime/module.hpp"

namespace souq::realtime {
namespace {

constexpr size_t kMaxData = 10 * 1024;  // Pusher's limit on one event's data
constexpr size_t kMaxChannels = 100;    // per event
constexpr size_t kMaxBatch = 10;

// The body of an auth request: a form (pusher-js, Laravel Echo) or JSON.
std::pair<std::string, std::string> auth_fields(const api::Request& req) {
  std::string socket_id, channel;
  auto type = req.header(http::field::content_type);
  if (type.find("json") != std::string_view::npos) {
    auto body = parse_json(req.message.body());
    if (!body.is_object()) throw ApiError::bad_request("invalid_body", "The body must be a JSON object.");
    if (body.contains("socket_id") && body["socket_id"].is_string()) socket_id = body["socket_id"];
    if (body.contains("channel_name") && body["channel_name"].is_string()) channel = body["channel_name"];
  } else {
    for (auto& [k, v] : api::parse_form(req.message.body())) {
      if (k == "socket_id") socket_id = v;
      if (k == "channel_name") channel = v;
    }
  }
  json problems = json::object();
  if (socket_id.empty()) problems["socket_id"] = "is required";
  if (channel.empty()) problems["channel_name"] = "is required";
  if (!problems.empty()) throw ApiError::validation(problems);
  return {socket_id, channel};
}

// The Pusher HTTP API's signature: HMAC-SHA256 over "METHOD\nPATH\nQUERY",
// QUERY being every parameter but auth_signature, keys lower-cased and
// sorted, values unescaped; body_md5 must match a non-empty body, and the
// timestamp be within 600 s.
void verify_signed(const api::Request& req, const Realtime& realtime) {
  if (req.param("app_id") != realtime.options().app_id) throw ApiError::not_found("No such app.");
  std::map<std::string, std::string> params;
  std::string signature;
  for (auto& [k, v] : api::parse_form(req.query)) {
    std::string key = k;
    for (auto& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (key == "auth_signature")
      signature = v;
    else
      params[key] = v;
  }
  auto unauthorized = [](const std::string& why) { return ApiError(401, "invalid_signature", why); };
  if (signature.empty() || !params.count("auth_key") || !params.count("auth_timestamp"))
    throw unauthorized("Sign the request: auth_key, auth_timestamp, auth_version and auth_signature are required.");
  if (params["auth_key"] != realtime.options().key) throw unauthorized("Unknown auth_key.");
  const long long now_unix = std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count();
  char* end = nullptr;
  long long stamp = std::strtoll(params["auth_timestamp"].c_str(), &end, 10);
  if (!end || *end != '\0' || std::llabs(stamp - now_unix) > 600)
    throw unauthorized("auth_timestamp must be within 600 s of the server's time (" + std::to_string(now_unix) + ").");
  const auto& body = req.message.body();
  if (!body.empty()) {
    if (!params.count("body_md5") || params["body_md5"] != crypto::md5_hex(body))
      throw unauthorized("body_md5 does not match the body.");
  }
  std::string text = std::string(http::to_string(req.method())) + "\n" + req.path + "\n";
  bool first = true;
  for (const auto& [k, v] : params) {
    if (!first) text += "&";
    first = false;
    text += k + "=" + v;
  }
  if (!crypto::equal_constant_time(signature, realtime.sign(text))) throw unauthorized("Invalid signature.");
}

std::vector<std::string> info_fields(const std::string& info) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= info.size()) {
    auto comma = info.find(',', start);
    if (comma == std::string::npos) comma = info.size();
    auto item = info.substr(start, comma - start);
    if (!item.empty()) {
      if (item != "user_count" && item != "subscription_count")
        throw ApiError::validation({{"info", "may ask for user_count and subscription_count"}});
      out.push_back(item);
    }
    start = comma + 1;
  }
  return out;
}

json describe(const std::string& channel, const ChannelInfo& info, const std::vector<std::string>& fields) {
  json out = json::object();
  for (const auto& f : fields) {
    if (f == "user_count") {
      if (!is_presence(channel)) throw ApiError::validation({{"info", "user_count is only for presence channels"}});
      out["user_count"] = info.user_count;
    } else {
      out["subscription_count"] = info.subscription_count;
    }
  }
  return out;
}

// One event of the HTTP API, checked whole before anything is published.
struct Trigger {
  std::string name, data, except;
  std::vector<std::string> channels;
  std::vector<std::string> fields;  // info asked for
};

// `where` prefixes the names of faulty fields ("batch.2."); a batch event
// names one `channel`, an event `channels` (or `channel`).
Trigger parse_trigger(const json& e, const std::string& where, bool batch) {
  if (!e.is_object()) throw ApiError::validation({{where.empty() ? "body" : where, "must be an object"}});
  json problems = json::object();
  Trigger t;
  if (!e.contains("name") || !e["name"].is_string() || e["name"].get<std::string>().empty() ||
      e["name"].get<std::string>().size() > 200)
    problems[where + "name"] = "must be an event name of 1 to 200 characters";
  else
    t.name = e["name"];
  if (!e.contains("data") || !e["data"].is_string())
    problems[where + "data"] = "must be a string (JSON-encode objects)";
  else if (e["data"].get<std::string>().size() > kMaxData)
    throw ApiError(413, "payload_too_large", "Event data is limited to 10 KiB.", {{"max_bytes", kMaxData}});
  else
    t.data = e["data"];
  if (!batch && e.contains("channels") && e["channels"].is_array()) {
    for (const auto& c : e["channels"])
      if (c.is_string()) t.channels.push_back(c);
      else problems[where + "channels"] = "must be channel names";
  } else if (e.contains("channel") && e["channel"].is_string()) {
    t.channels.push_back(e["channel"]);
  }
  const char* channels_field = batch ? "channel" : "channels";
  if (t.channels.empty() || t.channels.size() > kMaxChannels)
    problems[where + channels_field] = batch ? "must name a channel" : "must name 1 to 100 channels";
  for (const auto& c : t.channels)
    if (!valid_channel(c)) problems[where + channels_field] = "must be 1 to 164 of A-Z a-z 0-9 _ - = @ , . ;";
  if (e.contains("socket_id")) {
    if (!e["socket_id"].is_string() || !valid_socket_id(e["socket_id"].get<std::string>()))
      problems[where + "socket_id"] = "must be a socket id";
    else
      t.except = e["socket_id"];
  }
  if (e.contains("info")) {
    if (!e["info"].is_string()) problems[where + "info"] = "must be a comma-separated list";
    else t.fields = info_fields(e["info"]);
    for (const auto& f : t.fields)
      for (const auto& c : t.channels)
        if (f == "user_count" && !is_presence(c)) problems[where + "info"] = "user_count is only for presence channels";
  }
  if (!problems.empty()) throw ApiError::validation(problems);
  return t;
}

// Publishes it; returns the channels' info when asked.
json publish_trigger(Realtime& realtime, const Trigger& t) {
  for (const auto& c : t.channels) realtime.publish_raw(c, t.name, t.data, t.except);
  json info = json::object();
  if (!t.fields.empty())
    for (const auto& c : t.channels) info[c] = describe(c, realtime.channel_info(c), t.fields);
  return info;
}

api::Response pusher_json(const api::Request& req, const json& body) {
  return api::json_response(req, http::status::ok, body);
}

}  // namespace

void register_routes(api::Router& router, Realtime& realtime, identity::Identity& identity, BlockingPool& blocking) {
  router.get("/api/v1/realtime/config", [&](api::Request& req) -> awaitable<api::Response> {
    const auto& o = realtime.options();
    std::string host = o.public_host;
    int port = o.public_port;
    if (host.empty()) {
      std::string h(req.header(http::field::host));
      auto colon = h.rfind(':');
      if (colon != std::string::npos && h.find(']', colon) == std::string::npos) {
        host = h.substr(0, colon);
        if (port == 0) port = std::atoi(h.c_str() + colon + 1);
      } else {
        host = h;
      }
    }
    if (port == 0) port = o.public_tls ? 443 : 80;
    co_return api::ok(req, {{"protocol", "pusher"},
                            {"protocol_version", 7},
                            {"app_id", o.app_id},
                            {"key", o.key},
                            {"host", host},
                            {"port", port},
                            {"tls", o.public_tls},
                            {"path", "/app/" + o.key},
                            {"activity_timeout", o.activity_timeout.count()},
                            {"auth_endpoint", "/api/v1/realtime/auth"},
                            {"user_channel", "private-user.{user_id}"}});
  });

  auto auth = [&](api::Request& req) -> awaitable<api::Response> {
    auto [socket_id, channel] = auth_fields(req);
    auto fn = [&realtime, socket_id = socket_id, channel = channel](db::Tx& tx, const identity::Principal& who) {
      return realtime.authorize(tx, who, socket_id, channel);
    };
    json answer = co_await identity::authed_read(req, identity, blocking, fn);
    // Not the envelope: pusher-js reads {auth, channel_data} at the top.
    co_return pusher_json(req, answer);
  };
  router.post("/api/v1/realtime/auth", auth, {.raw_body = true});
  router.post("/broadcasting/auth", auth, {.raw_body = true});

  // The Pusher HTTP API, for the operator's back end and Pusher's server libraries.
  router.post("/apps/{app_id}/events", [&](api::Request& req) -> awaitable<api::Response> {
    verify_signed(req, realtime);
    json info = publish_trigger(realtime, parse_trigger(parse_json(req.message.body()), "", false));
    co_return pusher_json(req, info.empty() ? json::object() : json{{"channels", info}});
  }, {.raw_body = true});

  router.post("/apps/{app_id}/batch_events", [&](api::Request& req) -> awaitable<api::Response> {
    verify_signed(req, realtime);
    auto body = parse_json(req.message.body());
    if (!body.is_object() || !body.contains("batch") || !body["batch"].is_array() || body["batch"].empty() ||
        body["batch"].size() > kMaxBatch)
      throw ApiError::validation({{"batch", "must be a list of 1 to 10 events"}});
    // Every event is checked before any is published.
    std::vector<Trigger> batch;
    for (size_t i = 0; i < body["batch"].size(); ++i)
      batch.push_back(parse_trigger(body["batch"][i], "batch." + std::to_string(i) + ".", true));
    json results = json::array();
    bool any_info = false;
    for (const auto& t : batch) {
      json info = publish_trigger(realtime, t);
      any_info = any_info || !t.fields.empty();
      results.push_back(t.fields.empty() ? json::object() : info[t.channels.front()]);
    }
    co_return pusher_json(req, any_info ? json{{"batch", results}} : json::object());
  }, {.raw_body = true});

  router.get("/apps/{app_id}/channels", [&](api::Request& req) -> awaitable<api::Response> {
    verify_signed(req, realtime);
    std::string prefix = req.query_param("filter_by_prefix").value_or("");
    auto fields = info_fields(req.query_param("info").value_or(""));
    for (const auto& f : fields)
      if (f == "user_count" && prefix.rfind("presence-", 0) != 0)
        throw ApiError::validation({{"info", "user_count needs filter_by_prefix=presence-"}});
    json channels = json::object();
    for (const auto& [name, info] : realtime.channels(prefix))
      if (info.occupied) channels[name] = describe(name, info, fields);
    co_return pusher_json(req, {{"channels", channels}});
  });

  router.get("/apps/{app_id}/channels/{channel_name}", [&](api::Request& req) -> awaitable<api::Response> {
    verify_signed(req, realtime);
    const auto& name = req.param("channel_name");
    if (!valid_channel(name)) throw ApiError::validation({{"channel_name", "is not a channel name"}});
    auto fields = info_fields(req.query_param("info").value_or(""));
    auto info = realtime.channel_info(name);
    json out = describe(name, info, fields);
    out["occupied"] = info.occupied;
    co_return pusher_json(req, out);
  });

  router.get("/apps/{app_id}/channels/{channel_name}/users", [&](api::Request& req) -> awaitable<api::Response> {
    verify_signed(req, realtime);
    const auto& name = req.param("channel_name");
    if (!is_presence(name) || !valid_channel(name))
      throw ApiError::validation({{"channel_name", "users are listed for presence channels only"}});
    json users = json::array();
    for (const auto& id : realtime.users(name)) users.push_back({{"id", id}});
    co_return pusher_json(req, {{"users", users}});
  });
}

}  // namespace souq::realtime
