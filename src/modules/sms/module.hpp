// The sms module: text messages to phones, sent through a provider from a job
// (so a slow or failing gateway never holds up the request that asked).
//   dev    — records the message (log and admin list); sends nothing
//   twilio — Twilio's Messages API over HTTPS (base URL configurable)
#pragma once
#include <memory>
#include <string>

#include "core/json.hpp"
#include "db/database.hpp"
#include "jobs/queue.hpp"

namespace souq::sms {

struct Options {
  std::string provider = "dev";  // dev | twilio
  std::string twilio_base_url = "https://api.twilio.com";
  std::string twilio_account_sid;
  std::string twilio_auth_token;
  std::string twilio_from;  // E.164 sender, or a Messaging Service SID (MG…)
};

// What a provider did with one message.
struct Delivery {
  std::string status;  // recorded | sent
  std::string provider_message_id;
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual std::string name() const = 0;
  // Throws on failure (the job retries with backoff).
  virtual Delivery send(const std::string& to, const std::string& body) = 0;
};

// Throws std::invalid_argument for an unknown provider or missing settings.
std::unique_ptr<Provider> make_provider(const Options& options);

class Sms {
 public:
  Sms(db::Database& db, jobs::Queue& queue, Provider& provider) : db_(db), queue_(queue), provider_(provider) {}

  // Records the message and enqueues its delivery in the caller's transaction.
  std::string send(db::Tx& tx, const std::string& to, const std::string& body, const std::string& purpose,
                   const std::string& request_id);
  // Registers the "sms.send" job kind. Call before workers start.
  void register_jobs();
  // Newest first, for admins (and for tests in --dev).
  json recent(const std::string& to_phone, int limit);

 private:
  void deliver(const jobs::Job& job);
  db::Database& db_;
  jobs::Queue& queue_;
  Provider& provider_;
};

}  // namespace souq::sms
