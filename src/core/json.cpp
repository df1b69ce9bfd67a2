#include "core/json.hpp"

#include "core/error.hpp"

namespace souq {

json parse_json(std::string_view text, JsonLimits limits) {
  auto callback = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= limits.max_depth) {
      throw ApiError::bad_request("invalid_json", "JSON nests deeper than " + std::to_string(limits.max_depth) + " levels.",
                                  {{"max_depth", limits.max_depth}});
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::parse_error& e) {
    std::string reason = e.what();
    // nlohmann prefixes "[json.exception.parse_error.101] parse error at line 1, column 2: "
    if (auto pos = reason.find("] "); pos != std::string::npos) reason = reason.substr(pos + 2);
    throw ApiError::bad_request("invalid_json", "The body is not valid JSON: " + reason,
                                {{"byte", e.byte}});
  } catch (const json::out_of_range&) {
    // A number beyond a double (1e400): JSON, but nothing Souq could hold.
    throw ApiError::bad_request("invalid_json", "The body has a number too large to represent.");
  }
}

std::string dump_json(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace souq
