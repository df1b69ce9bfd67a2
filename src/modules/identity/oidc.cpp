#include "modules/identity/oidc.hpp"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/crypto.hpp"
#include "core/error.hpp"

namespace souq::identity {

class PublicKey {
 public:
  PublicKey(EVP_PKEY* key, std::string kty) : key_(key), kty_(std::move(kty)) {}
  ~PublicKey() { EVP_PKEY_free(key_); }
  PublicKey(const PublicKey&) = delete;
  PublicKey& operator=(const PublicKey&) = delete;
  const std::string& kty() const { return kty_; }

  bool verify_sha256(std::string_view data, std::string_view signature) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_) != 1) return false;
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  }

 private:
  EVP_PKEY* key_;
  std::string kty_;
};

namespace {

ApiError invalid(const std::string& why) { return {401, "invalid_id_token", "The ID token is not accepted: " + why + "."}; }

std::string b64(const json& jwk, const char* field) {
  if (!jwk.contains(field) || !jwk[field].is_string()) throw std::invalid_argument(std::string("JWK lacks ") + field);
  auto raw = crypto::base64url_decode(jwk[field].get<std::string>());
  if (!raw || raw->empty()) throw std::invalid_argument(std::string("JWK field ") + field + " is not base64url");
  return *raw;
}

std::shared_ptr<PublicKey> key_from_jwk(const json& jwk) {
  std::string kty = jwk.value("kty", "");
  std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
  std::vector<BIGNUM*> numbers;
  struct FreeNumbers {
    std::vector<BIGNUM*>& v;
    ~FreeNumbers() {
      for (auto* n : v) BN_free(n);
    }
  } free_numbers{numbers};
  std::string point;
  const char* type = nullptr;
  if (kty == "RSA") {
    for (auto [field, param] : {std::pair{"n", OSSL_PKEY_PARAM_RSA_N}, std::pair{"e", OSSL_PKEY_PARAM_RSA_E}}) {
      auto bytes = b64(jwk, field);
      numbers.push_back(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), int(bytes.size()), nullptr));
      OSSL_PARAM_BLD_push_BN(bld.get(), param, numbers.back());
    }
    type = "RSA";
  } else if (kty == "EC") {
    if (jwk.value("crv", "") != "P-256") throw std::invalid_argument("only EC keys on P-256 are supported (ES256)");
    auto x = b64(jwk, "x"), y = b64(jwk, "y");
    if (x.size() != 32 || y.size() != 32) throw std::invalid_argument("P-256 coordinates must be 32 bytes");
    point = std::string(1, '\x04') + x + y;
    OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
    type = "EC";
  } else {
    throw std::invalid_argument("unsupported JWK kty " + kty + " (RSA and EC are)");
  }
  std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(bld.get()), OSSL_PARAM_free);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr),
                                                                 EVP_PKEY_CTX_free);
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    throw std::invalid_argument("OpenSSL refused the " + kty + " key");
  return std::make_shared<PublicKey>(key, kty);
}

// JWS ES256 signatures are r||s (32 bytes each); OpenSSL wants DER.
std::optional<std::string> es256_to_der(std::string_view raw) {
  if (raw.size() != 64) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  int n = i2d_ECDSA_SIG(sig, nullptr);
  std::string der(size_t(std::max(n, 0)), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_ECDSA_SIG(sig, &out);
  ECDSA_SIG_free(sig);
  return n > 0 ? std::optional(der) : std::nullopt;
}

}  // namespace

