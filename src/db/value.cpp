#include <charconv>
#include <cstdio>

#include "db/errors.hpp"
#include "db/rows.hpp"

namespace souq::db {

int64_t Value::as_int() const {
  if (auto* i = std::get_if<int64_t>(&v_)) return *i;
  if (auto* d = std::get_if<double>(&v_)) return int64_t(*d);
  if (auto* s = std::get_if<std::string>(&v_)) {
    int64_t out = 0;
    auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), out);
    if (ec == std::errc() && p == s->data() + s->size()) return out;
    if (*s == "t" || *s == "true") return 1;
    if (*s == "f" || *s == "false") return 0;
    throw Error("not an integer: '" + *s + "'");
  }
  throw Error("NULL where an integer was expected");
}

double Value::as_double() const {
  if (auto* d = std::get_if<double>(&v_)) return *d;
  if (auto* i = std::get_if<int64_t>(&v_)) return double(*i);
  if (auto* s = std::get_if<std::string>(&v_)) return std::stod(*s);
  throw Error("NULL where a number was expected");
}

std::string Value::as_string() const {
  if (auto* s = std::get_if<std::string>(&v_)) return *s;
  if (auto* i = std::get_if<int64_t>(&v_)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&v_)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", *d);
    return buf;
  }
  throw Error("NULL where text was expected");
}

const Value& Row::at(size_t index) const {
  if (index >= values_.size()) throw Error("column index out of range: " + std::to_string(index));
  return values_[index];
}

const Value& Row::at(std::string_view column) const {
  for (size_t i = 0; i < columns_->size(); ++i)
    if ((*columns_)[i] == column) return values_[i];
  throw Error("no such column in result: " + std::string(column));
}

nlohmann::json Row::json(std::string_view column) const {
  const auto& v = at(column);
  if (v.is_null()) return nullptr;
  return nlohmann::json::parse(v.as_string());
}

std::optional<std::string> Row::opt_text(std::string_view column) const {
  const auto& v = at(column);
  return v.is_null() ? std::nullopt : std::optional(v.as_string());
}

nlohmann::json Row::nullable_text(std::string_view column) const {
  const auto& v = at(column);
  return v.is_null() ? nlohmann::json(nullptr) : nlohmann::json(v.as_string());
}

std::optional<int64_t> Row::opt_integer(std::string_view column) const {
  const auto& v = at(column);
  return v.is_null() ? std::nullopt : std::optional(v.as_int());
}

const std::vector<std::string>& Rows::columns() const {
  static const std::vector<std::string> none;
  return columns_ ? *columns_ : none;
}

}  // namespace souq::db
