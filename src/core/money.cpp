#include "core/money.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>

namespace souq {
namespace {
struct Entry {
  const char* code;
  int exponent;
};
// ISO 4217 active codes with their minor-unit exponents (most are 2; listed
// explicitly so an unknown code is refused rather than guessed).
constexpr Entry kCurrencies[] = {
    {"AED", 2}, {"AFN", 2}, {"ALL", 2}, {"AMD", 2}, {"ANG", 2}, {"AOA", 2}, {"ARS", 2}, {"AUD", 2}, {"AWG", 2},
    {"AZN", 2}, {"BAM", 2}, {"BBD", 2}, {"BDT", 2}, {"BGN", 2}, {"BHD", 3}, {"BIF", 0}, {"BMD", 2}, {"BND", 2},
    {"BOB", 2}, {"BRL", 2}, {"BSD", 2}, {"BTN", 2}, {"BWP", 2}, {"BYN", 2}, {"BZD", 2}, {"CAD", 2}, {"CDF", 2},
    {"CHF", 2}, {"CLP", 0}, {"CNY", 2}, {"COP", 2}, {"CRC", 2}, {"CUP", 2}, {"CVE", 2}, {"CZK", 2}, {"DJF", 0},
    {"DKK", 2}, {"DOP", 2}, {"DZD", 2}, {"EGP", 2}, {"ERN", 2}, {"ETB", 2}, {"EUR", 2}, {"FJD", 2}, {"FKP", 2},
    {"GBP", 2}, {"GEL", 2}, {"GHS", 2}, {"GIP", 2}, {"GMD", 2}, {"GNF", 0}, {"GTQ", 2}, {"GYD", 2}, {"HKD", 2},
    {"HNL", 2}, {"HTG", 2}, {"HUF", 2}, {"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"IQD", 3}, {"IRR", 2}, {"ISK", 0},
    {"JMD", 2}, {"JOD", 3}, {"JPY", 0}, {"KES", 2}, {"KGS", 2}, {"KHR", 2}, {"KMF", 0}, {"KRW", 0}, {"KWD", 3},
    {"KYD", 2}, {"KZT", 2}, {"LAK", 2}, {"LBP", 2}, {"LKR", 2}, {"LRD", 2}, {"LSL", 2}, {"LYD", 3}, {"MAD", 2},
    {"MDL", 2}, {"MGA", 2}, {"MKD", 2}, {"MMK", 2}, {"MNT", 2}, {"MOP", 2}, {"MRU", 2}, {"MUR", 2}, {"MVR", 2},
    {"MWK", 2}, {"MXN", 2}, {"MYR", 2}, {"MZN", 2}, {"NAD", 2}, {"NGN", 2}, {"NIO", 2}, {"NOK", 2}, {"NPR", 2},
    {"NZD", 2}, {"OMR", 3}, {"PAB", 2}, {"PEN", 2}, {"PGK", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"PYG", 0},
    {"QAR", 2}, {"RON", 2}, {"RSD", 2}, {"RUB", 2}, {"RWF", 0}, {"SAR", 2}, {"SBD", 2}, {"SCR", 2}, {"SDG", 2},
    {"SEK", 2}, {"SGD", 2}, {"SHP", 2}, {"SLE", 2}, {"SOS", 2}, {"SRD", 2}, {"SSP", 2}, {"STN", 2}, {"SYP", 2},
    {"SZL", 2}, {"THB", 2}, {"TJS", 2}, {"TMT", 2}, {"TND", 3}, {"TOP", 2}, {"TRY", 2}, {"TTD", 2}, {"TWD", 2},
    {"TZS", 2}, {"UAH", 2}, {"UGX", 0}, {"USD", 2}, {"UYU", 2}, {"UZS", 2}, {"VES", 2}, {"VND", 0}, {"VUV", 0},
    {"WST", 2}, {"XAF", 0}, {"XCD", 2}, {"XOF", 0}, {"XPF", 0}, {"YER", 2}, {"ZAR", 2}, {"ZMW", 2}, {"ZWL", 2},
};
}  // namespace

std::optional<Currency> Currency::find(std::string_view code) {
  for (const auto& e : kCurrencies)
    if (code == e.code) return Currency{e.code, e.exponent};
  return std::nullopt;
}

Money::Money(int64_t minor, std::string_view currency) : minor_(minor), currency_(currency) {
  if (!Currency::find(currency)) throw MoneyError("unknown currency: " + std::string(currency));
}

void Money::same_currency(const Money& other) const {
  if (currency_ != other.currency_) throw MoneyError("currency mismatch: " + currency_ + " and " + other.currency_);
}

Money Money::operator+(const Money& other) const {
  same_currency(other);
  int64_t out;
  if (__builtin_add_overflow(minor_, other.minor_, &out)) throw MoneyError("money overflow");
  return Money(out, currency_);
}

Money Money::operator-(const Money& other) const {
  same_currency(other);
  int64_t out;
  if (__builtin_sub_overflow(minor_, other.minor_, &out)) throw MoneyError("money overflow");
  return Money(out, currency_);
}

Money Money::operator-() const { return Money(0, currency_) - *this; }

Money Money::times(int64_t factor) const {
  int64_t out;
  if (__builtin_mul_overflow(minor_, factor, &out)) throw MoneyError("money overflow");
  return Money(out, currency_);
}

Money Money::basis_points(int64_t bps) const {
  __int128 product = static_cast<__int128>(minor_) * bps;
  __int128 q = product / 10000, r = product % 10000;
  if (r * 2 >= 10000) ++q;
  else if (r * 2 <= -10000) --q;
  if (q > INT64_MAX || q < INT64_MIN) throw MoneyError("money overflow");
  return Money(static_cast<int64_t>(q), currency_);
}

std::vector<Money> Money::allocate(int n) const {
  if (n <= 0) throw MoneyError("allocate needs at least one part");
  std::vector<Money> parts;
  int64_t base = minor_ / n, rest = minor_ % n;
  for (int i = 0; i < n; ++i) parts.emplace_back(base + (i < std::llabs(rest) ? (rest > 0 ? 1 : -1) : 0), currency_);
  return parts;
}

bool Money::operator<(const Money& other) const {
  same_currency(other);
  return minor_ < other.minor_;
}

std::string Money::to_string() const {
  int exponent = Currency::find(currency_)->exponent;
  uint64_t magnitude = minor_ < 0 ? uint64_t(0) - uint64_t(minor_) : uint64_t(minor_);
  uint64_t scale = 1;
  for (int i = 0; i < exponent; ++i) scale *= 10;
  char buf[64];
  if (exponent == 0)
    std::snprintf(buf, sizeof buf, "%s%llu %s", minor_ < 0 ? "-" : "", (unsigned long long)magnitude, currency_.c_str());
  else
    std::snprintf(buf, sizeof buf, "%s%llu.%0*llu %s", minor_ < 0 ? "-" : "", (unsigned long long)(magnitude / scale),
                  exponent, (unsigned long long)(magnitude % scale), currency_.c_str());
  return buf;
}

}  // namespace souq
