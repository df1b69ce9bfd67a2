#include "core/id.hpp"
#include "http/middleware.hpp"

namespace souq::api {

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':')) return false;
  return true;
}

Middleware middleware::request_id() {
  return [](Request& req, const Next& next) -> awaitable<Response> {
    auto incoming = req.header("X-Request-Id");
    req.request_id = valid_request_id(incoming) ? std::string(incoming) : new_id("rid");
    Response res = co_await next(req);
    res.set("X-Request-Id", req.request_id);
    co_return res;
  };
}

}  // namespace souq::api
