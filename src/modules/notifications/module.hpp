// The notifications module: what people are told about events that concern
// them, in their language, on the channels they chose.
//
// Consumers (wired in the composition root) turn domain events into Notices;
// each notice becomes one stored notification per person (deduplicated, so a
// redelivered event tells nobody twice), rendered from a template of its type
// and the person's locale. Its deliveries follow by jobs with retries:
//   in-app  — listed at /api/v1/notifications and pushed to private-user.{id}
//   push    — every device of the person, through a push provider (dev, fcm)
//   email   — to the person's address, through an email provider (dev, smtp)
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/blocking.hpp"
#include "db/database.hpp"
#include "http/router.hpp"
#include "jobs/queue.hpp"
#include "modules/identity/module.hpp"
#include "modules/realtime/module.hpp"

namespace souq::notifications {

struct Options {
  std::string push_provider = "dev";  // dev | fcm
  std::string fcm_credentials;        // a Google service-account JSON file
  std::string fcm_base_url = "https://fcm.googleapis.com";
  std::string fcm_token_url;          // empty: the credentials' token_uri
  std::string email_provider = "dev";  // dev | smtp
  std::string smtp_url;                // smtp://host:port (STARTTLS when offered) or smtps://host:port
  std::string smtp_user, smtp_password;
  std::string email_from = "Souq <no-reply@souq.localhost>";
};

// ---- Push --------------------------------------------------------------

struct PushMessage {
  std::string token;
  std::string platform;  // ios | android | web
  std::string title, body;
  std::map<std::string, std::string> data;  // FCM data values are strings
  std::string thread;  // groups notifications on the device (a conversation)
};

struct PushResult {
  enum class Status { sent, recorded, invalid_token, rejected } status;
  std::string provider_message_id;
  std::string error;  // for invalid_token and rejected
};

class PushProvider {
 public:
  virtual ~PushProvider() = default;
  virtual std::string name() const = 0;
  // Throws on a failure worth retrying (network, 429, 5xx, credentials).
  virtual PushResult send(const PushMessage& message) = 0;
};

// ---- Email -------------------------------------------------------------

struct EmailMessage {
  std::string to, to_name;
  std::string subject, text;
  std::string message_id;  // without angle brackets
};

// A refusal retrying cannot change (SMTP 5xx: no such mailbox, policy).
class EmailRejected : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class EmailProvider {
 public:
  virtual ~EmailProvider() = default;
  virtual std::string name() const = 0;
  // Returns "sent" or "recorded"; throws EmailRejected for a permanent
  // refusal, anything else for a failure worth retrying.
  virtual std::string send(const EmailMessage& message) = 0;
};

// Throw std::invalid_argument for an unknown provider or unusable settings.
std::unique_ptr<PushProvider> make_push_provider(const Options& options);
std::unique_ptr<EmailProvider> make_email_provider(const Options& options);

// The message as SMTP carries it (headers, base64 UTF-8 text); for tests.
std::string format_email(const EmailMessage& m, const std::string& from, const std::string& date);
// RFC 2047 encoded words for a header value that is not plain ASCII.
std::string encode_header_word(const std::string& text);

// ---- Templates ---------------------------------------------------------

// A type's built-in wording and what it may say.
struct TemplateType {
  std::string type;      // "offer.created", "offer.rejected.request_cancelled"
  std::string category;  // offers, deals, messages …
  std::vector<std::string> variables;
  std::map<std::string, std::pair<std::string, std::string>> text;  // locale → {title, body}
};
const std::vector<TemplateType>& built_in_templates();
const TemplateType* find_template_type(const std::string& type);

// Checks {{variable}} placeholders: empty when fine, else why not; names
// outside `allowed` go to `unknown`.
std::string check_placeholders(const std::string& text, const std::vector<std::string>& allowed,
                               std::vector<std::string>& unknown);
// Fills placeholders. In right-to-left text every value is wrapped in Unicode
// isolates (FSI … PDI) so that Latin names and numbers keep their order; in
// left-to-right text only values with right-to-left letters are.
std::string render(const std::string& text, const std::map<std::string, std::string>& values, bool rtl);
bool is_rtl_locale(const std::string& locale);
// "1,250.00 EGP" from 125000 minor units (the currency's exponent).
std::string money_text(int64_t minor, const std::string& currency);
// "ar-EG" → {"ar-EG", "ar", "en"}.
std::vector<std::string> locale_chain(const std::string& locale);

// ---- Preferences -------------------------------------------------------

inline const std::vector<std::string> kChannels = {"in_app", "push", "email"};
struct Category {
  std::string name;
  std::map<std::string, bool> defaults;  // channel → on
  std::vector<std::string> locked;       // channels a person cannot turn off
};
const std::vector<Category>& categories();

// ---- The service -------------------------------------------------------

// What a consumer asks: tell `user_id` about this, using the first template
// type of `types` that exists, with `vars` (an event's payload: scalars are
// variables; *_id fields naming people add *_name) and `data` for the client.
struct Notice {
  std::string user_id;
  std::string type;  // what clients see (default: the first of `types`)
  std::vector<std::string> types;
  json vars = json::object();
  json data = json::object();
  std::string dedupe_key;  // default: the event id
  std::string category;    // default: the template type's
  // Push and email only when the person has no socket open on their user
  // channel (nor on `presence_channel`, when given): a chat line to someone away.
  bool only_when_away = false;
  std::string presence_channel;
};
using Consumer = std::function<std::vector<Notice>(const json& payload)>;

struct Page {
  json items;
  json next_cursor;
};

class Notifications {
 public:
  Notifications(db::Database& db, jobs::Queue& queue, identity::Identity& identity, realtime::Realtime& realtime,
                PushProvider& push, EmailProvider& email);
  // Registers the delivery job kinds. Before workers start.
  void register_jobs();
  // Notices for every event of this type (or family "deal.*").
  void on(jobs::Outbox& outbox, const std::string& event_type, Consumer consumer);
  // Stores the notifications and enqueues their deliveries, in one transaction.
  void notify(const std::vector<Notice>& notices, const std::string& event_id, const std::string& request_id);

