#include "http/server.hpp"

#include "core/log.hpp"

namespace souq::api {

struct Server::Connection {
  beast::tcp_stream stream;
  bool idle = true;  // waiting for a request header (may be closed on shutdown)
};

namespace {

bool is_parse_error(const beast::error_code& ec) {
  return ec.category() == make_error_code(http::error::bad_method).category() && ec != http::error::end_of_stream &&
         ec != http::error::partial_message;
}

bool wants_websocket(const http::request_parser<http::string_body>& parser) {
  const auto& h = parser.get();
  if (h.method() != http::verb::get) return false;
  return beast::iequals(h[http::field::upgrade], "websocket");
}

std::string client_address(const beast::tcp_stream& stream) {
  beast::error_code ec;
  auto endpoint = stream.socket().remote_endpoint(ec);
  return ec ? std::string("unknown") : endpoint.address().to_string();
}

// The address the nearest proxy saw: the right-most X-Forwarded-For entry.
std::string forwarded_for(const Request& req) {
  auto header = req.header("X-Forwarded-For");
  if (header.empty()) return {};
  auto comma = header.rfind(',');
  auto last = comma == std::string_view::npos ? header : header.substr(comma + 1);
  while (!last.empty() && last.front() == ' ') last.remove_prefix(1);
  while (!last.empty() && last.back() == ' ') last.remove_suffix(1);
  return std::string(last);
}

}  // namespace

Server::Server(ServerOptions options, const Router& router, const Pipeline& pipeline)
    : options_(std::move(options)), router_(router), pipeline_(pipeline),
      largest_body_(router.largest_body(options_.max_body)) {
  int threads = std::max(1, options_.threads);
  for (int i = 0; i < threads; ++i) contexts_.push_back(std::make_unique<Context>());
}

Server::~Server() { stop(); }

uint16_t Server::start() {
  auto& ioc = main_context();
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(options_.host, std::to_string(options_.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service);
  tcp::endpoint endpoint = *endpoints.begin();
  acceptor_ = std::make_unique<tcp::acceptor>(ioc);
  acceptor_->open(endpoint.protocol());
  acceptor_->set_option(asio::socket_base::reuse_address(true));
  acceptor_->bind(endpoint);
  acceptor_->listen(asio::socket_base::max_listen_connections);
  uint16_t port = acceptor_->local_endpoint().port();
  asio::co_spawn(ioc, accept_loop(), asio::detached);
  for (auto& c : contexts_)
    c->thread = std::thread([ctx = c.get()] {
      for (;;) {
        try {
          ctx->ioc.run();
          return;
        } catch (const std::exception& e) {
          // A session lets nothing escape; this is a last line of defence.
          log::error("I/O thread caught an exception", {{"error", e.what()}});
        }
      }
    });
  return port;
}

awaitable<void> Server::accept_loop() {
  size_t next = 0;
  for (;;) {
    beast::error_code ec;
    auto& context = *contexts_[next++ % contexts_.size()];
    tcp::socket socket = co_await acceptor_->async_accept(context.ioc, asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
    if (ec) {
      // Out of file descriptors and the like: wait a moment rather than spin.
      log::warn("accept failed", {{"error", ec.message()}});
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(context.ioc, session(std::move(socket), context), asio::detached);
  }
}

awaitable<void> Server::session(tcp::socket socket, Context& context) {
  Connection conn{beast::tcp_stream(std::move(socket))};
  context.connections.insert(&conn);
  struct Unregister {
    Context& c;
    Connection* conn;
    ~Unregister() { c.connections.erase(conn); }
  } unregister{context, &conn};

  const std::string peer = client_address(conn.stream);
  // Bounded: Beast does not limit a chunk-size line, so a client could grow
  // an unbounded buffer until the body timeout. Body bytes pass through it
  // into the body, so a header's worth plus a read's worth is enough.
  beast::flat_buffer buffer(options_.max_header + 64 * 1024);
  bool close = false;
  while (!close && !draining_) {
    beast::error_code ec;
    http::request_parser<http::string_body> parser;
    parser.header_limit(uint32_t(options_.max_header));
    parser.body_limit(largest_body_);
    conn.idle = true;
    conn.stream.expires_after(options_.header_timeout);
    co_await http::async_read_header(conn.stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
    conn.idle = false;

    if (!ec && upgrade_ && wants_websocket(parser)) {
      auto target = parser.get().target();
      if (std::string_view(target.data(), target.size()).rfind(upgrade_prefix_, 0) == 0) {
        // RFC 6455: a client waits for the handshake's answer before sending
        // frames, so nothing of the WebSocket stream is in `buffer` yet.
        co_await upgrade_(std::move(conn.stream), parser.release(), peer);
        co_return;
      }
    }

    Request req;
    size_t body_limit = options_.max_body;
    auto too_large = [&] {
      return ApiError(413, "payload_too_large", "The body exceeds " + std::to_string(body_limit) + " bytes.",
                      {{"max_bytes", body_limit}});
    };
    if (ec == http::error::body_limit) {  // Beast checks Content-Length against the limit with the header
      req.early_error = too_large();
    } else if (ec == http::error::header_limit) {
      req.early_error = ApiError(431, "headers_too_large",
                                 "The request headers exceed " + std::to_string(options_.max_header) + " bytes.");
    } else if (is_parse_error(ec)) {
      req.early_error = ApiError(400, "bad_request", "The request is not valid HTTP/1.1: " + ec.message() + ".");
    } else if (ec) {
      break;  // closed, reset, timed out or cancelled: nobody to answer
    }

    ++in_flight_;
    struct InFlight {
      std::atomic<int64_t>& n;
      ~InFlight() { --n; }
    } in_flight{in_flight_};

    if (!req.early_error) {
      auto length = parser.content_length();
      bool big = parser.chunked() || (length && *length > options_.max_body);
      if (largest_body_ > options_.max_body && big) {
        // Only an upload route may take more than --max-body.
        auto target = parser.get().target();
        std::string_view t(target.data(), target.size());
        body_limit = router_.body_limit(parser.get().method(), std::string(t.substr(0, t.find('?'))), options_.max_body);
        parser.body_limit(body_limit);
      }
      if (length && *length > body_limit) {
        req.early_error = too_large();
      } else if (!parser.is_done()) {
        if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
          http::response<http::empty_body> go_on{http::status::continue_, 11};
          co_await http::async_write(conn.stream, go_on, asio::redirect_error(use_awaitable, ec));
          if (ec) break;
        }
        conn.stream.expires_after(options_.body_timeout);
        co_await http::async_read(conn.stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
        if (ec == http::error::body_limit)
          req.early_error = too_large();
        else if (is_parse_error(ec))
          req.early_error = ApiError(400, "bad_request", "The request body is malformed: " + ec.message() + ".");
        else if (ec)
          break;
      }
    }

    if (req.early_error) {
      req.message.version(11);  // a default message's method is already "unknown"
      if (parser.is_header_done()) req.message = parser.release();
      req.message.body().clear();
      close = true;
    } else {
      req.message = parser.release();
    }
    req.started = std::chrono::steady_clock::now();
    req.client_ip = peer;
    if (options_.trust_proxy)
      if (auto forwarded = forwarded_for(req); !forwarded.empty()) req.client_ip = std::move(forwarded);
    auto target = std::string_view(req.message.target().data(), req.message.target().size());
    auto question = target.find('?');
    req.path = std::string(target.substr(0, question));
    if (question != std::string_view::npos) req.query = std::string(target.substr(question + 1));
    if (!req.early_error) router_.match(req);

    Response res;
    try {
      res = co_await pipeline_(req);
    } catch (const std::exception& e) {  // the recover layer should have caught it
      log::error("pipeline threw", {{"request_id", req.request_id}, {"error", e.what()}});
      res = Response{http::status::internal_server_error, 11};
      close = true;
    }
    close = close || !req.message.keep_alive() || draining_ || !res.keep_alive();
    res.version(req.message.version() == 10 ? 10 : 11);
    res.keep_alive(!close);
    res.prepare_payload();
    if (req.method() == http::verb::head) {
      // Same headers as GET, Content-Length included, and no body.
      auto length = res[http::field::content_length];
      std::string saved(length.data(), length.size());
      res.body().clear();
      res.set(http::field::content_length, saved);
    }
    conn.stream.expires_after(options_.write_timeout);
    co_await http::async_write(conn.stream, res, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
  }
  if (close && !draining_) co_await linger_close(conn);
  beast::error_code ignored;
  conn.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

// Closing a socket with unread request bytes makes the kernel send a reset,
// which can destroy the response we just wrote (a 413, say) before the client
// reads it. Half-close, then drain what the client still sends, briefly.
awaitable<void> Server::linger_close(Connection& conn) {
  beast::error_code ec;
  conn.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  conn.stream.expires_after(std::chrono::seconds(2));
  char scratch[16384];
  size_t drained = 0;
  while (!ec && drained < 4 * options_.max_body + (1 << 20))
    drained += co_await conn.stream.async_read_some(asio::buffer(scratch), asio::redirect_error(use_awaitable, ec));
}

void Server::begin_shutdown() {
  if (draining_.exchange(true)) return;
  asio::post(main_context(), [this] {
    beast::error_code ec;
    if (acceptor_) acceptor_->close(ec);
  });
  for (auto& c : contexts_)
    asio::post(c->ioc, [ctx = c.get()] {
      for (auto* conn : ctx->connections)
        if (conn->idle) conn->stream.socket().cancel();
    });
}

bool Server::wait_idle(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (in_flight_ > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& c : contexts_) {
    c->guard.reset();
    c->ioc.stop();
  }
  for (auto& c : contexts_)
    if (c->thread.joinable()) c->thread.join();
}

}  // namespace souq::api
