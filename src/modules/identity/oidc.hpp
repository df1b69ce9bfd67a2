// OpenID Connect ID-token verification (RS256 and ES256) against issuers and
// keys the operator configures — nothing is fetched at run time:
//   {"providers": [{"name": "google", "issuer": "https://accounts.google.com",
//                   "audiences": ["<client id>"], "jwks": {"keys": [...]}},
//                  {"name": "apple", "issuer": "https://appleid.apple.com",
//                   "audiences": ["<service id>"], "jwks_file": "/etc/souq/apple.jwks"}]}
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/json.hpp"

namespace souq::identity {

class PublicKey;  // an OpenSSL key from a JWK

struct OidcProvider {
  std::string name, issuer;
  std::vector<std::string> audiences;
  std::map<std::string, std::shared_ptr<PublicKey>> keys;  // by kid
};

class OidcVerifier {
 public:
  OidcVerifier() = default;
  // Parses the configuration (and the JWKS files it names). Throws
  // std::invalid_argument naming the fault.
  static OidcVerifier from_config(const json& config);
  bool empty() const { return providers_.empty(); }

  // The verified claims, or throws ApiError 401 `invalid_id_token` saying why.
  // `nonce` must match the token's nonce claim, or its SHA-256 in hex (Apple).
  json verify(const std::string& id_token, const std::string& nonce, int64_t now) const;

 private:
  std::vector<OidcProvider> providers_;
};

}  // namespace souq::identity
