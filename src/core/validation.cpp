#include "core/validation.hpp"

#include <algorithm>
#include <cctype>

#include "core/money.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"

namespace souq {

const json* Validator::get(const std::string& field, bool required) {
  auto* v = present(field, required);
  if (v && !v->is_string()) {
    errors_[field] = "must be a string";
    return nullptr;
  }
  return v;
}

std::optional<std::string> Validator::text(const std::string& field, size_t min, size_t max, bool required) {
  return text_of(field, min, max, required, false);
}

std::optional<std::string> Validator::multiline(const std::string& field, size_t min, size_t max, bool required) {
  return text_of(field, min, max, required, true);
}

std::optional<std::string> Validator::text_of(const std::string& field, size_t min, size_t max, bool required,
                                              bool line_breaks) {
  auto* v = get(field, required);
  if (!v) return std::nullopt;
  std::string s = v->get<std::string>();
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); i += std::max<size_t>(1, utf8::sequence_length(s, i))) {
    bool allowed = line_breaks && (s[i] == '\n' || s[i] == '\t' || s[i] == '\r');
    if (!allowed && (static_cast<unsigned char>(s[i]) < 0x20 || s[i] == 0x7f)) {
      errors_[field] = "must not contain control characters";
      return std::nullopt;
    }
    ++chars;
  }
  if (chars < min || chars > max) {
    errors_[field] = "must be " + std::to_string(min) + " to " + std::to_string(max) + " characters";
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> Validator::email(const std::string& field, bool required) {
  auto* v = get(field, required);
  if (!v) return std::nullopt;
  std::string s = v->get<std::string>();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  auto at = s.find('@');
  bool ok = s.size() <= 254 && at != std::string::npos && at > 0 && at <= 64 && s.find('@', at + 1) == std::string::npos;
  if (ok) {
    auto domain = s.substr(at + 1);
    ok = domain.size() >= 3 && domain.find('.') != std::string::npos && domain.front() != '.' &&
         domain.back() != '.' && domain.find("..") == std::string::npos;
    for (unsigned char c : s)
      if (c <= 0x20 || c >= 0x7f || c == ',' || c == ';' || c == '<' || c == '>' || c == '"' || c == '\\') ok = false;
  }
  if (!ok) {
    errors_[field] = "must be an email address";
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> Validator::password(const std::string& field, size_t min, size_t max) {
  auto* v = get(field, true);
  if (!v) return std::nullopt;
  std::string s = v->get<std::string>();
  if (s.size() < min || s.size() > max) {
    errors_[field] = "must be " + std::to_string(min) + " to " + std::to_string(max) + " bytes";
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> Validator::phone(const std::string& field, bool required) {
  auto* v = get(field, required);
  if (!v) return std::nullopt;
  std::string s = v->get<std::string>();
  bool ok = s.size() >= 9 && s.size() <= 16 && s[0] == '+' && s[1] >= '1' && s[1] <= '9' &&
            std::all_of(s.begin() + 1, s.end(), [](unsigned char c) { return std::isdigit(c); });
  if (!ok) {
    errors_[field] = "must be a phone number in E.164 form, such as +201001234567";
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> Validator::locale(const std::string& field, bool required) {
  auto* v = get(field, required);
  if (!v) return std::nullopt;
  std::string s = v->get<std::string>();
  auto alpha = [](const std::string& p, size_t lo, size_t hi) {
    return p.size() >= lo && p.size() <= hi && std::all_of(p.begin(), p.end(), [](unsigned char c) { return std::isalpha(c); });
  };
  auto dash = s.find('-');
  bool ok = dash == std::string::npos ? alpha(s, 2, 3) : alpha(s.substr(0, dash), 2, 3) && alpha(s.substr(dash + 1), 2, 8);
  if (!ok) {
    errors_[field] = "must be a language tag such as ar or ar-EG";
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> Validator::url(const std::string& field, bool required) {
  auto* v = get(field, required);
  if (!v) return std::nullopt;
  std::string s = v->get<std::string>();
  bool ok = s.size() <= 2048 && (s.rfind("https://", 0) == 0 || s.rfind("http://", 0) == 0) &&
            std::none_of(s.begin(), s.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
  if (!ok) {
    errors_[field] = "must be an http(s) URL of at most 2048 bytes";
    return std::nullopt;
  }
  return s;
}

const json* Validator::present(const std::string& field, bool required) {
  if (!body_.is_object() || !body_.contains(field) || body_[field].is_null()) {
    if (required) errors_[field] = "is required";
    return nullptr;
  }
  return &body_[field];
}

std::optional<int64_t> Validator::integer(const std::string& field, int64_t min, int64_t max, bool required) {
  auto* v = present(field, required);
  if (!v) return std::nullopt;
  auto range = "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) {
    errors_[field] = range;
    return std::nullopt;
  }
  if (!v->is_number_integer()) {
    errors_[field] = v->is_number_float() ? range + " (no fractions: amounts are in minor units)" : range;
    return std::nullopt;
  }
  int64_t n = v->get<int64_t>();
  if (n < min || n > max) {
    errors_[field] = range;
    return std::nullopt;
  }
  return n;
}

std::optional<int64_t> Validator::amount(const std::string& field, int64_t min, bool required) {
  return integer(field, min, 1'000'000'000'000'000, required);
}

std::optional<std::string> Validator::currency(const std::string& field, bool required) {
  auto* v = get(field, required);
  if (!v) return std::nullopt;
  std::string s = v->get<std::string>();
  if (!Currency::find(s)) {
    errors_[field] = "must be an ISO 4217 currency code such as EGP";
    return std::nullopt;
  }
  return s;
}

std::optional<double> Validator::number(const std::string& field, double min, double max, bool required) {
  auto* v = present(field, required);
  if (!v) return std::nullopt;
  if (!v->is_number() || v->get<double>() < min || v->get<double>() > max) {
    errors_[field] = "must be a number from " + json(min).dump() + " to " + json(max).dump();
    return std::nullopt;
  }
  return v->get<double>();
}

std::optional<std::string> Validator::timestamp(const std::string& field, bool required) {
  auto* v = get(field, required);
  if (!v) return std::nullopt;
  auto t = parse_time(v->get<std::string>());
  if (!t) {
    errors_[field] = "must be an RFC 3339 timestamp such as 2026-12-01T12:00:00Z";
    return std::nullopt;
  }
  return format_time(*t);
}

std::optional<std::string> Validator::slug(const std::string& field, size_t max, bool required) {
  auto* v = get(field, required);
  if (!v) return std::nullopt;
  std::string s = v->get<std::string>();
  if (!is_slug(s, max)) {
    errors_[field] = "must be 1 to " + std::to_string(max) + " lower-case letters, digits and inner dashes";
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> Validator::one_of(const std::string& field, std::initializer_list<const char*> choices,
                                             bool required) {
  auto* v = get(field, required);
  if (!v) return std::nullopt;
  std::string s = v->get<std::string>();
  std::string list;
  for (const char* c : choices) {
    if (s == c) return s;
    list += (list.empty() ? "" : ", ") + std::string(c);
  }
  errors_[field] = "must be one of: " + list;
  return std::nullopt;
}

std::optional<std::vector<std::string>> Validator::strings(const std::string& field, size_t max_items, size_t min,
                                                           size_t max, bool required) {
  auto* v = present(field, required);
  if (!v) return std::nullopt;
  auto why = "must be a list of at most " + std::to_string(max_items) + " strings of " + std::to_string(min) + " to " +
             std::to_string(max) + " characters";
  if (!v->is_array() || v->size() > max_items) {
    errors_[field] = why;
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& item : *v) {
    if (!item.is_string() || utf8::length(item.get<std::string>()) < min || utf8::length(item.get<std::string>()) > max) {
      errors_[field] = why;
      return std::nullopt;
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::optional<bool> Validator::boolean(const std::string& field, bool required) {
  auto* v = present(field, required);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) {
    errors_[field] = "must be true or false";
    return std::nullopt;
  }
  return v->get<bool>();
}

bool is_slug(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return (c >= 'a' && c <= 'z') || std::isdigit(c) || c == '-'; });
}

void Validator::forbid(std::initializer_list<const char*> fields, const std::string& why) {
  for (const char* f : fields)
    if (body_.is_object() && body_.contains(f)) errors_[f] = why;
}

void Validator::only(std::initializer_list<const char*> allowed) {
  if (!body_.is_object()) return;
  for (const auto& item : body_.items()) {
    const std::string& key = item.key();
    if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }) == allowed.end() &&
        !errors_.contains(key))
      errors_[key] = "is not a field of this request";
  }
}

std::string lone_text(const json& body, const char* field, size_t min, size_t max, bool required) {
  static const json empty = json::object();
  if (!body.is_null() && !body.is_object()) throw ApiError::bad_request("invalid_body", "The body must be a JSON object.");
  Validator v(body.is_null() ? empty : body);
  v.only({field});
  auto text = v.text(field, min, max, required);
  v.done();
  return text.value_or("");
}

void Validator::point(json& out, bool partial) {
  bool has_lat = has("lat") && !body_["lat"].is_null(), has_lng = has("lng") && !body_["lng"].is_null();
  if (has_lat != has_lng) fail(has_lat ? "lng" : "lat", "lat and lng go together");
  if (has_lat && has_lng) {
    auto lat = number("lat", -90, 90), lng = number("lng", -180, 180);
    if (lat && lng) {
      out["lat"] = *lat;
      out["lng"] = *lng;
    }
  } else if (partial && has("lat") && has("lng")) {
    out["lat"] = nullptr;
    out["lng"] = nullptr;
  }
}

}  // namespace souq