OidcVerifier OidcVerifier::from_config(const json& config) {
  OidcVerifier v;
  if (!config.is_object() || !config.contains("providers") || !config["providers"].is_array())
    throw std::invalid_argument("OIDC config must be {\"providers\": [...]}");
  for (const auto& p : config["providers"]) {
    OidcProvider provider;
    provider.name = p.value("name", "");
    provider.issuer = p.value("issuer", "");
    if (provider.name.empty() || provider.issuer.empty())
      throw std::invalid_argument("every OIDC provider needs a name and an issuer");
    for (const auto& a : p.value("audiences", json::array())) provider.audiences.push_back(a.get<std::string>());
    if (provider.audiences.empty()) throw std::invalid_argument("OIDC provider " + provider.name + " needs audiences");
    json jwks = p.value("jwks", json());
    if (p.contains("jwks_file")) {
      std::ifstream file(p["jwks_file"].get<std::string>());
      if (!file) throw std::invalid_argument("cannot read jwks_file of " + provider.name);
      std::stringstream text;
      text << file.rdbuf();
      jwks = json::parse(text.str(), nullptr, false);
    }
    if (!jwks.is_object() || !jwks.contains("keys") || !jwks["keys"].is_array())
      throw std::invalid_argument("OIDC provider " + provider.name + " needs a JWKS ({\"keys\": [...]})");
    for (const auto& jwk : jwks["keys"]) {
      std::string kid = jwk.value("kid", "");
      if (kid.empty()) throw std::invalid_argument("every JWK of " + provider.name + " needs a kid");
      try {
        provider.keys[kid] = key_from_jwk(jwk);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(provider.name + " key " + kid + ": " + e.what());
      }
    }
    v.providers_.push_back(std::move(provider));
  }
  return v;
}

json OidcVerifier::verify(const std::string& token, const std::string& nonce, int64_t now) const {
  auto first = token.find('.'), last = token.rfind('.');
  if (first == std::string::npos || first == last) throw invalid("not a JWS");
  auto header = json::parse(crypto::base64url_decode(token.substr(0, first)).value_or(""), nullptr, false);
  auto claims = json::parse(crypto::base64url_decode(token.substr(first + 1, last - first - 1)).value_or(""), nullptr, false);
  auto signature = crypto::base64url_decode(token.substr(last + 1));
  if (!header.is_object() || !claims.is_object() || !signature) throw invalid("malformed");
  auto text = [](const json& object, const char* field) {  // never throws on a wrong type
    return object.contains(field) && object[field].is_string() ? object[field].get<std::string>() : std::string();
  };
  std::string alg = text(header, "alg");
  if (alg != "RS256" && alg != "ES256") throw invalid("algorithm " + alg + " is not accepted");
  // The issuer only chooses which keys to try; nothing is trusted before the signature checks.
  const OidcProvider* provider = nullptr;
  for (const auto& p : providers_)
    if (text(claims, "iss") == p.issuer) provider = &p;
  if (!provider) throw invalid("unknown issuer");
  auto key = provider->keys.find(text(header, "kid"));
  if (key == provider->keys.end()) throw invalid("unknown key id");
  if ((alg == "RS256") != (key->second->kty() == "RSA")) throw invalid("the key does not fit the algorithm");
  std::string signed_part = token.substr(0, last);
  std::optional<std::string> sig = alg == "ES256" ? es256_to_der(*signature) : signature;
  if (!sig || !key->second->verify_sha256(signed_part, *sig)) throw invalid("bad signature");
  constexpr int64_t kLeeway = 60;
  if (!claims.contains("exp") || !claims["exp"].is_number_integer() || claims["exp"].get<int64_t>() + kLeeway <= now)
    throw invalid("expired");
  if (claims.contains("iat") && claims["iat"].is_number_integer() && claims["iat"].get<int64_t>() > now + kLeeway)
    throw invalid("issued in the future");
  bool audience_ok = false;
  auto fits = [&](const json& a) {
    return a.is_string() &&
           std::find(provider->audiences.begin(), provider->audiences.end(), a.get<std::string>()) != provider->audiences.end();
  };
  if (claims.contains("aud")) {
    if (claims["aud"].is_array()) {
      for (const auto& a : claims["aud"]) audience_ok |= fits(a);
    } else {
      audience_ok = fits(claims["aud"]);
    }
  }
  if (!audience_ok) throw invalid("it was issued for another audience");
  std::string token_nonce = text(claims, "nonce");
  if (token_nonce.empty() || (!crypto::equal_constant_time(token_nonce, nonce) &&
                              !crypto::equal_constant_time(token_nonce, crypto::sha256_hex(nonce))))
    throw invalid("the nonce does not match");
  if (!claims.contains("sub") || !claims["sub"].is_string() || claims["sub"].get<std::string>().empty())
    throw invalid("it has no subject");
  claims["provider"] = provider->name;
  return claims;
}

}  // namespace souq::identity

