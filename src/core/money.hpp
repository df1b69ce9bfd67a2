// Money is an integer count of a currency's minor units (piastres, cents,
// fils) plus its ISO 4217 code. Arithmetic is checked: overflow and mixing
// currencies throw instead of producing a wrong amount.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace souq {

class MoneyError : public std::domain_error {
 public:
  using std::domain_error::domain_error;
};

struct Currency {
  std::string code;  // "EGP"
  int exponent;      // minor units per major unit = 10^exponent

  // The ISO 4217 currency with this code, or nullopt when unknown.
  static std::optional<Currency> find(std::string_view code);
};

class Money {
 public:
  // Throws MoneyError for an unknown currency.
  Money(int64_t minor, std::string_view currency);
  static Money zero(std::string_view currency) { return Money(0, currency); }

  int64_t minor() const { return minor_; }
  const std::string& currency() const { return currency_; }

  Money operator+(const Money& other) const;
  Money operator-(const Money& other) const;
  Money operator-() const;
  Money times(int64_t factor) const;
  // Rounds half away from zero: basis points (1/100 of a percent) of this amount.
  Money basis_points(int64_t bps) const;
  // Splits into n parts that add up exactly; earlier parts get the remainder.
  std::vector<Money> allocate(int n) const;

  bool operator==(const Money&) const = default;
  bool operator<(const Money& other) const;
  bool is_negative() const { return minor_ < 0; }

  // "12.34 EGP" — for logs and messages, never for arithmetic.
  std::string to_string() const;
  nlohmann::json to_json() const { return {{"amount", minor_}, {"currency", currency_}}; }

 private:
  void same_currency(const Money& other) const;
  int64_t minor_;
  std::string currency_;
};

}  // namespace souq
