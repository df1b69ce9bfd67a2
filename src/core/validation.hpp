// Reading and checking a JSON object body field by field. Every problem is
// collected, then done() throws one 422 `validation_failed` whose
// details.fields names each bad field and why, so a client fixes them at once.
#pragma once
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/json.hpp"

namespace souq {

// Lower-case letters, digits and inner dashes, 1 to `max` characters.
bool is_slug(std::string_view s, size_t max = 60);

// A body that is absent (null) or an object with one optional text field,
// such as {"reason": "…"} on an action: the text, "" when absent and not
// `required`; 422 for anything else.
std::string lone_text(const json& body, const char* field, size_t min, size_t max, bool required);

class Validator {
 public:
  explicit Validator(const json& body) : body_(body) {}
  // It keeps a reference: the body must outlive it. (const&& catches
  // `cond ? json::object() : some_const_ref`, whose type is const json.)
  Validator(json&&) = delete;
  Validator(const json&&) = delete;

  // A string, trimmed, of `min`..`max` characters (code points), without control characters.
  std::optional<std::string> text(const std::string& field, size_t min, size_t max, bool required = true);
  // The same, keeping line breaks and tabs inside (messages, descriptions).
  std::optional<std::string> multiline(const std::string& field, size_t min, size_t max, bool required = true);
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
  // A JSON integer (not a float, not a string) in [min, max].
  std::optional<int64_t> integer(const std::string& field, int64_t min, int64_t max, bool required = true);
  // An amount of money in minor units: an integer from `min` to 10^15 (safe
  // in every JSON client; larger is refused, never rounded).
  std::optional<int64_t> amount(const std::string& field, int64_t min = 0, bool required = true);
  // An ISO 4217 currency code such as "EGP".
  std::optional<std::string> currency(const std::string& field, bool required = true);
  // A JSON number in [min, max] (coordinates).
  std::optional<double> number(const std::string& field, double min, double max, bool required = true);
  // An RFC 3339 timestamp, returned in Souq's canonical form.
  std::optional<std::string> timestamp(const std::string& field, bool required = true);
  // A lower-case slug: letters, digits and inner dashes, 1 to `max` characters.
  std::optional<std::string> slug(const std::string& field, size_t max = 60, bool required = true);
  // One of `choices`.
  std::optional<std::string> one_of(const std::string& field, std::initializer_list<const char*> choices,
                                    bool required = true);
  // A list of at most `max_items` strings, each `min`..`max` characters.
  std::optional<std::vector<std::string>> strings(const std::string& field, size_t max_items, size_t min, size_t max,
                                                  bool required = false);
  // A JSON boolean.
  std::optional<bool> boolean(const std::string& field, bool required = true);

  // Fields the caller may not set here (e.g. roles on a profile).
  void forbid(std::initializer_list<const char*> fields, const std::string& why);
  // Any field outside `allowed` is refused.
  void only(std::initializer_list<const char*> allowed);
  // "lat" and "lng", together and in range, into out; with `partial`, both
  // null clears the point (out gets nulls).
  void point(json& out, bool partial);
  void fail(const std::string& field, const std::string& why) { errors_[field] = why; }
  bool has(const std::string& field) const { return body_.contains(field); }

  void done() const {
    if (!errors_.empty()) throw ApiError::validation(errors_);
  }

 private:
  std::optional<std::string> text_of(const std::string& field, size_t min, size_t max, bool required, bool line_breaks);
  const json* get(const std::string& field, bool required);
  // The field when present and not null; a missing required one is noted.
  const json* present(const std::string& field, bool required);
  const json& body_;
  json errors_ = json::object();
};

}  // namespace souq
