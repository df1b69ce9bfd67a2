// The gateways: the built-in sandbox (a hosted-page stand-in that signs its
// webhooks like Stripe does) and Stripe (PaymentIntents, Transfers and
// signed webhooks over its documented HTTP API).
#include <algorithm>
#include <cctype>

#include "core/crypto.hpp"
#include "core/http_client.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "modules/payments/module.hpp"

namespace souq::payments {
namespace {

std::string header_of(const std::map<std::string, std::string>& headers, const std::string& name) {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

json parse_event(const std::string& body) {
  auto parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("id") || !parsed["id"].is_string() ||
      !parsed.contains("type") || !parsed["type"].is_string())
    throw ApiError::bad_request("invalid_event", "The delivery is not an event (a JSON object with id and type).");
  return parsed;
}

std::string upper(std::string s) {
  for (auto& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int64_t int_field(const json& o, const char* key) {
  return o.contains(key) && o[key].is_number_integer() ? o[key].get<int64_t>() : 0;
}
std::string str_field(const json& o, const char* key) {
  return o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : "";
}

class Sandbox : public Gateway {
 public:
  Sandbox(const Options& o, std::function<std::string()> secret, std::function<std::string()> public_url)
      : options_(o), secret_(std::move(secret)), public_url_(std::move(public_url)) {}
  std::string name() const override { return "sandbox"; }

  Intent create(const Payment& p) override {
    Intent out;
    out.provider_ref = "sbx_" + p.id;
    out.next_action = {{"type", "redirect"}, {"url", public_url_() + "/sandbox/checkout/" + p.id}};
    return out;
  }

  GatewayEvent verify(const std::map<std::string, std::string>& headers, const std::string& body,
                      bool check_age) override {
    verify_signature(header_of(headers, "souq-signature"), body, secret_(), options_.webhook_tolerance, check_age);
    json e = parse_event(body);
    GatewayEvent out;
    out.id = e["id"];
    out.type = e["type"];
    json data = e.value("data", json::object());
    if (!data.is_object()) data = json::object();
    if (out.type == "payment.succeeded") out.outcome = "succeeded";
    if (out.type == "payment.failed") out.outcome = "failed";
    out.payment_id = str_field(data, "payment_id");
    out.provider_ref = str_field(data, "provider_ref");
    out.amount = int_field(data, "amount");
    out.currency = upper(str_field(data, "currency"));
    out.recipient = str_field(data, "recipient");
    out.failure_code = str_field(data, "failure_code");
    out.failure_message = str_field(data, "failure_message");
    return out;
  }

  // The sandbox bank refuses destinations that start with "fail" (as
  // Stripe's test account numbers do), so failures can be tried.
  PayoutResult payout(const Payout& p) override {
    if (p.destination.rfind("fail", 0) == 0) return {false, "", "The sandbox bank refused the destination account."};
    return {true, "sbx_" + p.id, ""};
  }

 private:
  Options options_;
  std::function<std::string()> secret_;
  std::function<std::string()> public_url_;
};

class Stripe : public Gateway {
 public:
  explicit Stripe(const Options& o) : options_(o) {}
  std::string name() const override { return "stripe"; }

  Intent create(const Payment& p) override {
    HttpRequest r = request("/v1/payment_intents", "souq-" + p.id);
    r.body = form_encode({{"amount", std::to_string(p.amount)},
                          {"currency", lower(p.currency)},
                          {"automatic_payment_methods[enabled]", "true"},
                          {"description", "Souq payment " + p.id},
                          {"metadata[souq_payment_id]", p.id},
                          {"metadata[souq_recipient]", p.recipient}});
    HttpResult res = http_call(r);
    json body = json::parse(res.body, nullptr, false);
    if (res.status < 200 || res.status >= 300 || !body.is_object() || !body.contains("id")) {
      std::string why = res.error.empty() ? stripe_error(body, res.status) : res.error;
      log::warn("stripe payment intent failed", {{"payment_id", p.id}, {"status", res.status}, {"error", why}});
      throw ApiError(502, "gateway_error", "Stripe did not create the payment: " + why);
    }
    Intent out;
    out.provider_ref = body["id"];
    out.client_secret = str_field(body, "client_secret");
    out.next_action = {{"type", "stripe_client_secret"}, {"client_secret", out.client_secret}};
    return out;
  }

  GatewayEvent verify(const std::map<std::string, std::string>& headers, const std::string& body,
                      bool check_age) override {
    verify_signature(header_of(headers, "stripe-signature"), body, options_.stripe_webhook_secret,
                     options_.webhook_tolerance, check_age);
    json e = parse_event(body);
    GatewayEvent out;
    out.id = e["id"];
    out.type = e["type"];
    json object = e.contains("data") && e["data"].is_object() ? e["data"].value("object", json::object()) : json::object();
    if (!object.is_object()) object = json::object();
    if (out.type == "payment_intent.succeeded") out.outcome = "succeeded";
    if (out.type == "payment_intent.payment_failed") out.outcome = "failed";
    json metadata = object.value("metadata", json::object());
    if (!metadata.is_object()) metadata = json::object();
    out.payment_id = str_field(metadata, "souq_payment_id");
    out.recipient = str_field(metadata, "souq_recipient");
    out.provider_ref = str_field(object, "id");
    out.amount = out.outcome == "succeeded" && object.contains("amount_received") ? int_field(object, "amount_received")
                                                                                 : int_field(object, "amount");
    out.currency = upper(str_field(object, "currency"));
    if (object.contains("last_payment_error") && object["last_payment_error"].is_object()) {
      out.failure_code = str_field(object["last_payment_error"], "code");
      out.failure_message = str_field(object["last_payment_error"], "message");
    }
    return out;
  }

  // A Connect transfer to the seller's account (`destination`, acct_…).
  PayoutResult payout(const Payout& p) override {
    HttpRequest r = request("/v1/transfers", "souq-" + p.id);
    r.body = form_encode({{"amount", std::to_string(p.amount)},
                          {"currency", lower(p.currency)},
                          {"destination", p.destination},
                          {"metadata[souq_payout_id]", p.id}});
    HttpResult res = http_call(r);
    json body = json::parse(res.body, nullptr, false);
    if (res.status >= 200 && res.status < 300 && body.is_object() && body.contains("id"))
      return {true, body["id"].get<std::string>(), ""};
    // Refused for good (bad destination, insufficient platform balance);
    // anything else is tried again.
    if (res.status == 400 || res.status == 402 || res.status == 404) return {false, "", stripe_error(body, res.status)};
    throw std::runtime_error("stripe transfer: " + (res.error.empty() ? stripe_error(body, res.status) : res.error));
  }

 private:
  HttpRequest request(const std::string& path, const std::string& idempotency_key) const {
    HttpRequest r;
    r.url = options_.stripe_base_url + path;
    r.headers = {{"Authorization", "Bearer " + options_.stripe_secret_key},
                 {"Content-Type", "application/x-www-form-urlencoded"},
                 {"Idempotency-Key", idempotency_key}};
    return r;
  }
  static std::string stripe_error(const json& body, long status) {
    if (body.is_object() && body.contains("error") && body["error"].is_object())
      return body["error"].value("message", "error " + std::to_string(status));
    return "HTTP " + std::to_string(status);
  }
  Options options_;
};

}  // namespace

std::string sign(const std::string& body, const std::string& secret, int64_t unix_time) {
  std::string t = std::to_string(unix_time);
  return "t=" + t + ",v1=" + crypto::to_hex(crypto::hmac_sha256(secret, t + "." + body));
}

void verify_signature(const std::string& header, const std::string& body, const std::string& secret,
                      std::chrono::seconds tolerance, bool check_age) {
  if (header.empty()) throw ApiError::bad_request("invalid_signature", "The delivery carries no signature header.");
  std::string t;
  std::vector<std::string> v1;
  size_t start = 0;
  while (start <= header.size()) {
    size_t comma = header.find(',', start);
    std::string part = header.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto eq = part.find('=');
    if (eq != std::string::npos) {
      std::string k = part.substr(0, eq), v = part.substr(eq + 1);
      while (!k.empty() && k.front() == ' ') k.erase(0, 1);
      if (k == "t") t = v;
      if (k == "v1") v1.push_back(v);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (t.empty() || v1.empty() || !std::all_of(t.begin(), t.end(), ::isdigit) || t.size() > 12)
    throw ApiError::bad_request("invalid_signature", "The signature header is malformed.");
  std::string expected = crypto::to_hex(crypto::hmac_sha256(secret, t + "." + body));
  bool match = false;
  for (const auto& candidate : v1) match = crypto::equal_constant_time(candidate, expected) || match;
  if (!match) throw ApiError::bad_request("invalid_signature", "The signature does not match the delivery.");
  if (check_age) {
    int64_t age = std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count() - std::stoll(t);
    if (age > tolerance.count() || age < -tolerance.count())
      throw ApiError::bad_request("stale_signature", "The signature's timestamp is outside the tolerance.",
                                  {{"tolerance_seconds", tolerance.count()}});
  }
}

std::unique_ptr<Gateway> make_sandbox(const Options& options, std::function<std::string()> secret,
                                      std::function<std::string()> public_url) {
  return std::make_unique<Sandbox>(options, std::move(secret), std::move(public_url));
}

std::unique_ptr<Gateway> make_stripe(const Options& options) { return std::make_unique<Stripe>(options); }

}  // namespace souq::payments
