#include "http/paging.hpp"

#include "core/crypto.hpp"
#include "core/id.hpp"

namespace souq::api {

int page_limit(const Request& req, int fallback, int max) {
  return int(req.query_int("limit", 1, max).value_or(fallback));
}

std::optional<std::string> page_cursor(const Request& req) {
  auto cursor = req.query_param("cursor");
  if (cursor && !is_id(*cursor)) throw ApiError::validation({{"cursor", "is not a cursor this API gave out"}});
  return cursor;
}

std::optional<json> page_cursor_json(const Request& req) {
  auto cursor = req.query_param("cursor");
  if (!cursor) return std::nullopt;
  auto bytes = crypto::base64url_decode(*cursor);
  auto parsed = bytes ? json::parse(*bytes, nullptr, false) : json();
  if (!bytes || parsed.is_discarded() || !parsed.is_array())
    throw ApiError::validation({{"cursor", "is not a cursor this API gave out"}});
  return parsed;
}

std::string encode_cursor(const json& position) { return crypto::base64url_encode(position.dump()); }

}  // namespace souq::api
