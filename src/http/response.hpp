// Building HTTP responses in the API's envelopes.
#pragma once
#include "http/request.hpp"

namespace souq::api {

Response json_response(const Request& req, http::status status, const json& body);
// 200 (or `status`) with {"status":"success","data":data,"meta":{…extra_meta}}
Response ok(const Request& req, json data, http::status status = http::status::ok, const json& extra_meta = nullptr);
Response error_response(const Request& req, const ApiError& error);
// The success envelope around data already rendered as JSON text (a cached
// page), with meta.next_cursor.
Response ok_rendered(const Request& req, const std::string& data_json, const json& next_cursor);
Response text_response(const Request& req, http::status status, std::string content_type, std::string body);

}  // namespace souq::api
