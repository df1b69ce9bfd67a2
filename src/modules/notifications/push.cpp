// Push providers: dev (records) and Firebase Cloud Messaging HTTP v1.
//
// FCM HTTP v1 authenticates with an OAuth2 access token that a Google service
// account obtains by signing a JWT (RS256) and exchanging it at the token
// endpoint (grant type jwt-bearer). The token lasts an hour; it is kept and
// shared by every send until a minute before it expires, or until FCM answers
// 401. Sends are POST {base}/v1/projects/{project}/messages:send.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <sstream>

#include "core/crypto.hpp"
#include "core/http_client.hpp"
#include "core/log.hpp"
#include "modules/notifications/module.hpp"

namespace souq::notifications {
namespace {

class DevPush final : public PushProvider {
 public:
  std::string name() const override { return "dev"; }
  PushResult send(const PushMessage& m) override {
    log::info("push (dev provider: recorded, not sent)", {{"token", m.token}, {"title", m.title}, {"body", m.body}});
    return {PushResult::Status::recorded, "", ""};
  }
};

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class FcmPush final : public PushProvider {
 public:
  explicit FcmPush(const Options& o) : base_url_(o.fcm_base_url) {
    if (o.fcm_credentials.empty()) throw std::invalid_argument("--push-provider fcm needs --fcm-credentials (a service-account JSON file)");
    std::ifstream file(o.fcm_credentials);
    if (!file) throw std::invalid_argument("--fcm-credentials: cannot read " + o.fcm_credentials);
    std::stringstream text;
    text << file.rdbuf();
    auto account = json::parse(text.str(), nullptr, false);
    if (!account.is_object()) throw std::invalid_argument("--fcm-credentials is not JSON: " + o.fcm_credentials);
    for (const char* field : {"project_id", "client_email", "private_key"})
      if (!account.contains(field) || !account[field].is_string() || account[field].get<std::string>().empty())
        throw std::invalid_argument(std::string("--fcm-credentials lacks \"") + field + "\"");
    project_ = account["project_id"];
    client_email_ = account["client_email"];
    key_id_ = account.value("private_key_id", "");
    token_url_ = !o.fcm_token_url.empty() ? o.fcm_token_url
                                          : account.value("token_uri", std::string("https://oauth2.googleapis.com/token"));
    std::string pem = account["private_key"];
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())), BIO_free);
    key_ = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (!key_ || EVP_PKEY_base_id(key_) != EVP_PKEY_RSA)
      throw std::invalid_argument("--fcm-credentials: private_key is not an RSA key in PEM");
    while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  }
  ~FcmPush() override { EVP_PKEY_free(key_); }
  std::string name() const override { return "fcm"; }

  PushResult send(const PushMessage& m) override {
    json message = {{"token", m.token}, {"notification", {{"title", m.title}, {"body", m.body}}}, {"data", m.data}};
    message["android"] = {{"priority", "high"}};
    json aps = {{"sound", "default"}};
    if (!m.thread.empty()) {
      message["android"]["notification"] = {{"tag", m.thread}};
      aps["thread-id"] = m.thread;
    }
    message["apns"] = {{"headers", {{"apns-priority", "10"}}}, {"payload", {{"aps", aps}}}};
    std::string body = json{{"message", message}}.dump();
    for (int attempt = 0;; ++attempt) {
      HttpRequest r;
      r.url = base_url_ + "/v1/projects/" + project_ + "/messages:send";
      r.headers = {{"Authorization", "Bearer " + access_token()}, {"Content-Type", "application/json; charset=UTF-8"}};
      r.body = body;
      auto res = http_call(r);
      if (!res.error.empty()) throw std::runtime_error("fcm unreachable: " + res.error);
      auto reply = json::parse(res.body, nullptr, false);
      if (res.status == 200) {
        if (!reply.is_object() || !reply.contains("name")) throw std::runtime_error("fcm answered 200 without a message name");
        return {PushResult::Status::sent, reply["name"].get<std::string>(), ""};
      }
      // An expired or revoked access token: a fresh one, once.
      if (res.status == 401 && attempt == 0) {
        forget_token();
        continue;
      }
      std::string status, code, text;
      if (reply.is_object() && reply.contains("error") && reply["error"].is_object()) {
        const auto& e = reply["error"];
        status = e.value("status", "");
        text = e.value("message", "");
        if (e.contains("details") && e["details"].is_array())
          for (const auto& d : e["details"])
            if (d.is_object() && d.contains("errorCode") && d["errorCode"].is_string()) code = d["errorCode"];
      }
      std::string why = "fcm answered " + std::to_string(res.status) + " " + (code.empty() ? status : code) +
                        (text.empty() ? "" : ": " + text);
      // The token belongs to no app installation any more, or to another project.
      if (code == "UNREGISTERED" || code == "SENDER_ID_MISMATCH" ||
          (res.status == 400 && text.find("registration token") != std::string::npos))
        return {PushResult::Status::invalid_token, "", why};
      // A message FCM will never take (retrying changes nothing).
      if (res.status == 400) return {PushResult::Status::rejected, "", why};
      throw std::runtime_error(why);  // 401/403 (credentials), 429, 5xx: later
    }
  }

 private:
  std::string access_token() {
    std::lock_guard lock(mutex_);
    int64_t now = unix_seconds();
    if (!token_.empty() && now < token_expires_ - 60) return token_;
    json header_fields = {{"alg", "RS256"}, {"typ", "JWT"}};
    if (!key_id_.empty()) header_fields["kid"] = key_id_;
    std::string header = header_fields.dump();
    json claims = {{"iss", client_email_},
                   {"scope", "https://www.googleapis.com/auth/firebase.messaging"},
                   {"aud", token_url_},
                   {"iat", now},
                   {"exp", now + 3600}};
    std::string signing_input = crypto::base64url_encode(header) + "." + crypto::base64url_encode(claims.dump());
    std::string assertion = signing_input + "." + crypto::base64url_encode(sign(signing_input));
    HttpRequest r;
    r.url = token_url_;
    r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    r.body = form_encode({{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"}, {"assertion", assertion}});
    auto res = http_call(r);
    if (!res.error.empty()) throw std::runtime_error("fcm token endpoint unreachable: " + res.error);
    auto reply = json::parse(res.body, nullptr, false);
    if (res.status != 200 || !reply.is_object() || !reply.contains("access_token") || !reply["access_token"].is_string()) {
      std::string why = reply.is_object() ? reply.value("error_description", reply.value("error", "")) : "";
      throw std::runtime_error("fcm token endpoint answered " + std::to_string(res.status) + (why.empty() ? "" : ": " + why));
    }
    token_ = reply["access_token"];
    int64_t lifetime = reply.contains("expires_in") && reply["expires_in"].is_number_integer() ? reply["expires_in"].get<int64_t>() : 3600;
    token_expires_ = now + lifetime;
    log::info("fcm access token obtained", {{"expires_in", lifetime}});
    return token_;
  }

  void forget_token() {
    std::lock_guard lock(mutex_);
    token_.clear();
  }

  std::string sign(const std::string& data) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    size_t length = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &length, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
      throw std::runtime_error("fcm: signing the token request failed");
    std::string signature(length, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
      throw std::runtime_error("fcm: signing the token request failed");
    signature.resize(length);
    return signature;
  }

  std::string base_url_, project_, client_email_, key_id_, token_url_;
  EVP_PKEY* key_ = nullptr;
  std::mutex mutex_;
  std::string token_;
  int64_t token_expires_ = 0;
};

}  // namespace

std::unique_ptr<PushProvider> make_push_provider(const Options& options) {
  if (options.push_provider == "dev") return std::make_unique<DevPush>();
  if (options.push_provider == "fcm") return std::make_unique<FcmPush>(options);
  throw std::invalid_argument("--push-provider must be dev or fcm, not " + options.push_provider);
}

}  // namespace souq::notifications
