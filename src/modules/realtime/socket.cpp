// One WebSocket connection speaking the Pusher protocol (version 7).
#include <sodium.h>

#include <boost/beast/websocket.hpp>
#include <deque>
#include <set>

#include "core/crypto.hpp"
#include "core/log.hpp"
#include "modules/realtime/connection.hpp"
#include "modules/realtime/hub.hpp"

namespace souq::realtime {

namespace websocket = beast::websocket;

namespace {

// Close codes of the protocol (a 4000s code tells pusher-js what to do next).
constexpr std::chrono::seconds kWriteTimeout{30};
constexpr uint16_t kAppNotFound = 4001, kNoProtocol = 4008, kBadProtocol = 4007, kOverCapacity = 4100,
                   kReconnectNow = 4200, kPongTimeout = 4201, kRateLimited = 4301;

std::string make_socket_id() {
  return std::to_string(randombytes_uniform(1000000000u) + 1) + "." + std::to_string(randombytes_uniform(1000000000u) + 1);
}

// A query parameter of the upgrade request (nullopt also when badly encoded).
std::optional<std::string> query_value(std::string_view query, std::string_view name) {
  try {
    for (auto& [k, v] : api::parse_form(query))
      if (k == name) return v;
  } catch (const ApiError&) {
  }
  return std::nullopt;
}

// A close frame's reason is at most 123 bytes.
websocket::close_reason close_with(uint16_t code, std::string_view reason) {
  reason = reason.substr(0, 123);
  return websocket::close_reason(websocket::close_code(code), beast::string_view(reason.data(), reason.size()));
}

}  // namespace

struct Connection::Out {
  std::shared_ptr<const std::string> frame;
  std::optional<websocket::close_reason> close;
};

struct Connection::State {
  explicit State(beast::tcp_stream stream) : ws(std::move(stream)), timer(ws.get_executor()), watchdog(ws.get_executor()) {}
  websocket::stream<beast::tcp_stream> ws;
  asio::steady_timer timer;
  asio::steady_timer watchdog;  // a write that takes longer than kWriteTimeout closes the socket
  std::deque<Out> queue;
  size_t queued_bytes = 0;
  bool done = false;     // the reader has finished: the writer drains and ends
  bool closing = false;  // a close is queued or sent: nothing more is queued
  std::chrono::steady_clock::time_point last_heard = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> pinged;
  std::set<std::string> channels;
  std::map<std::string, std::string> presence_user;  // presence channel → user id
  double tokens = 0;  // client events allowed now
  std::chrono::steady_clock::time_point refilled = std::chrono::steady_clock::now();
};

Connection::Connection(Realtime& realtime, Hub& hub, beast::tcp_stream stream, std::string peer)
    : realtime_(realtime), hub_(hub), id_(make_socket_id()), peer_(std::move(peer)),
      state_(std::make_unique<State>(std::move(stream))) {
  state_->tokens = realtime_.options().client_events_per_second;
}

Connection::~Connection() = default;

void Connection::deliver(std::shared_ptr<const std::string> frame) {
  asio::post(state_->ws.get_executor(), [self = shared_from_this(), frame = std::move(frame)]() mutable {
    self->enqueue({std::move(frame), std::nullopt});
  });
}

void Connection::close(uint16_t code, std::string reason) {
  asio::post(state_->ws.get_executor(), [self = shared_from_this(), code, reason = std::move(reason)] {
    self->error(code, reason);
    self->enqueue({nullptr, close_with(code, reason)});
  });
}

void Connection::enqueue(Out out) {
  auto& s = *state_;
  if (s.closing || s.done) return;
  if (out.close) {
    s.closing = true;
  } else {
    s.queued_bytes += out.frame->size();
    // A client that stops reading is not allowed to hold the server's memory:
    // it is told to come back later (4100: reconnect after a pause).
    if (s.queue.size() >= 2000 || s.queued_bytes > (4u << 20)) {
      log::warn("realtime: closing a socket that does not read", {{"socket_id", id_}, {"queued", s.queue.size()}});
      s.queue.clear();
      s.queued_bytes = 0;
      s.closing = true;
      s.queue.push_back({nullptr, close_with(kOverCapacity, "Too many unread messages")});
      s.timer.cancel();
      return;
    }
  }
  s.queue.push_back(std::move(out));
  s.timer.cancel();
}

void Connection::send(std::string_view event, const json& data, std::string_view channel) {
  enqueue({make_frame(event, channel, data), std::nullopt});
}

void Connection::error(std::optional<int> code, const std::string& message, const std::string& channel) {
  // The protocol's one error whose data is an object, not a string.
  json frame = {{"event", "pusher:error"}, {"data", {{"code", code ? json(*code) : json(nullptr)}, {"message", message}}}};
  if (!channel.empty()) frame["channel"] = channel;
  enqueue({std::make_shared<const std::string>(dump_json(frame)), std::nullopt});
}

void Connection::refuse(uint16_t code, const std::string& message) {
  error(code, message);
  enqueue({nullptr, close_with(code, message)});
}

// Sends what is queued, in order; between frames it watches for silence:
// after activity_timeout it pings, after pong_timeout more it closes 4201.
awaitable<void> Connection::writer(std::shared_ptr<Connection> self) {
  auto& s = *state_;
  const auto& o = realtime_.options();
  for (;;) {
    while (s.queue.empty() && !s.done) {
      auto deadline = s.pinged ? *s.pinged + o.pong_timeout : s.last_heard + o.activity_timeout;
      s.timer.expires_at(deadline);
      boost::system::error_code ec;
      co_await s.timer.async_wait(asio::redirect_error(use_awaitable, ec));
      if (ec || s.closing) continue;  // woken by a new frame (or a close already queued)
      auto now = std::chrono::steady_clock::now();
      if (s.pinged && now >= *s.pinged + o.pong_timeout) {
        refuse(kPongTimeout, "Pong reply not received");
      } else if (!s.pinged && now >= s.last_heard + o.activity_timeout) {
        s.pinged = now;
        send("pusher:ping", json::object());
      }
    }
    if (s.queue.empty()) break;
    Out out = std::move(s.queue.front());
    s.queue.pop_front();
    boost::system::error_code ec;
    if (out.close) {
      co_await s.ws.async_close(*out.close, asio::redirect_error(use_awaitable, ec));
      break;
    }
    s.queued_bytes -= out.frame->size();
    // A peer that stops reading would hold this write (and the socket) for
    // ever: past the deadline the socket is closed, which ends both loops.
    s.watchdog.expires_after(kWriteTimeout);
    s.watchdog.async_wait([&s](const boost::system::error_code& e) {
      if (e) return;
      beast::error_code ignored;
      beast::get_lowest_layer(s.ws).socket().close(ignored);
    });
    co_await s.ws.async_write(asio::buffer(*out.frame), asio::redirect_error(use_awaitable, ec));
    s.watchdog.cancel();
    if (ec) break;
  }
  s.done = true;
  // Whatever stopped the writer, the reader must not wait for a peer that
  // will hear nothing more.
  beast::error_code ignored;
  beast::get_lowest_layer(s.ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
}

awaitable<void> Connection::run(api::Message request) {
  auto& s = *state_;
  auto self = shared_from_this();
  websocket::stream_base::timeout timeouts{std::chrono::seconds(10), websocket::stream_base::none(), false};
  s.ws.set_option(timeouts);
  s.ws.read_message_max(realtime_.options().max_message);
  s.ws.auto_fragment(false);
  s.ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "souq"); }));
  beast::get_lowest_layer(s.ws).expires_never();
  boost::system::error_code ec;
  co_await s.ws.async_accept(request, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return;

  auto writing = writer(self);
  asio::co_spawn(s.ws.get_executor(), std::move(writing), asio::detached);

  // /app/{key}?protocol=7&client=js&version=…
  auto target = std::string_view(request.target().data(), request.target().size());
  auto question = target.find('?');
  std::string_view path = target.substr(0, question);
  std::string_view query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  std::string key(path.substr(std::min(path.size(), std::string_view("/app/").size())));
  auto protocol = query_value(query, "protocol");
  bool registered = false;
  if (key != realtime_.options().key) {
    refuse(kAppNotFound, "App key " + key + " does not exist.");
  } else if (!protocol || protocol->empty()) {
    refuse(kNoProtocol, "No protocol version supplied.");
  } else if (*protocol != "5" && *protocol != "6" && *protocol != "7") {
    refuse(kBadProtocol, "Unsupported protocol version " + *protocol + "; this server speaks 5 to 7.");
  } else if (!realtime_.register_socket(self)) {
    refuse(kOverCapacity, "This server is at its connection limit; try again shortly.");
  } else {
    registered = true;
    send("pusher:connection_established",
         json{{"socket_id", id_}, {"activity_timeout", realtime_.options().activity_timeout.count()}});
  }

  beast::flat_buffer buffer;
  while (!s.done) {
    buffer.clear();
    co_await s.ws.async_read(buffer, asio::redirect_error(use_awaitable, ec));
    if (ec) break;
    s.last_heard = std::chrono::steady_clock::now();
    s.pinged.reset();
    if (!registered || s.closing) continue;  // the refusal is on its way
    if (!s.ws.got_text()) {
      refuse(1003, "Binary frames are not part of the protocol.");
      continue;
    }
    auto data = buffer.data();
    handle(std::string_view(static_cast<const char*>(data.data()), data.size()));
  }
  if (ec == websocket::error::message_too_big) {
    log::info("realtime: frame over the limit; closed 1009", {{"socket_id", id_}, {"peer", peer_}});
    // Beast has sent the 1009 close; closing with the rest of the frame
    // unread would reset the connection and lose it. Read and drop what the
    // client still sends, briefly.
    auto& stream = beast::get_lowest_layer(s.ws);
    stream.expires_after(std::chrono::seconds(2));
    char scratch[16384];
    boost::system::error_code drain;
    size_t drained = 0;
    while (!drain && drained < (8u << 20))
      drained += co_await stream.async_read_some(asio::buffer(scratch), asio::redirect_error(use_awaitable, drain));
  }
  // Leave every channel (member_removed where this was the user's last socket).
  for (const auto& channel : s.channels) {
    auto user = s.presence_user.find(channel);
    hub_.unsubscribe(*this, channel, user == s.presence_user.end() ? nullptr : &user->second);
  }
  s.channels.clear();
  if (registered) realtime_.forget_socket(id_);
  s.done = true;
  s.timer.cancel();
}

