// The HTTP/1.1 server: Boost.Beast on C++20 coroutines, one io_context and
// thread per I/O thread, keep-alive, bounded headers and bodies, header and
// body timeouts, and a drain on shutdown that lets in-flight requests finish.
#pragma once
#include <atomic>
#include <functional>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "http/middleware.hpp"
#include "http/router.hpp"

namespace souq::api {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  int threads = 1;
  size_t max_body = 1 << 20;
  size_t max_header = 16 * 1024;
  std::chrono::seconds header_timeout{30};  // idle keep-alive wait plus reading the header
  std::chrono::seconds body_timeout{30};
  std::chrono::seconds write_timeout{30};
  bool trust_proxy = false;  // take the client address from X-Forwarded-For
};

// Takes over a connection whose request asks to upgrade to WebSocket: the
// stream, the request (header only: an upgrade has no body) and the client's
// address. It owns the connection until it returns.
using UpgradeHandler = std::function<awaitable<void>(beast::tcp_stream stream, Message request, std::string peer)>;

class Server {
 public:
  Server(ServerOptions options, const Router& router, const Pipeline& pipeline);
  ~Server();

  // Binds and listens (throws std::system_error when the address is taken),
  // starts the I/O threads, returns the bound port.
  uint16_t start();
  // Stops accepting, closes idle connections, and makes busy ones close after
  // their response. Safe from any thread.
  void begin_shutdown();
  // Blocks until no request is in flight or the timeout passes; true if idle.
  bool wait_idle(std::chrono::milliseconds timeout);
  // Stops the I/O threads and joins them.
  void stop();

  // Upgrade requests (GET with "Upgrade: websocket") whose path starts with
  // `prefix` go to `handler` instead of the router. Set before start().
  void on_upgrade(std::string prefix, UpgradeHandler handler) {
    upgrade_prefix_ = std::move(prefix);
    upgrade_ = std::move(handler);
  }

  bool draining() const { return draining_; }
  int64_t in_flight() const { return in_flight_; }
  asio::io_context& main_context() { return contexts_.front()->ioc; }

 private:
  struct Connection;
  struct Context {
    // Declared first so it is destroyed last: destroying ioc destroys the
    // session frames still in it, which unregister themselves from this set.
    std::unordered_set<Connection*> connections;  // touched only on this context's thread
    asio::io_context ioc{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(ioc);
    std::thread thread;
  };

  awaitable<void> accept_loop();
  awaitable<void> session(tcp::socket socket, Context& context);
  awaitable<void> linger_close(Connection& conn);

  ServerOptions options_;
  const Router& router_;
  const Pipeline& pipeline_;
  std::vector<std::unique_ptr<Context>> contexts_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};
  bool stopped_ = false;
  size_t largest_body_;  // what the parser lets through before the route is known
  std::string upgrade_prefix_;
  UpgradeHandler upgrade_;
};

}  // namespace souq::api
