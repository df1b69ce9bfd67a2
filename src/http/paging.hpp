// Cursor pagination from the query string (?limit=&cursor=), the same for
// every list: 422 `validation_failed` for a limit out of range or a cursor
// this API did not give out.
#pragma once
#include <optional>
#include <string>

#include "http/request.hpp"

namespace souq::api {

// ?limit=, 1 to `max`, default `fallback`.
int page_limit(const Request& req, int fallback = 50, int max = 200);
// ?cursor= when it is an id (lists ordered by id).
std::optional<std::string> page_cursor(const Request& req);
// ?cursor= decoded when it is an opaque cursor made by encode_cursor (lists
// ordered by something else, such as a date, then the id).
std::optional<json> page_cursor_json(const Request& req);
std::string encode_cursor(const json& position);

}  // namespace souq::api
