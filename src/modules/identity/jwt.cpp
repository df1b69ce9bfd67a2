#include "modules/identity/jwt.hpp"

#include "core/crypto.hpp"

namespace souq::identity {

std::string sign_hs256(const nlohmann::json& claims, std::string_view secret) {
  static const std::string header = crypto::base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  std::string signing_input = header + "." + crypto::base64url_encode(claims.dump());
  return signing_input + "." + crypto::base64url_encode(crypto::hmac_sha256(secret, signing_input));
}

const char* to_string(JwtError e) {
  switch (e) {
    case JwtError::malformed: return "the token is not a well-formed JWT";
    case JwtError::bad_algorithm: return "the token's algorithm is not accepted";
    case JwtError::bad_signature: return "the token's signature does not verify";
    case JwtError::expired: return "the token has expired";
    case JwtError::not_yet_valid: return "the token is not valid yet";
    case JwtError::wrong_issuer: return "the token was issued by someone else";
  }
  return "invalid token";
}

JwtResult verify_hs256(std::string_view token, std::string_view secret, std::string_view issuer, int64_t now) {
  auto first = token.find('.');
  auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) return {};
  auto header_text = crypto::base64url_decode(token.substr(0, first));
  auto payload_text = crypto::base64url_decode(token.substr(first + 1, second - first - 1));
  auto signature = crypto::base64url_decode(token.substr(second + 1));
  if (!header_text || !payload_text || !signature) return {};
  auto header = nlohmann::json::parse(*header_text, nullptr, false);
  if (!header.is_object()) return {};
  // Types checked before reading: {"alg": 1} must be a refusal, not a 500.
  if (!header.contains("alg") || !header["alg"].is_string() || header["alg"] != "HS256")
    return {std::nullopt, JwtError::bad_algorithm};
  if (!crypto::equal_constant_time(crypto::hmac_sha256(secret, token.substr(0, second)), *signature))
    return {std::nullopt, JwtError::bad_signature};
  auto claims = nlohmann::json::parse(*payload_text, nullptr, false);
  if (!claims.is_object() || !claims.contains("exp") || !claims["exp"].is_number_integer()) return {};
  if (claims["exp"].get<int64_t>() <= now) return {std::nullopt, JwtError::expired};
  if (claims.contains("nbf") && (!claims["nbf"].is_number_integer() || claims["nbf"].get<int64_t>() > now))
    return {std::nullopt, JwtError::not_yet_valid};
  if (!claims.contains("iss") || !claims["iss"].is_string() || claims["iss"] != issuer)
    return {std::nullopt, JwtError::wrong_issuer};
  return {std::move(claims), JwtError::malformed};
}

}  // namespace souq::identity
