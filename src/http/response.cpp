#include "http/response.hpp"

#include "core/envelope.hpp"

namespace souq::api {

Response text_response(const Request& req, http::status status, std::string content_type, std::string body) {
  Response res{status, req.message.version()};
  res.set(http::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

Response json_response(const Request& req, http::status status, const json& body) {
  return text_response(req, status, "application/json; charset=utf-8", dump_json(body));
}

Response ok(const Request& req, json data, http::status status, const json& extra_meta) {
  return json_response(req, status, success_envelope(std::move(data), req.request_id, extra_meta));
}

Response ok_rendered(const Request& req, const std::string& data_json, const json& next_cursor) {
  // The same text dump_json would write: keys in order, data unparsed.
  std::string body = "{\"data\":" + data_json + ",\"meta\":" +
                     dump_json(envelope_meta(req.request_id, {{"next_cursor", next_cursor}})) + ",\"status\":\"success\"}";
  return text_response(req, http::status::ok, "application/json; charset=utf-8", std::move(body));
}

Response error_response(const Request& req, const ApiError& error) {
  return json_response(req, http::status(error.status()), error_envelope(error, req.request_id));
}

}  // namespace souq::api
