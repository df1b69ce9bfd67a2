// Errors that reach a client: an HTTP status, a stable machine-readable code,
// a human message and optional details. Thrown for expected failures a route
// cannot continue from; everything else becomes a 500 `internal_error`.
#pragma once
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <variant>

namespace souq {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string code, std::string message, nlohmann::json details = nullptr)
      : std::runtime_error(message), status_(status), code_(std::move(code)), details_(std::move(details)) {}

  int status() const { return status_; }
  const std::string& code() const { return code_; }
  const nlohmann::json& details() const { return details_; }

  static ApiError bad_request(std::string code, std::string message, nlohmann::json details = nullptr) {
    return {400, std::move(code), std::move(message), std::move(details)};
  }
  static ApiError not_found(std::string message = "The resource does not exist.") {
    return {404, "not_found", std::move(message)};
  }
  static ApiError conflict(std::string code, std::string message, nlohmann::json details = nullptr) {
    return {409, std::move(code), std::move(message), std::move(details)};
  }
  static ApiError unprocessable(std::string code, std::string message, nlohmann::json details = nullptr) {
    return {422, std::move(code), std::move(message), std::move(details)};
  }
  // One or more fields failed validation: details = {"fields": {name: reason}}.
  static ApiError validation(nlohmann::json fields) {
    return {422, "validation_failed", "One or more fields are invalid.", {{"fields", std::move(fields)}}};
  }

 private:
  int status_;
  std::string code_;
  nlohmann::json details_;
};

// The result of an operation with an expected failure mode.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(ApiError error) : v_(std::move(error)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() {
    if (!ok()) throw std::get<1>(v_);
    return std::get<0>(v_);
  }
  const ApiError& error() const { return std::get<1>(v_); }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, ApiError> v_;
};

}  // namespace souq
