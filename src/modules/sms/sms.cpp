#include "core/http_client.hpp"
#include "core/id.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"
#include "modules/sms/module.hpp"

namespace souq::sms {
namespace {

class DevProvider final : public Provider {
 public:
  std::string name() const override { return "dev"; }
  Delivery send(const std::string& to, const std::string& body) override {
    log::info("sms (dev provider: recorded, not sent)", {{"to", to}, {"body", body}});
    return {"recorded", ""};
  }
};

// POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json, form-encoded
// To, From (or MessagingServiceSid), Body; HTTP Basic with the account SID and
// auth token; 201 with the message resource ({"sid": "SM…", "status": …}).
class TwilioProvider final : public Provider {
 public:
  explicit TwilioProvider(Options o) : o_(std::move(o)) {
    if (o_.twilio_account_sid.empty() || o_.twilio_auth_token.empty() || o_.twilio_from.empty())
      throw std::invalid_argument("--sms-provider twilio needs --twilio-account-sid, --twilio-auth-token, --twilio-from");
  }
  std::string name() const override { return "twilio"; }
  Delivery send(const std::string& to, const std::string& body) override {
    HttpRequest r;
    r.url = o_.twilio_base_url + "/2010-04-01/Accounts/" + o_.twilio_account_sid + "/Messages.json";
    bool service = o_.twilio_from.rfind("MG", 0) == 0;
    r.body = form_encode({{"To", to}, {service ? "MessagingServiceSid" : "From", o_.twilio_from}, {"Body", body}});
    r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
    r.basic_user = o_.twilio_account_sid;
    r.basic_password = o_.twilio_auth_token;
    auto res = http_call(r);
    if (!res.error.empty()) throw std::runtime_error("twilio unreachable: " + res.error);
    auto reply = json::parse(res.body, nullptr, false);
    if (res.status != 200 && res.status != 201) {
      std::string message = reply.is_object() ? reply.value("message", std::string()) : std::string();
      throw std::runtime_error("twilio answered " + std::to_string(res.status) + ": " + message);
    }
    if (!reply.is_object() || !reply.contains("sid")) throw std::runtime_error("twilio answered without a message sid");
    return {"sent", reply["sid"].get<std::string>()};
  }

 private:
  Options o_;
};

}  // namespace

std::unique_ptr<Provider> make_provider(const Options& options) {
  if (options.provider == "dev") return std::make_unique<DevProvider>();
  if (options.provider == "twilio") return std::make_unique<TwilioProvider>(options);
  throw std::invalid_argument("--sms-provider must be dev or twilio, not " + options.provider);
}

std::string Sms::send(db::Tx& tx, const std::string& to, const std::string& body, const std::string& purpose,
                      const std::string& request_id) {
  std::string id = new_id("sms");
  tx.exec("INSERT INTO sms_messages (id, to_phone, body, purpose, provider, status, request_id, created_at)"
          " VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7)",
          {id, to, body, purpose, provider_.name(), request_id, now_text()});
  jobs::EnqueueOptions options;
  options.request_id = request_id;
  options.max_attempts = 5;  // an OTP is worthless after its 10 minutes; do not retry for hours
  queue_.enqueue(tx, "sms.send", {{"message_id", id}}, options);
  return id;
}

void Sms::register_jobs() {
  queue_.handle("sms.send", [this](const jobs::Job& job) { deliver(job); });
}

void Sms::deliver(const jobs::Job& job) {
  const std::string message_id = job.payload.at("message_id");
  auto row = db_.read([&](db::Tx& tx) {
    return tx.query_one("SELECT to_phone, body, status FROM sms_messages WHERE id = $1", {message_id});
  });
  if (!row || row->text("status") != "queued") return;  // delivered by an earlier attempt
  try {
    auto delivery = provider_.send(row->text("to_phone"), row->text("body"));
    db_.write([&](db::Tx& tx) {
      tx.exec("UPDATE sms_messages SET status = $2, provider_message_id = $3, error = NULL, sent_at = $4"
              " WHERE id = $1 AND status = 'queued'",
              {message_id, delivery.status, delivery.provider_message_id, now_text()});
      // Once a real gateway has it, a sign-in code must not stay readable to
      // admins or in backups. (The dev provider sends nothing: its record is
      // the only way the code reaches anyone.)
      if (delivery.status == "sent")
        tx.exec("UPDATE sms_messages SET body = '[code removed after delivery]' WHERE id = $1 AND purpose = 'otp'",
                {message_id});
    });
  } catch (const std::exception& e) {
    db_.write([&](db::Tx& tx) {
      // On the last attempt the message is failed for good (the job is parked as dead).
      tx.exec("UPDATE sms_messages SET error = $2, status = CASE WHEN $3 = 1 THEN 'failed' ELSE status END"
              " WHERE id = $1 AND status = 'queued'",
              {message_id, utf8::sanitize(e.what(), 1000), job.attempts >= job.max_attempts ? 1 : 0});
    });
    throw;  // the queue retries, then parks the job as dead
  }
}

json Sms::recent(const std::string& to_phone, int limit) {
  return db_.read([&](db::Tx& tx) {
    json out = json::array();
    for (const auto& r : tx.query("SELECT id, to_phone, body, purpose, provider, status, provider_message_id, error,"
                                  " created_at, sent_at FROM sms_messages WHERE ($1 = '' OR to_phone = $1)"
                                  " ORDER BY id DESC LIMIT $2",
                                  {to_phone, limit})) {
      out.push_back({{"id", r.text("id")}, {"to", r.text("to_phone")}, {"body", r.text("body")},
                     {"purpose", r.text("purpose")}, {"provider", r.text("provider")}, {"status", r.text("status")},
                     {"provider_message_id", r.nullable_text("provider_message_id")}, {"error", r.nullable_text("error")},
                     {"created_at", r.text("created_at")}, {"sent_at", r.nullable_text("sent_at")}});
    }
    return out;
  });
}

}  // namespace souq::sms
