#include "http/request.hpp"

#include <charconv>

namespace souq::api {

std::string_view Request::header(http::field name) const {
  auto it = message.find(name);
  return it == message.end() ? std::string_view{} : std::string_view(it->value().data(), it->value().size());
}

std::string_view Request::header(std::string_view name) const {
  auto it = message.find(beast::string_view(name.data(), name.size()));
  return it == message.end() ? std::string_view{} : std::string_view(it->value().data(), it->value().size());
}

const std::string& Request::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  throw std::logic_error("route has no path parameter " + std::string(name));
}

int64_t Request::int_param(std::string_view name) const { return std::stoll(param(name)); }

std::optional<std::string> Request::query_param(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    if (!key || *key != name) continue;
    if (eq == std::string_view::npos) return std::string();
    auto value = percent_decode(pair.substr(eq + 1), true);
    if (!value) throw ApiError::bad_request("invalid_query", "Query parameter " + std::string(name) + " is badly encoded.");
    return value;
  }
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> parse_form(std::string_view rest) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = eq == std::string_view::npos ? std::optional<std::string>("") : percent_decode(pair.substr(eq + 1), true);
    if (!key || !value) throw ApiError::bad_request("invalid_query", "The query or form is badly encoded.");
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

std::optional<int64_t> Request::query_int(std::string_view name, int64_t min, int64_t max) const {
  auto text = query_param(name);
  if (!text) return std::nullopt;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (ec != std::errc() || end != text->data() + text->size() || n < min || n > max)
    throw ApiError::validation(
        {{std::string(name), "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max)}});
  return n;
}

std::optional<double> Request::query_number(std::string_view name, double min, double max) const {
  auto text = query_param(name);
  if (!text) return std::nullopt;
  try {
    size_t used = 0;
    double n = std::stod(*text, &used);
    if (used == text->size() && n >= min && n <= max) return n;
  } catch (const std::exception&) {
  }
  throw ApiError::validation({{std::string(name), "must be a number from " + json(min).dump() + " to " + json(max).dump()}});
}

const json& Request::json_object() const {
  if (!body.is_object()) throw ApiError::bad_request("invalid_body", "The request body must be a JSON object.");
  return body;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = hex(text[i + 1]), lo = hex(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += char(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace souq::api
