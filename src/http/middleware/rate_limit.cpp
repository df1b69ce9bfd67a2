#include <cmath>

#include "http/middleware.hpp"

namespace souq::api {

Middleware middleware::rate_limit(RateLimiter& limiter, std::vector<std::string> exempt) {
  return [&limiter, exempt = std::move(exempt)](Request& req, const Next& next) -> awaitable<Response> {
    // An entry ending in '/' exempts everything under it.
    for (const auto& path : exempt)
      if (req.path == path || (path.back() == '/' && req.path.rfind(path, 0) == 0)) co_return co_await next(req);
    auto decision = limiter.take(req.client_ip);
    if (!decision.allowed) {
      int seconds = std::max(1, int(std::ceil(decision.retry_after)));
      throw ApiError(429, "rate_limited", "Too many requests. Retry after " + std::to_string(seconds) + " s.",
                     {{"retry_after", seconds}});
    }
    Response res = co_await next(req);
    res.set("RateLimit-Limit", std::to_string(int(limiter.burst())));
    res.set("RateLimit-Remaining", std::to_string(int(decision.remaining)));
    co_return res;
  };
}

}  // namespace souq::api
