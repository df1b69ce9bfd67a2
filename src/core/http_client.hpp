// Outbound HTTP for provider clients (SMS, push, payments) over libcurl.
// Blocking: call from a worker or the blocking pool, never an I/O thread.
#pragma once
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace souq {

struct HttpResult {
  long status = 0;  // 0 when no response arrived (see error)
  std::string body;
  std::string error;  // transport failure, empty when a response arrived
};

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string basic_user, basic_password;  // Basic auth when basic_user is set
  std::chrono::milliseconds timeout{10000};
};

HttpResult http_call(const HttpRequest& request);

// application/x-www-form-urlencoded encoding of key/value pairs.
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace souq
