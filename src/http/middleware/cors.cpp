#include <algorithm>

#include "http/middleware.hpp"

namespace souq::api {

Middleware middleware::cors(CorsOptions options) {
  bool any = std::find(options.origins.begin(), options.origins.end(), "*") != options.origins.end();
  return [options = std::move(options), any](Request& req, const Next& next) -> awaitable<Response> {
    auto origin = req.header(http::field::origin);
    bool allowed = !origin.empty() && (any || std::find(options.origins.begin(), options.origins.end(), origin) !=
                                                  options.origins.end());
    bool preflight = req.method() == http::verb::options && !origin.empty() &&
                     !req.header(http::field::access_control_request_method).empty();
    Response res;
    if (preflight) {
      res = Response{http::status::no_content, req.message.version()};
      if (allowed) {
        res.set(http::field::access_control_allow_methods, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
        res.set(http::field::access_control_allow_headers,
                "Authorization, Content-Type, Idempotency-Key, X-Request-Id");
        res.set(http::field::access_control_max_age, "600");
      }
    } else {
      res = co_await next(req);
    }
    if (allowed) {
      res.set(http::field::access_control_allow_origin, std::string(origin));
      // Credentials only for origins named one by one, never for "*".
      if (!any) res.set(http::field::access_control_allow_credentials, "true");
      res.set(http::field::access_control_expose_headers, "X-Request-Id, Retry-After, Idempotent-Replayed, Original-Request");
    }
    if (!options.origins.empty()) res.set(http::field::vary, "Origin");
    co_return res;
  };
}

}  // namespace souq::api
