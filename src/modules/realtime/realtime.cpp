#include <unistd.h>

#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/crypto.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "modules/realtime/bus.hpp"
#include "modules/realtime/connection.hpp"
#include "modules/realtime/hub.hpp"

namespace souq::realtime {

bool valid_channel(std::string_view name) {
  if (name.empty() || name.size() > 164) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '=' || c == '@' || c == ',' ||
          c == '.' || c == ';'))
      return false;
  return true;
}

bool valid_socket_id(std::string_view id) {
  auto dot = id.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == id.size() || id.size() > 40) return false;
  for (size_t i = 0; i < id.size(); ++i)
    if (i != dot && !std::isdigit(static_cast<unsigned char>(id[i]))) return false;
  return true;
}

struct Realtime::Sockets {
  std::mutex mutex;
  std::unordered_map<std::string, std::weak_ptr<Connection>> live;
};

namespace {
std::string default_node_id() {
  char host[128] = "node";
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid()) + "-" + crypto::random_token(6);
}
}  // namespace

Realtime::Realtime(db::Database& db, identity::Identity& identity, Options options)
    : db_(db), identity_(identity), options_(std::move(options)), sockets_(std::make_unique<Sockets>()) {
  if (options_.node_id.empty()) options_.node_id = default_node_id();
  hub_ = std::make_unique<Hub>(options_.node_id);
  hub_->set_node_message([this](const std::string& topic, const json& data) {
    auto it = node_handlers_.find(topic);
    if (it == node_handlers_.end()) return;
    for (const auto& fn : it->second) fn(data);
  });
}

Realtime::~Realtime() {
  if (bus_) bus_->stop();
}

void Realtime::on_node_message(const std::string& topic, std::function<void(const json& data)> handler) {
  node_handlers_[topic].push_back(std::move(handler));
}

void Realtime::send_node_message(const std::string& topic, const json& data) { hub_->send_node_message(topic, data); }

void Realtime::start() {
  if (options_.secret.empty()) {
    options_.secret = db_.write([&](db::Tx& tx) {
      tx.exec("INSERT INTO realtime_keys (app_id, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
              {options_.app_id, crypto::random_token(32), now_text()});
      return tx.query_one("SELECT secret FROM realtime_keys WHERE app_id = $1", {options_.app_id})->text("secret");
    });
  }
  if (!options_.redis.empty()) {
    Bus::Handlers handlers;
    handlers.message = [this](std::string_view message) { hub_->receive(message); };
    handlers.connected = [this] { hub_->hello(); };
    handlers.tick = [this] { hub_->heartbeat(std::chrono::seconds(10)); };
    bus_ = std::make_unique<Bus>(parse_redis_url(options_.redis), "souq:realtime:" + options_.app_id, std::move(handlers));
    hub_->set_send([this](std::string message) { bus_->publish(std::move(message)); });
    bus_->start();
    log::info("realtime bus: redis", {{"node", options_.node_id}});
  }
}

void Realtime::shutdown() {
  std::vector<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(sockets_->mutex);
    for (auto& [id, weak] : sockets_->live)
      if (auto c = weak.lock()) all.push_back(std::move(c));
  }
  for (auto& c : all) c->shutdown_now();
  if (bus_) {
    hub_->goodbye();
    bus_->stop();
  }
}

