// The bus between nodes: Redis pub/sub on one channel per app. Every node
// publishes its channel events and subscription changes and hears everyone
// else's. Messages are best-effort, like realtime delivery itself: while
// Redis is away they are dropped (bounded), and on reconnecting a node asks
// the others for their state again.
#pragma once
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/asio.hpp"

namespace souq::realtime {

struct RedisAddress {
  std::string host = "127.0.0.1";
  std::string port = "6379";
  std::string user;
  std::string password;
  int db = 0;
};
// redis://[[user]:password@]host[:port][/db]; throws std::invalid_argument.
RedisAddress parse_redis_url(const std::string& url);

// One RESP value (what Redis answers).
struct Resp {
  char type = 0;  // + - : $ * (or 0 for a null bulk string or array)
  std::string text;
  int64_t number = 0;
  std::vector<Resp> items;
};
// Parses one value from `data` at `pos`; advances `pos` and returns it, or
// nullopt when more bytes are needed. Throws std::runtime_error on garbage.
std::optional<Resp> parse_resp(std::string_view data, size_t& pos);
// The RESP array of bulk strings for a command.
std::string resp_command(const std::vector<std::string_view>& args);

class Bus {
 public:
  struct Handlers {
    std::function<void(std::string_view message)> message;
    std::function<void()> connected;  // subscribed (again): time to say hello
    std::function<void()> tick;       // every `tick_every` on the bus thread
  };
  Bus(RedisAddress address, std::string channel, Handlers handlers,
      std::chrono::milliseconds tick_every = std::chrono::milliseconds(2000));
  ~Bus();
  void start();
  // Sends what is queued (briefly), then stops and joins.
  void stop();
  // Thread-safe; dropped beyond 100,000 waiting messages.
  void publish(std::string message);
  bool connected() const { return subscribed_; }

 private:
  awaitable<void> subscriber();
  awaitable<void> publisher();
  awaitable<void> ticker();
  awaitable<tcp::socket> connect(const char* role);

  RedisAddress address_;
  std::string channel_;
  Handlers handlers_;
  std::chrono::milliseconds tick_every_;
  asio::io_context ioc_{1};
  asio::steady_timer wake_{ioc_};
  std::deque<std::string> queue_;  // touched on the bus thread only
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> subscribed_{false};
  std::atomic<size_t> queued_{0};
  size_t dropped_ = 0;
};

}  // namespace souq::realtime
