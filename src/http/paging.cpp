#include "http/paging.hpp"

#include "core/crypto.hpp"
#include "core/id.hpp"

namespace souq::api {

int page_limit(const Request& req, int fallback, int max) {
  auto text = req.query_param("limit");
  if (!text) return fallback;
  try {
    size_t used = 0;
    int n = std::stoi(*text, &used);
    if (used == text->size() && n >= 1 && n <= max) return n;
  } catch (const std::exception&) {
  }
  throw ApiError::validation({{"limit", "must be an integer from 1 to " + std::to_string(max)}});
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
