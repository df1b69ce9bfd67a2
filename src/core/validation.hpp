// Reading and checking a JSON object body field by field. Every problem is
// collected, then done() throws one 422 `validation_failed` whose
// details.fields names each bad field and why, so a client fixes them at once.
#pragma once
#include <initializer_list>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "core/json.hpp"

namespace souq {

class Validator {
 public:
  explicit Validator(const json& body) : body_(body) {}
  // It keeps a reference: the body must outlive it. (const&& catches
  // `cond ? json::object() : some_const_ref`, whose type is const json.)
  Validator(json&&) = delete;
  Validator(const json&&) = delete;

  // A string, trimmed, of `min`..`max` characters (code points), without control characters.
  std::optional<std::string> text(const std::string& field, size_t min, size_t max, bool required = true);
  // An email address, lower-cased.
  std::optional<std::string> email(const std::string& field, bool required = true);
  // A password: `min`..`max` bytes, kept exactly as sent.
  std::optional<std::string> password(const std::string& field, size_t min = 8, size_t max = 128);
  // A phone number in E.164 form: "+" and 8 to 15 digits, the first not 0.
  std::optional<std::string> phone(const std::string& field, bool required = true);
  // A BCP 47 language tag such as "ar" or "ar-EG".
  std::optional<std::string> locale(const std::string& field, bool required = false);
  // An http(s) URL of at most 2048 bytes.
  std::optional<std::string> url(const std::string& field, bool required = false);

  // Fields the caller may not set here (e.g. roles on a profile).
  void forbid(std::initializer_list<const char*> fields, const std::string& why);
  // Any field outside `allowed` is refused.
  void only(std::initializer_list<const char*> allowed);
  void fail(const std::string& field, const std::string& why) { errors_[field] = why; }
  bool has(const std::string& field) const { return body_.contains(field); }

  void done() const {
    if (!errors_.empty()) throw ApiError::validation(errors_);
  }

 private:
  const json* get(const std::string& field, bool required);
  const json& body_;
  json errors_ = json::object();
};

}  // namespace souq