void Connection::handle(std::string_view text) {
  auto message = json::parse(text, nullptr, false);
  if (!message.is_object() || !message.contains("event") || !message["event"].is_string()) {
    error(std::nullopt, "Messages must be JSON objects with an event name.");
    return;
  }
  std::string event = message["event"].get<std::string>();
  json data = message.contains("data") ? message["data"] : json::object();
  if (data.is_string() && event.rfind("pusher:", 0) == 0) {
    // Some clients send the data of protocol messages as a JSON string.
    auto parsed = json::parse(data.get<std::string>(), nullptr, false);
    if (!parsed.is_discarded()) data = std::move(parsed);
  }
  if (event == "pusher:ping") {
    send("pusher:pong", json::object());
  } else if (event == "pusher:pong") {
    // last_heard is already updated
  } else if (event == "pusher:subscribe") {
    subscribe(data);
  } else if (event == "pusher:unsubscribe") {
    if (data.is_object() && data.contains("channel") && data["channel"].is_string()) {
      std::string channel = data["channel"].get<std::string>();
      auto& s = *state_;
      if (s.channels.erase(channel)) {
        auto user = s.presence_user.find(channel);
        hub_.unsubscribe(*this, channel, user == s.presence_user.end() ? nullptr : &user->second);
        if (user != s.presence_user.end()) s.presence_user.erase(user);
      }
    }
  } else if (event.rfind("client-", 0) == 0) {
    client_event(event, message);
  } else {
    error(std::nullopt, "Unknown event " + event.substr(0, 64) + ".");
  }
}

