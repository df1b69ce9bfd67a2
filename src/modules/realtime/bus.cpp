#include "modules/realtime/bus.hpp"

#include <charconv>
#include <stdexcept>

#include "core/log.hpp"

namespace souq::realtime {

RedisAddress parse_redis_url(const std::string& url) {
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) throw std::invalid_argument("--redis must be redis://HOST:PORT, got " + url);
  RedisAddress a;
  std::string rest = url.substr(scheme.size());
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = credentials.find(':');
    if (colon == std::string::npos) {
      a.password = credentials;
    } else {
      a.user = credentials.substr(0, colon);
      a.password = credentials.substr(colon + 1);
    }
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), a.db);
      if (ec != std::errc() || p != db.data() + db.size() || a.db < 0)
        throw std::invalid_argument("--redis: the database must be a number, got " + db);
    }
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos && rest.find(']') == std::string::npos) {
    a.port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  if (!rest.empty()) a.host = rest;
  if (a.host.size() > 2 && a.host.front() == '[') a.host = a.host.substr(1, a.host.size() - 2);
  return a;
}

std::string resp_command(const std::vector<std::string_view>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (auto a : args) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out.append(a);
    out += "\r\n";
  }
  return out;
}

std::optional<Resp> parse_resp(std::string_view data, size_t& pos) {
  if (pos >= data.size()) return std::nullopt;
  auto line_end = data.find("\r\n", pos);
  if (line_end == std::string_view::npos) return std::nullopt;
  char type = data[pos];
  std::string_view line = data.substr(pos + 1, line_end - pos - 1);
  size_t after = line_end + 2;
  auto number = [&] {
    int64_t n = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), n);
    if (ec != std::errc() || p != line.data() + line.size()) throw std::runtime_error("redis: bad number in reply");
    return n;
  };
  Resp r;
  r.type = type;
  switch (type) {
    case '+':
    case '-':
      r.text = std::string(line);
      pos = after;
      return r;
    case ':':
      r.number = number();
      pos = after;
      return r;
    case '$': {
      int64_t n = number();
      if (n < 0) {
        r.type = 0;
        pos = after;
        return r;
      }
      if (data.size() < after + size_t(n) + 2) return std::nullopt;
      r.text = std::string(data.substr(after, size_t(n)));
      pos = after + size_t(n) + 2;
      return r;
    }
    case '*': {
      int64_t n = number();
      size_t p = after;
      if (n < 0) {
        r.type = 0;
        pos = after;
        return r;
      }
      for (int64_t i = 0; i < n; ++i) {
        auto item = parse_resp(data, p);
        if (!item) return std::nullopt;
        r.items.push_back(std::move(*item));
      }
      pos = p;
      return r;
    }
    default:
      throw std::runtime_error("redis: unexpected reply type");
  }
}

Bus::Bus(RedisAddress address, std::string channel, Handlers handlers, std::chrono::milliseconds tick_every)
    : address_(std::move(address)), channel_(std::move(channel)), handlers_(std::move(handlers)), tick_every_(tick_every) {}

Bus::~Bus() { stop(); }

void Bus::start() {
  asio::co_spawn(ioc_, subscriber(), asio::detached);
  asio::co_spawn(ioc_, publisher(), asio::detached);
  asio::co_spawn(ioc_, ticker(), asio::detached);
  thread_ = std::thread([this] {
    try {
      ioc_.run();
    } catch (const std::exception& e) {
      log::error("realtime bus thread stopped", {{"error", e.what()}});
    }
  });
}

