#include "core/envelope.hpp"

#include "core/time.hpp"

namespace souq {
json envelope_meta(const std::string& request_id, const json& extra) {
  json m = {{"request_id", request_id}, {"timestamp", now_text()}};
  if (extra.is_object())
    for (auto& [k, v] : extra.items()) m[k] = v;
  return m;
}

json success_envelope(json data, const std::string& request_id, const json& extra_meta) {
  return {{"status", "success"}, {"data", std::move(data)}, {"meta", envelope_meta(request_id, extra_meta)}};
}

json error_envelope(const ApiError& error, const std::string& request_id) {
  json e = {{"code", error.code()}, {"message", error.what()}};
  if (!error.details().is_null()) e["details"] = error.details();
  return {{"status", "error"}, {"error", std::move(e)}, {"meta", envelope_meta(request_id, nullptr)}};
}

}  // namespace souq
