// The realtime module: a Pusher Channels (protocol 7) server in the same
// process and port as the API, so pusher-js, Laravel Echo and the Pusher
// mobile SDKs connect to Souq unchanged (ARCHITECTURE.md "Realtime").
//
//   WebSocket  /app/{key}                 connection, subscriptions, presence, client events
//   POST       /api/v1/realtime/auth      channel authorisation with the Souq access token
//              (/broadcasting/auth for Laravel Echo)
//   GET        /api/v1/realtime/config    what a client needs to connect
//   /apps/{app_id}/…                      the Pusher HTTP API (signed), for server libraries
//
// Channels: `private-user.{id}` is a user's own room; other private and
// presence channels are authorised by policies other modules register
// (conversations: participants only); public channels are open to anyone.
//
// Several nodes: every publish and every change in who is subscribed crosses
// a bus (Redis pub/sub with --redis; nothing without), and each node keeps
// the others' subscription counts and presence members, so presence events
// are per user across nodes and channel queries answer for the cluster.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/blocking.hpp"
#include "core/json.hpp"
#include "db/database.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "jobs/queue.hpp"
#include "modules/identity/module.hpp"

namespace souq::realtime {

struct Options {
  std::string app_id = "souq";
  std::string key = "souq";
  std::string secret;  // empty: made once and kept in the database
  std::chrono::seconds activity_timeout{120};  // told to clients; silence this long brings a ping
  std::chrono::seconds pong_timeout{30};       // then this long without an answer closes 4201
  double client_events_per_second = 10;        // per connection (Pusher's limit)
  size_t max_message = 10 * 1024;              // bytes in one client frame (1009 beyond)
  size_t max_connections = 100000;             // per node (4004 beyond)
  size_t max_channels_per_socket = 100;
  std::string redis;  // redis://[:password@]host:port: the bus between nodes
  std::string node_id;
  // Where clients connect, for GET /realtime/config (empty: the request's Host).
  std::string public_host;
  int public_port = 0;
  bool public_tls = false;
};

class Hub;
class Bus;
class Connection;

// The data of a presence member: {user_id, user_info}.
struct Member {
  std::string user_id;
  json info;
};

struct ChannelInfo {
  bool occupied = false;
  int64_t subscription_count = 0;
  int64_t user_count = 0;  // presence channels
};

// Decides whether a signed-in user may join a private or presence channel
// whose name starts with a registered prefix; `rest` is the name after it.
using ChannelPolicy = std::function<bool(db::Tx& tx, const identity::Principal& who, const std::string& rest)>;

// Turns a domain event into channel events: (channel, event name, data).
struct Delivery {
  std::string channel;
  std::string event;
  json data;
};
using EventRoute = std::function<std::vector<Delivery>(const json& event)>;

class Realtime {
 public:
  Realtime(db::Database& db, identity::Identity& identity, Options options);
  ~Realtime();

  // Loads or makes the secret and starts the bus (Redis). Call once.
  void start();
  // Closes every socket with 4200 (reconnect at once: to another node), says
  // goodbye on the bus, and stops it. Before the server stops.
  void shutdown();
  // After shutdown(): waits until every socket has finished its closing
  // handshake or `timeout` passes; true when all are closed.
  bool wait_closed(std::chrono::milliseconds timeout);
  // After the server's I/O threads stopped and before its io_contexts go:
  // drops the sockets that never finished closing.
  void release();

  // Publishes to a channel on every node. `data` is sent as the protocol
  // wants it: a JSON-encoded string. `except_socket` does not receive it.
  void publish(const std::string& channel, const std::string& event, const json& data,
               const std::string& except_socket = {});
  void publish_raw(const std::string& channel, const std::string& event, const std::string& data,
                   const std::string& except_socket = {});

  // Messages between nodes for other modules (a product changed: forget
  // its cached page). Best-effort, like the bus; nothing without Redis.
  // Handlers are registered before start().
  void on_node_message(const std::string& topic, std::function<void(const json& data)> handler);
  void send_node_message(const std::string& topic, const json& data);

  // Policies for private-/presence- channels beyond private-user.{id}.
  void add_policy(const std::string& prefix, ChannelPolicy policy);
  // Domain events (outbox) that become channel events.
  void route(jobs::Outbox& outbox, const std::string& event_type, EventRoute route);

  // Channel authorisation: the signature a client presents in pusher:subscribe.
  // 403 `channel_forbidden` when the policy says no, 422 for a bad name or
  // socket id. Returns {auth[, channel_data]}.
  json authorize(db::Tx& tx, const identity::Principal& who, const std::string& socket_id, const std::string& channel);
  std::string sign(std::string_view text) const;

  // The cluster's view of channels.
  ChannelInfo channel_info(const std::string& channel);
  std::vector<std::pair<std::string, ChannelInfo>> channels(const std::string& prefix);
  std::vector<std::string> users(const std::string& channel);
  // Whether the user has a socket subscribed to private-user.{id} on any node.
  bool user_online(const std::string& user_id);
  int64_t connection_count() const;

  // The WebSocket endpoint, for Server::on_upgrade("/app/", …).
  api::UpgradeHandler upgrade_handler();

  const Options& options() const { return options_; }

 private:
  friend class Connection;
  // False when this node is at max_connections.
  bool register_socket(const std::shared_ptr<Connection>& c);
  void forget_socket(const std::string& id);
  bool check_policy(db::Tx& tx, const identity::Principal& who, const std::string& channel);

  void on_event(const json& event);

  db::Database& db_;
  identity::Identity& identity_;
  Options options_;
  std::map<std::string, std::vector<EventRoute>> routes_;
  std::unique_ptr<Hub> hub_;
  std::map<std::string, std::vector<std::function<void(const json&)>>> node_handlers_;
  std::unique_ptr<Bus> bus_;
  std::vector<std::pair<std::string, ChannelPolicy>> policies_;
  struct Sockets;
  std::unique_ptr<Sockets> sockets_;
};

// /api/v1/realtime/{config,auth}, /broadcasting/auth and the Pusher HTTP API.
void register_routes(api::Router& router, Realtime& realtime, identity::Identity& identity, BlockingPool& blocking);

// Channel names as Pusher allows them: 1–164 of [A-Za-z0-9_-=@,.;].
bool valid_channel(std::string_view name);
// A socket id as this server makes them: digits '.' digits.
bool valid_socket_id(std::string_view id);

}  // namespace souq::realtime