// ---- signing in with a verified ID token (Identity) ----
#include "core/id.hpp"
#include "core/time.hpp"
#include "modules/identity/module.hpp"

namespace souq::identity {

json Identity::sign_in_oidc(const std::string& id_token, const std::string& nonce, const Client& client) {
  if (oidc_.empty()) throw ApiError(503, "oidc_unavailable", "Sign-in with an identity provider is not configured.");
  int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
  json claims = oidc_.verify(id_token, nonce, now_s);
  std::string issuer = claims["iss"], subject = claims["sub"];
  bool verified = claims.value("email_verified", json(false)) == json(true) ||
                  claims.value("email_verified", json(false)) == json("true");
  std::string email = verified ? (claims.contains("email") && claims["email"].is_string() ? claims["email"].get<std::string>()
                                                                                         : std::string())
                               : std::string();
  std::transform(email.begin(), email.end(), email.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  std::string user_id;
  bool created = false;
  enum class Refusal { none, replayed, suspended, account_exists } refusal = Refusal::none;
  db_.write([&](db::Tx& tx) {
    created = false;
    refusal = Refusal::none;
    auto t = now_text();
    // A nonce signs in once: a leaked ID token cannot be replayed.
    if (tx.exec("INSERT INTO oidc_nonces (issuer, nonce, used_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                {issuer, claims["nonce"].get<std::string>(), t}) == 0) {
      refusal = Refusal::replayed;
      return;
    }
    if (auto linked = tx.query_one("SELECT user_id FROM user_identities WHERE issuer = $1 AND subject = $2",
                                   {issuer, subject})) {
      user_id = linked->text("user_id");
    } else {
      auto by_email = email.empty() ? std::nullopt
                                     : tx.query_one("SELECT id, password_hash FROM users WHERE email = $1", {email});
      if (by_email && !by_email->is_null("password_hash")) {
        // The account was made with a password and an email nobody verified:
        // linking would let whoever registered it share the provider's account
        // (pre-hijacking). The owner signs in with the password instead.
        refusal = Refusal::account_exists;
        return;
      }
      if (by_email) {
        user_id = by_email->text("id");
      } else {
        user_id = new_id("usr");
        created = true;
        std::string name = claims.contains("name") && claims["name"].is_string() ? claims["name"].get<std::string>() : "";
        if (name.empty()) name = "User " + new_id("x").substr(22);  // never the email: names are public
        try {
          tx.exec("INSERT INTO users (id, display_name, email, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
                  {user_id, name.substr(0, 80), email.empty() ? std::optional<std::string>() : std::optional(email), t});
        } catch (const db::ConstraintError&) {
          throw db::RetryableError("account created concurrently");  // the rerun finds it by email
        }
        tx.exec("INSERT INTO user_roles (user_id, role, granted_at) VALUES ($1, 'buyer', $2)", {user_id, t});
      }
      // Two first sign-ins racing: the loser's insert finds the link taken and
      // the whole transaction runs again, finding it.
      if (tx.exec("INSERT INTO user_identities (issuer, subject, user_id, email, created_at)"
                  " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                  {issuer, subject, user_id, email.empty() ? std::optional<std::string>() : std::optional(email), t}) == 0)
        throw db::RetryableError("identity linked concurrently");
    }
    if (tx.query_one("SELECT status FROM users WHERE id = $1", {user_id})->text("status") != "active") {
      refusal = Refusal::suspended;
      throw ApiError(403, "account_suspended", "This account is suspended.");  // rolls back the link too
    }
  });
  if (refusal == Refusal::replayed) throw ApiError(401, "invalid_id_token", "The ID token is not accepted: its nonce was already used.");
  if (refusal == Refusal::account_exists)
    throw ApiError::conflict("account_exists",
                             "An account with this email exists. Sign in with its password, then link the provider.");
  json data = start_session(user_id, client).to_json();
  data["user"] = me(user_id);
  data["new_user"] = created;
  data["provider"] = claims["provider"];
  return data;
}

}  // namespace souq::identity
