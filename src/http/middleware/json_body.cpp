#include "http/middleware.hpp"

namespace souq::api {

namespace {
bool is_json_type(std::string_view type) {
  auto semicolon = type.find(';');
  auto base = type.substr(0, semicolon);
  while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
  std::string lower(base);
  for (auto& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  return lower == "application/json" || (lower.size() > 5 && lower.ends_with("+json"));
}
}  // namespace

Middleware middleware::json_body(JsonLimits limits) {
  return [limits](Request& req, const Next& next) -> awaitable<Response> {
    const auto& raw = req.message.body();
    bool raw_route = req.matched && req.matched->options.raw_body;
    if (!raw.empty() && !raw_route && req.matched) {
      if (!is_json_type(req.header(http::field::content_type)))
        throw ApiError(415, "unsupported_media_type", "Send the body as JSON with Content-Type: application/json.");
      req.body = parse_json(raw, limits);
    }
    co_return co_await next(req);
  };
}

}  // namespace souq::api
