// One realtime socket (socket.cpp). Runs on the I/O thread that accepted it;
// deliver() and close() may be called from any thread.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "http/request.hpp"
#include "modules/realtime/hub.hpp"
#include "modules/realtime/module.hpp"

namespace souq::realtime {

class Connection : public Subscriber, public std::enable_shared_from_this<Connection> {
 public:
  Connection(Realtime& realtime, Hub& hub, beast::tcp_stream stream, std::string peer);
  ~Connection() override;
  const std::string& socket_id() const override { return id_; }
  void deliver(std::shared_ptr<const std::string> frame) override;
  void close(uint16_t code, std::string reason);
  // 4200: the server is going away; pusher-js reconnects at once (elsewhere).
  void shutdown_now();
  // The handshake, then the protocol until the socket closes.
  awaitable<void> run(api::Message request);

 private:
  struct Out;
  struct State;
  void enqueue(Out out);
  awaitable<void> writer(std::shared_ptr<Connection> self);  // holds the connection until it ends
  void send(std::string_view event, const json& data, std::string_view channel = {});
  void error(std::optional<int> code, const std::string& message, const std::string& channel = {});
  // pusher:error with the code, then a close frame with it.
  void refuse(uint16_t code, const std::string& message);
  void subscription_error(const std::string& channel, const std::string& type, const std::string& message, int status);
  void handle(std::string_view text);
  void subscribe(const json& data);
  void client_event(const std::string& event, const json& message);

  Realtime& realtime_;
  Hub& hub_;
  std::string id_;
  std::string peer_;
  std::unique_ptr<State> state_;
};

}  // namespace souq::realtime
