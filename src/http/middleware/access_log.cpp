#include "core/log.hpp"
#include "http/middleware.hpp"

namespace souq::api {

Middleware middleware::access_log() {
  return [](Request& req, const Next& next) -> awaitable<Response> {
    Response res = co_await next(req);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                        req.started).count();
    auto method = req.message.method_string();
    log::Line(log::Level::info, "request")
        .str("request_id", req.request_id)
        .str("method", method.empty() ? std::string_view("-") : std::string_view(method.data(), method.size()))
        .str("path", req.path)
        .str("route", req.route)
        .num("status", int64_t(res.result_int()))
        .num("duration_ms", double(micros) / 1000.0)
        .num("bytes", int64_t(res.body().size()))
        .str("client_ip", req.client_ip)
        .write();
    co_return res;
  };
}

}  // namespace souq::api
