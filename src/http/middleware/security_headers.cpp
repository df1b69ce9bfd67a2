#include "http/middleware.hpp"

namespace souq::api {

Middleware middleware::security_headers() {
  return [](Request& req, const Next& next) -> awaitable<Response> {
    Response res = co_await next(req);
    res.set("X-Content-Type-Options", "nosniff");
    res.set("X-Frame-Options", "DENY");
    res.set("Referrer-Policy", "no-referrer");
    if (res.find(http::field::cache_control) == res.end()) res.set(http::field::cache_control, "no-store");
    if (res.find("Content-Security-Policy") == res.end())
      res.set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
    co_return res;
  };
}

}  // namespace souq::api
