// What a handler sees of a request, and what it returns.
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/asio.hpp"
#include "core/error.hpp"
#include "core/json.hpp"

namespace souq::api {

using Message = http::request<http::string_body>;
using Response = http::response<http::string_body>;

struct Route;

struct Request {
  Message message;
  std::string request_id;
  std::string client_ip;
  std::string path;   // the target before '?', percent-encoded as received
  std::string query;  // after '?', without it
  std::string route = "unmatched";  // the matched route's template, for logs and metrics
  std::vector<std::pair<std::string, std::string>> params;  // decoded path parameters
  json body;  // the parsed JSON body, null when there is none
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // Set by the server for a request it refuses before routing (413, 431, 400):
  // the pipeline still runs, so the refusal is logged, counted and enveloped.
  std::optional<ApiError> early_error;
  const Route* matched = nullptr;
  std::vector<http::verb> allowed;  // methods the path accepts, when it matched no route for this method

  http::verb method() const { return message.method(); }
  std::string_view header(http::field name) const;
  std::string_view header(std::string_view name) const;
  // The path parameter (throws if the route has none of that name: a programming error).
  const std::string& param(std::string_view name) const;
  int64_t int_param(std::string_view name) const;
  // The decoded query parameter, or nullopt.
  std::optional<std::string> query_param(std::string_view name) const;
  // The query parameter as a whole number or a number in [min, max], or
  // nullopt when absent; 422 `validation_failed` naming it otherwise.
  std::optional<int64_t> query_int(std::string_view name, int64_t min, int64_t max) const;
  std::optional<double> query_number(std::string_view name, double min, double max) const;
  // The JSON object body; 400 `invalid_body` when the body is missing or not an object.
  const json& json_object() const;
  json log_fields() const { return {{"request_id", request_id}}; }
};

// The pairs of a query string or form body (application/x-www-form-urlencoded),
// decoded, in order; 400 `invalid_query` when badly encoded.
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view text);

// Percent-decoding of a path segment or query component ('+' → ' ' when `plus_is_space`).
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

}  // namespace souq::api