void Connection::subscription_error(const std::string& channel, const std::string& type, const std::string& message,
                                    int status) {
  json frame = {{"event", "pusher:subscription_error"},
                {"channel", channel},
                {"data", {{"type", type}, {"error", message}, {"status", status}}}};
  enqueue({std::make_shared<const std::string>(dump_json(frame)), std::nullopt});
}

void Connection::subscribe(const json& data) {
  auto& s = *state_;
  if (!data.is_object() || !data.contains("channel") || !data["channel"].is_string()) {
    error(std::nullopt, "pusher:subscribe needs data.channel.");
    return;
  }
  std::string channel = data["channel"].get<std::string>();
  if (!valid_channel(channel)) {
    subscription_error(channel.substr(0, 200), "InvalidChannel",
                       "Channel names are 1 to 164 of A-Z a-z 0-9 _ - = @ , . ;", 400);
    return;
  }
  if (!s.channels.count(channel) && s.channels.size() >= realtime_.options().max_channels_per_socket) {
    subscription_error(channel, "LimitReached", "This connection is subscribed to too many channels.", 400);
    return;
  }
  std::optional<Member> member;
  if (is_private(channel) || is_presence(channel)) {
    std::string auth = data.contains("auth") && data["auth"].is_string() ? data["auth"].get<std::string>() : "";
    std::string channel_data;
    std::string signed_text = id_ + ":" + channel;
    if (is_presence(channel)) {
      if (!data.contains("channel_data") || !data["channel_data"].is_string()) {
        subscription_error(channel, "AuthError", "Presence channels need channel_data.", 401);
        return;
      }
      channel_data = data["channel_data"].get<std::string>();
      signed_text += ":" + channel_data;
    }
    std::string expected = realtime_.options().key + ":" + realtime_.sign(signed_text);
    if (!crypto::equal_constant_time(auth, expected)) {
      subscription_error(channel, "AuthError", "Invalid signature for this socket and channel.", 401);
      return;
    }
    if (is_presence(channel)) {
      auto parsed = json::parse(channel_data, nullptr, false);
      if (!parsed.is_object() || !parsed.contains("user_id") ||
          !(parsed["user_id"].is_string() || parsed["user_id"].is_number_integer())) {
        subscription_error(channel, "AuthError", "channel_data must name a user_id.", 401);
        return;
      }
      auto& user = parsed["user_id"];
      member = Member{user.is_string() ? user.get<std::string>() : std::to_string(user.get<int64_t>()),
                      parsed.value("user_info", json::object())};
    }
  }
  bool again = s.channels.count(channel) > 0;
  if (again && member && s.presence_user[channel] != member->user_id) {
    subscription_error(channel, "AuthError", "Already subscribed as another user.", 409);
    return;
  }
  s.channels.insert(channel);
  if (member) s.presence_user[channel] = member->user_id;
  auto joined = hub_.subscribe(std::static_pointer_cast<Subscriber>(shared_from_this()), channel,
                               member ? &*member : nullptr);
  send("pusher_internal:subscription_succeeded", member ? json{{"presence", joined.presence}} : json::object(), channel);
}

