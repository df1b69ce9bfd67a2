// Values that cross the database boundary: query parameters and row cells.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace souq::db {

class Value {
 public:
  using Storage = std::variant<std::monostate, int64_t, double, std::string>;

  Value() = default;
  Value(std::nullptr_t) {}
  Value(std::nullopt_t) {}
  Value(bool b) : v_(int64_t(b ? 1 : 0)) {}  // booleans are stored as 0/1 on both engines
  Value(int i) : v_(int64_t(i)) {}
  Value(long i) : v_(int64_t(i)) {}
  Value(long long i) : v_(int64_t(i)) {}
  Value(unsigned i) : v_(int64_t(i)) {}
  Value(double d) : v_(d) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const nlohmann::json& j) : v_(j.dump()) {}  // JSON documents are stored as text
  template <class T>
  Value(const std::optional<T>& o) {
    if (o) *this = Value(*o);
  }

  bool is_null() const { return v_.index() == 0; }
  const Storage& storage() const { return v_; }

  int64_t as_int() const;
  double as_double() const;
  bool as_bool() const { return as_int() != 0; }
  std::string as_string() const;

 private:
  Storage v_;
};

// NULL for an empty string (an optional text column), else the text.
inline Value null_if_empty(std::string_view s) { return s.empty() ? Value() : Value(s); }

}  // namespace souq::db
