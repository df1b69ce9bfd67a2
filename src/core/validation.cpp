#include "core/validation.hpp"

#include <algorithm>
#include <cctype>

#include "core/utf8.hpp"

namespace souq {

const json* Validator::get(const std::string& field, bool required) {
  if (!body_.is_object() || !body_.contains(field) || body_[field].is_null()) {
    if (required) errors_[field] = "is required";
    return nullptr;
  }
  if (!body_[field].is_string()) {
    errors_[field] = "must be a string";
    return nullptr;
  }
  return &body_[field];
}

std::optional<std::string> Validator::text(const std::string& field, size_t min, size_t max, bool required) {
  auto* v = get(field, required);
  if (!v) return std::nullopt;
  std::string s = v->get<std::string>();
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); i += std::max<size_t>(1, utf8::sequence_length(s, i))) {
    if (static_cast<unsigned char>(s[i]) < 0x20 || s[i] == 0x7f) {
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

}  // namespace souq