  Page list(db::Tx& tx, const std::string& user_id, const std::optional<std::string>& before, int limit, bool unread_only);
  static int64_t unread_count(db::Tx& tx, const std::string& user_id);
  json mark_read(const std::string& user_id, const std::string& id);
  json mark_all_read(const std::string& user_id, const std::optional<std::string>& up_to);

  json preferences(db::Tx& tx, const std::string& user_id);
  // {category: {channel: bool}}; 422 for unknown names, locked channels.
  json update_preferences(const std::string& user_id, const json& changes);

  json templates(db::Tx& tx);
  json put_template(const identity::Principal& admin, const std::string& type, const std::string& locale,
                    const std::string& title, const std::string& body, const std::string& request_id);
  json reset_template(const identity::Principal& admin, const std::string& type, const std::string& locale,
                      const std::string& request_id);
  json deliveries(db::Tx& tx, const std::string& user_id, const std::string& channel, int limit);

 private:
  struct Recipient;
  void notify_one(db::Tx& tx, const Notice& n, const std::string& event_id, const std::string& request_id);
  std::map<std::string, bool> channels_for(db::Tx& tx, const std::string& user_id, const std::string& category);
  bool away(const Notice& n);
  // {title, body, locale used} from the first type with a template in the first locale that has one.
  struct Rendered {
    const TemplateType* type = nullptr;
    std::string title, body, locale;
  };
  Rendered render_for(db::Tx& tx, const Notice& n, const std::string& locale);
  std::map<std::string, std::string> values_of(db::Tx& tx, const Notice& n);
  void deliver_push(const jobs::Job& job);
  // The delivery's id while it waits to be sent (its row made on first
  // sight); nullopt once an earlier attempt sent it or it was refused.
  std::optional<std::string> pending_delivery(const std::string& notification_id, const std::string& user_id,
                                              const std::string& channel, const std::string& provider,
                                              const std::string& target, const json& payload);
  // One attempt's outcome; an empty status leaves the delivery queued.
  void record_attempt(const std::string& delivery_id, const std::string& status, const std::string& provider_message_id,
                      const std::string& error);
  void deliver_email(const jobs::Job& job);
  // ids: those marked; null with read-all (everything, or up to `up_to`).
  void publish_read(const std::string& user_id, const json& ids, int64_t unread,
                    const std::optional<std::string>& up_to = std::nullopt);

  db::Database& db_;
  jobs::Queue& queue_;
  identity::Identity& identity_;
  realtime::Realtime& realtime_;
  PushProvider& push_;
  EmailProvider& email_;
};

json notification_json(const db::Row& r);

// /api/v1/notifications…, /api/v1/users/me/notification-preferences,
// /api/v1/admin/notification-templates…, /api/v1/admin/notification-deliveries.
void register_routes(api::Router& router, Notifications& notifications, identity::Identity& identity,
                     BlockingPool& blocking);

}  // namespace souq::notifications
