// The ceiling for bench/http.sh: the smallest keep-alive Beast server on
// C++20 coroutines, with the same threading model as souq (one io_context per
// thread) and a fixed JSON body of about /healthz's size. Usage: bench_hello PORT THREADS
#include <utility>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

static const std::string kBody =
    R"({"status":"success","data":{"status":"ok"},"meta":{"request_id":"rid_01jd0000000000000000000000","timestamp":"2026-11-22T00:00:00.000Z"}})";

asio::awaitable<void> session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    beast::error_code ec;
    http::request<http::string_body> req;
    co_await http::async_read(stream, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json; charset=utf-8");
    res.keep_alive(req.keep_alive());
    res.body() = kBody;
    res.prepare_payload();
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !res.keep_alive()) break;
  }
}

int main(int argc, char** argv) {
  unsigned short port = argc > 1 ? std::atoi(argv[1]) : 8081;
  int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  for (int i = 0; i < threads; ++i) contexts.push_back(std::make_unique<asio::io_context>(1));
  tcp::acceptor acceptor(*contexts[0], {asio::ip::make_address("127.0.0.1"), port});
  asio::co_spawn(*contexts[0], [&]() -> asio::awaitable<void> {
    for (size_t next = 0;; ++next) {
      auto& ctx = *contexts[next % contexts.size()];
      tcp::socket socket = co_await acceptor.async_accept(ctx, asio::use_awaitable);
      socket.set_option(tcp::no_delay(true));
      asio::co_spawn(ctx, session(std::move(socket)), asio::detached);
    }
  }, asio::detached);
  std::vector<std::thread> pool;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& c : contexts) guards.push_back(asio::make_work_guard(*c));
  for (auto& c : contexts) pool.emplace_back([c = c.get()] { c->run(); });
  for (auto& t : pool) t.join();
}