bool Realtime::wait_closed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (connection_count() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void Realtime::release() {
  hub_->clear();
  std::lock_guard lock(sockets_->mutex);
  sockets_->live.clear();
}

bool Realtime::register_socket(const std::shared_ptr<Connection>& c) {
  std::lock_guard lock(sockets_->mutex);
  if (sockets_->live.size() >= options_.max_connections) return false;
  sockets_->live.emplace(c->socket_id(), c);
  return true;
}

void Realtime::forget_socket(const std::string& id) {
  std::lock_guard lock(sockets_->mutex);
  sockets_->live.erase(id);
}

int64_t Realtime::connection_count() const {
  std::lock_guard lock(sockets_->mutex);
  return int64_t(sockets_->live.size());
}

api::UpgradeHandler Realtime::upgrade_handler() {
  return [this](beast::tcp_stream stream, api::Message request, std::string peer) -> awaitable<void> {
    auto connection = std::make_shared<Connection>(*this, *hub_, std::move(stream), std::move(peer));
    co_await connection->run(std::move(request));
  };
}

std::string Realtime::sign(std::string_view text) const {
  return crypto::to_hex(crypto::hmac_sha256(options_.secret, text));
}

void Realtime::publish(const std::string& channel, const std::string& event, const json& data,
                       const std::string& except_socket) {
  hub_->publish(channel, make_frame(event, channel, data), except_socket);
}

void Realtime::publish_raw(const std::string& channel, const std::string& event, const std::string& data,
                           const std::string& except_socket) {
  hub_->publish(channel, make_frame(event, channel, json(data)), except_socket);
}

void Realtime::add_policy(const std::string& prefix, ChannelPolicy policy) {
  policies_.emplace_back(prefix, std::move(policy));
}

void Realtime::route(jobs::Outbox& outbox, const std::string& event_type, EventRoute route) {
  if (routes_[event_type].empty()) outbox.subscribe(event_type, "realtime", [this](const json& event) { on_event(event); });
  routes_[event_type].push_back(std::move(route));
}

void Realtime::on_event(const json& event) {
  auto it = routes_.find(event.value("type", ""));
  if (it == routes_.end()) return;
  json payload = event.value("payload", json::object());
  payload["event_id"] = event.value("id", "");
  payload["occurred_at"] = event.value("created_at", "");
  for (const auto& route : it->second)
    for (const auto& d : route(payload)) publish(d.channel, d.event, d.data);
}

bool Realtime::check_policy(db::Tx& tx, const identity::Principal& who, const std::string& channel) {
  std::string rest = channel.substr(channel.find('-') + 1);
  if (rest.rfind("user.", 0) == 0) return is_private(channel) && rest.substr(5) == who.user_id;
  for (const auto& [prefix, policy] : policies_)
    if (rest.rfind(prefix, 0) == 0) return policy(tx, who, rest.substr(prefix.size()));
  return false;
}

json Realtime::authorize(db::Tx& tx, const identity::Principal& who, const std::string& socket_id,
                         const std::string& channel) {
  json problems = json::object();
  if (!valid_socket_id(socket_id)) problems["socket_id"] = "must be the socket id the connection was given";
  if (!valid_channel(channel)) problems["channel_name"] = "must be 1 to 164 of A-Z a-z 0-9 _ - = @ , . ;";
  else if (!is_private(channel) && !is_presence(channel))
    problems["channel_name"] = "public channels need no authorisation";
  if (!problems.empty()) throw ApiError::validation(problems);
  if (!check_policy(tx, who, channel))
    throw ApiError(403, "channel_forbidden", "You may not subscribe to " + channel + ".");
  if (!is_presence(channel)) return {{"auth", options_.key + ":" + sign(socket_id + ":" + channel)}};
  auto people = identity_.summaries(tx, {who.user_id});
  json profile = identity::summary_of(people, who.user_id);
  json info = {{"name", profile.value("display_name", "")}, {"avatar_url", profile.value("avatar_url", json(nullptr))}};
  std::string channel_data = dump_json(json{{"user_id", who.user_id}, {"user_info", info}});
  return {{"auth", options_.key + ":" + sign(socket_id + ":" + channel + ":" + channel_data)},
          {"channel_data", channel_data}};
}

ChannelInfo Realtime::channel_info(const std::string& channel) { return hub_->info(channel); }

std::vector<std::pair<std::string, ChannelInfo>> Realtime::channels(const std::string& prefix) {
  return hub_->list(prefix);
}

std::vector<std::string> Realtime::users(const std::string& channel) {
  std::vector<std::string> out;
  for (const auto& m : hub_->members(channel)) out.push_back(m.user_id);
  return out;
}

bool Realtime::user_online(const std::string& user_id) { return hub_->info("private-user." + user_id).occupied; }

}  // namespace souq::realtime