void Bus::stop() {
  if (!thread_.joinable()) return;
  // Give queued messages (a goodbye) a moment to leave.
  for (int i = 0; i < 50 && queued_ > 0 && subscribed_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stopping_ = true;
  ioc_.stop();
  thread_.join();
}

void Bus::publish(std::string message) {
  if (queued_.fetch_add(1) >= 100000) {
    queued_.fetch_sub(1);
    if (dropped_++ % 10000 == 0) log::warn("realtime bus: queue full, dropping messages", {{"dropped", dropped_}});
    return;
  }
  asio::post(ioc_, [this, message = std::move(message)]() mutable {
    queue_.push_back(std::move(message));
    wake_.cancel();
  });
}

awaitable<tcp::socket> Bus::connect(const char* role) {
  auto backoff = std::chrono::milliseconds(100);
  bool warned = false;
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket(ioc_);
    tcp::resolver resolver(ioc_);
    auto endpoints = co_await resolver.async_resolve(address_.host, address_.port, asio::redirect_error(use_awaitable, ec));
    if (!ec) co_await asio::async_connect(socket, endpoints, asio::redirect_error(use_awaitable, ec));
    std::string reply;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::string hello;
      if (!address_.password.empty())
        hello += address_.user.empty() ? resp_command({"AUTH", address_.password})
                                       : resp_command({"AUTH", address_.user, address_.password});
      if (address_.db != 0) hello += resp_command({"SELECT", std::to_string(address_.db)});
      hello += resp_command({"CLIENT", "SETNAME", std::string("souq-") + role});
      co_await asio::async_write(socket, asio::buffer(hello), asio::redirect_error(use_awaitable, ec));
      // One answer per command, each +OK or an error.
      size_t expected = 1 + (address_.password.empty() ? 0 : 1) + (address_.db != 0 ? 1 : 0), pos = 0, got = 0;
      char chunk[512];
      while (!ec && got < expected) {
        size_t n = co_await socket.async_read_some(asio::buffer(chunk), asio::redirect_error(use_awaitable, ec));
        reply.append(chunk, n);
        try {
          while (auto r = parse_resp(reply, pos)) {
            ++got;
            if (r->type == '-') {
              log::error("redis refused the bus connection", {{"role", role}, {"error", r->text}});
              ec = asio::error::access_denied;
              break;
            }
          }
        } catch (const std::exception&) {
          ec = asio::error::invalid_argument;
        }
      }
    }
    if (!ec) {
      if (warned) log::info("realtime bus connected to redis again", {{"role", role}});
      co_return socket;
    }
    if (stopping_) throw std::runtime_error("stopping");
    if (!warned)
      log::warn("realtime bus: cannot reach redis, retrying",
                {{"role", role}, {"host", address_.host}, {"port", address_.port}, {"error", ec.message()}});
    warned = true;
    asio::steady_timer pause(ioc_, backoff);
    co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

awaitable<void> Bus::subscriber() {
  while (!stopping_) {
    tcp::socket socket = co_await connect("subscriber");
    boost::system::error_code ec;
    std::string subscribe = resp_command({"SUBSCRIBE", channel_});
    co_await asio::async_write(socket, asio::buffer(subscribe), asio::redirect_error(use_awaitable, ec));
    std::string buffer;
    size_t pos = 0;
    char chunk[16384];
    while (!ec) {
      size_t n = co_await socket.async_read_some(asio::buffer(chunk), asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      buffer.append(chunk, n);
      try {
        while (auto r = parse_resp(buffer, pos)) {
          if (r->type != '*' || r->items.size() < 3) continue;
          const auto& kind = r->items[0].text;
          if (kind == "message") {
            handlers_.message(r->items[2].text);
          } else if (kind == "subscribe") {
            subscribed_ = true;
            if (handlers_.connected) handlers_.connected();
          }
        }
      } catch (const std::exception& e) {
        log::error("realtime bus: unreadable redis reply", {{"error", e.what()}});
        ec = asio::error::invalid_argument;
      }
      if (pos > 0) {
        buffer.erase(0, pos);
        pos = 0;
      }
    }
    subscribed_ = false;
    if (!stopping_) log::warn("realtime bus: lost the redis subscription, reconnecting", {{"error", ec.message()}});
  }
}

awaitable<void> Bus::publisher() {
  while (!stopping_) {
    tcp::socket socket = co_await connect("publisher");
    boost::system::error_code ec;
    // Replies (subscriber counts) are read and dropped so that the socket never fills.
    auto drain = [](tcp::socket& s) -> awaitable<void> {
      boost::system::error_code e;
      char chunk[4096];
      std::string tail;
      while (!e) {
        size_t n = co_await s.async_read_some(asio::buffer(chunk), asio::redirect_error(use_awaitable, e));
        if (n > 0 && chunk[0] == '-') log::warn("redis refused a publish", {{"reply", std::string(chunk, std::min<size_t>(n, 200))}});
      }
    };
    asio::co_spawn(ioc_, drain(socket), asio::detached);
    std::string batch;
    while (!ec && !stopping_) {
      if (queue_.empty()) {
        wake_.expires_after(std::chrono::seconds(30));
        co_await wake_.async_wait(asio::redirect_error(use_awaitable, ec));
        ec = {};
        continue;
      }
      batch.clear();
      size_t taken = 0;
      while (!queue_.empty() && batch.size() < (1 << 20)) {
        batch += resp_command({"PUBLISH", channel_, queue_.front()});
        queue_.pop_front();
        ++taken;
      }
      queued_.fetch_sub(taken);
      co_await asio::async_write(socket, asio::buffer(batch), asio::redirect_error(use_awaitable, ec));
    }
    boost::system::error_code ignored;
    socket.close(ignored);
    if (!stopping_) log::warn("realtime bus: lost the redis publisher connection, reconnecting", {{"error", ec.message()}});
  }
}

awaitable<void> Bus::ticker() {
  asio::steady_timer timer(ioc_);
  while (!stopping_) {
    timer.expires_after(tick_every_);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (handlers_.tick) handlers_.tick();
  }
}

}  // namespace souq::realtime
