// JSON Web Tokens signed with HS256 (RFC 7519 / RFC 7515 compact form).
// Verification accepts only alg HS256: "none" and every other algorithm are
// refused, so a token cannot choose how it is checked.
#pragma once
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace souq::identity {

std::string sign_hs256(const nlohmann::json& claims, std::string_view secret);

enum class JwtError { malformed, bad_algorithm, bad_signature, expired, not_yet_valid, wrong_issuer };
const char* to_string(JwtError e);

struct JwtResult {
  std::optional<nlohmann::json> claims;  // set when valid
  JwtError error = JwtError::malformed;
};

// Checks form, algorithm, signature, exp/nbf (against `now`, in seconds since
// the epoch) and iss.
JwtResult verify_hs256(std::string_view token, std::string_view secret, std::string_view issuer, int64_t now);

}  // namespace souq::identity
