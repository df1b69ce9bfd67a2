#include "core/log.hpp"
#include "http/middleware.hpp"

namespace souq::api {

Middleware middleware::access_log() {
  return [](Request& req, const Next& next) -> awaitable<Response> {
    Response res = co_await next(req);
    if (log::enabled(log::Level::info)) {
      auto micros = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                          req.started).count();
      log::info("request", {{"request_id", req.request_id},
                            {"method", std::string(req.message.method_string())},
                            {"path", req.path},
                            {"route", req.route},
                            {"status", res.result_int()},
                            {"duration_ms", double(micros) / 1000.0},
                            {"bytes", res.body().size()},
                            {"client_ip", req.client_ip}});
    }
    co_return res;
  };
}

}  // namespace souq::api