void Connection::client_event(const std::string& event, const json& message) {
  auto& s = *state_;
  std::string channel = message.contains("channel") && message["channel"].is_string() ? message["channel"].get<std::string>() : "";
  if (!is_private(channel) && !is_presence(channel)) {
    error(std::nullopt, "Client event rejected - only supported on private and presence channels", channel);
    return;
  }
  if (!s.channels.count(channel)) {
    error(std::nullopt, "Client event rejected - you are not subscribed to this channel", channel);
    return;
  }
  if (event.size() > 200) {
    error(kRateLimited, "Client event rejected - the event name is longer than 200 characters", channel);
    return;
  }
  auto now = std::chrono::steady_clock::now();
  double rate = realtime_.options().client_events_per_second;
  s.tokens = std::min(rate, s.tokens + rate * std::chrono::duration<double>(now - s.refilled).count());
  s.refilled = now;
  if (s.tokens < 1) {
    error(kRateLimited, "Client event rejected due to rate limit", channel);
    return;
  }
  s.tokens -= 1;
  const std::string* user = nullptr;
  if (auto it = s.presence_user.find(channel); it != s.presence_user.end()) user = &it->second;
  json data = message.contains("data") ? message["data"] : json::object();
  // Relayed as the client sent it (pusher-js sends an object), with the
  // sender's user id on presence channels.
  json frame = {{"event", event}, {"channel", channel}, {"data", data}};
  if (user) frame["user_id"] = *user;
  hub_.publish(channel, std::make_shared<const std::string>(dump_json(frame)), id_);
}

void Connection::shutdown_now() { close(kReconnectNow, "Server closed. Please reconnect shortly."); }

}  // namespace souq::realtime
