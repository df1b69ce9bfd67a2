// Middleware: each piece wraps the rest of the pipeline. A Pipeline is built
// once at start-up; a request runs through every layer, then the router's
// handler (or the 404/405/early error) at the end.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "http/metrics.hpp"
#include "http/rate_limiter.hpp"
#include "http/request.hpp"
#include "http/router.hpp"

namespace souq::api {

using Next = std::function<awaitable<Response>(Request&)>;
using Middleware = std::function<awaitable<Response>(Request&, const Next&)>;

class Pipeline {
 public:
  Pipeline(std::vector<Middleware> layers, Next terminal);
  awaitable<Response> operator()(Request& req) const { return nexts_.front()(req); }

 private:
  std::vector<Middleware> layers_;
  std::vector<Next> nexts_;  // nexts_[i] runs layer i; the last runs the terminal
};

// The end of the pipeline: the early error, 404, 405, or the matched route.
Next dispatch();

namespace middleware {
// Keeps a valid incoming X-Request-Id or makes one; echoes it on the response.
Middleware request_id();
// One JSON log line per request, with its request id.
Middleware access_log();
// Counts and times requests by route template.
Middleware metrics(Metrics& metrics);
// Turns any exception into an error envelope: ApiError as itself, the rest as 500.
Middleware recover();
Middleware security_headers();
struct CorsOptions {
  std::vector<std::string> origins;  // "*" allows any origin
};
Middleware cors(CorsOptions options);
// Per-client token bucket; 429 `rate_limited` with Retry-After when empty.
// `exempt` paths (health probes, metrics scrapes) are never limited.
Middleware rate_limit(RateLimiter& limiter, std::vector<std::string> exempt);
// Parses JSON bodies into req.body (400 invalid_json, 415 unsupported_media_type).
Middleware json_body(JsonLimits limits = {});
}  // namespace middleware

// Whether an incoming request id may be kept as it is.
bool valid_request_id(std::string_view id);

}  // namespace souq::api
