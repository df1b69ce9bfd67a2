#include "core/id.hpp"
#include "core/log.hpp"
#include "core/money.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"
#include "modules/audit/module.hpp"
#include "modules/notifications/module.hpp"

namespace souq::notifications {
namespace {

constexpr const char* kColumns = "id, type, category, title, body, locale, dir, data, read_at, created_at";
// Backoff doubles from a second (capped at an hour): 12 attempts wait about
// 68 minutes in all, 16 about 5 hours (an MTA's patience). Then the job is
// dead, shown to admins, and a retry of it sends what is still queued.
constexpr int kPushAttempts = 12;
constexpr int kEmailAttempts = 16;

const Category* find_category(const std::string& name) {
  for (const auto& c : categories())
    if (c.name == name) return &c;
  return nullptr;
}

std::string scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return v.dump();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return "";
}

std::string footer(const std::string& locale) {
  return is_rtl_locale(locale) ? "لاختيار الرسائل التي تصلك، افتح إعدادات الإشعارات في حسابك."
                               : "To choose which messages you receive, open the notification settings of your account.";
}

}  // namespace

std::string money_text(int64_t minor, const std::string& currency) {
  auto c = Currency::find(currency);
  int exponent = c ? c->exponent : 2;
  int64_t scale = 1;
  for (int i = 0; i < exponent; ++i) scale *= 10;
  bool negative = minor < 0;
  uint64_t magnitude = negative ? uint64_t(-(minor + 1)) + 1 : uint64_t(minor);
  std::string whole = std::to_string(magnitude / uint64_t(scale)), grouped;
  for (size_t i = 0; i < whole.size(); ++i) {
    if (i > 0 && (whole.size() - i) % 3 == 0) grouped += ',';
    grouped += whole[i];
  }
  std::string out = (negative ? "-" : "") + grouped;
  if (exponent > 0) {
    std::string fraction = std::to_string(magnitude % uint64_t(scale));
    out += "." + std::string(size_t(exponent) - fraction.size(), '0') + fraction;
  }
  return out + " " + currency;
}

json notification_json(const db::Row& r) {
  return {{"id", r.text("id")},         {"type", r.text("type")},   {"category", r.text("category")},
          {"title", r.text("title")},   {"body", r.text("body")},   {"locale", r.text("locale")},
          {"dir", r.text("dir")},       {"data", r.json("data")},   {"read_at", r.nullable_text("read_at")},
          {"created_at", r.text("created_at")}};
}

Notifications::Notifications(db::Database& db, jobs::Queue& queue, identity::Identity& identity,
                             realtime::Realtime& realtime, PushProvider& push, EmailProvider& email)
    : db_(db), queue_(queue), identity_(identity), realtime_(realtime), push_(push), email_(email) {}

void Notifications::register_jobs() {
  queue_.handle("notifications.push", [this](const jobs::Job& job) { deliver_push(job); });
  queue_.handle("notifications.email", [this](const jobs::Job& job) { deliver_email(job); });
}

void Notifications::on(jobs::Outbox& outbox, const std::string& event_type, Consumer consumer) {
  outbox.subscribe(event_type, "notify:" + event_type, [this, consumer = std::move(consumer)](const json& event) {
    auto notices = consumer(event.at("payload"));
    if (!notices.empty()) notify(notices, event.at("id"), event.value("request_id", ""));
  });
}

void Notifications::notify(const std::vector<Notice>& notices, const std::string& event_id,
                           const std::string& request_id) {
  db_.write([&](db::Tx& tx) {
    for (const auto& n : notices) notify_one(tx, n, event_id, request_id);
  });
  queue_.notify();
}

bool Notifications::away(const Notice& n) {
  if (realtime_.user_online(n.user_id)) return false;
  if (!n.presence_channel.empty()) {
    auto here = realtime_.users(n.presence_channel);
    if (std::find(here.begin(), here.end(), n.user_id) != here.end()) return false;
  }
  return true;
}

std::map<std::string, bool> Notifications::channels_for(db::Tx& tx, const std::string& user_id,
                                                        const std::string& category) {
  const Category* c = find_category(category);
  std::map<std::string, bool> on = c ? c->defaults : std::map<std::string, bool>{{"in_app", true}, {"push", true}, {"email", false}};
  for (const auto& r : tx.query("SELECT channel, enabled FROM notification_preferences WHERE user_id = $1 AND category = $2",
                                {user_id, category}))
    on[r.text("channel")] = r.integer("enabled") != 0;
  if (c)
    for (const auto& locked : c->locked) on[locked] = true;
  return on;
}

std::map<std::string, std::string> Notifications::values_of(db::Tx& tx, const Notice& n) {
  std::map<std::string, std::string> values;
  std::vector<std::pair<std::string, std::string>> people;  // {"seller", user id} from seller_id
  for (const auto& item : n.vars.items()) {
    if (item.value().is_structured() || item.value().is_null()) continue;
    values[item.key()] = scalar_text(item.value());
    const std::string& key = item.key();
    if (key.size() > 3 && key.compare(key.size() - 3, 3, "_id") == 0 && item.value().is_string() &&
        is_id(item.value().get<std::string>(), "usr"))
      people.emplace_back(key.substr(0, key.size() - 3), item.value());
  }
  std::string currency = n.vars.value("currency", "");
  for (const char* money : {"price", "amount"})
    if (!currency.empty() && n.vars.contains(money) && n.vars[money].is_number_integer())
      values[money] = money_text(n.vars[money].get<int64_t>(), currency);
  if (!people.empty()) {
    std::vector<std::string> ids;
    for (const auto& [role, id] : people) ids.push_back(id);
    auto found = identity_.summaries(tx, ids);
    for (const auto& [role, id] : people)
      if (auto it = found.find(id); it != found.end()) values[role + "_name"] = it->second.value("display_name", "");
  }
  return values;
}

Notifications::Rendered Notifications::render_for(db::Tx& tx, const Notice& n, const std::string& locale) {
  Rendered out;
  for (const auto& type : n.types) {
    const TemplateType* t = find_template_type(type);
    if (!t) continue;
    out.type = t;
    for (const auto& l : locale_chain(locale)) {
      if (auto custom = tx.query_one("SELECT title, body FROM notification_templates WHERE type = $1 AND locale = $2",
                                     {type, l})) {
        out.title = custom->text("title");
        out.body = custom->text("body");
        out.locale = l;
        return out;
      }
      if (auto it = t->text.find(l); it != t->text.end()) {
        out.title = it->second.first;
        out.body = it->second.second;
        out.locale = l;
        return out;
      }
    }
  }
  return out;
}

void Notifications::notify_one(db::Tx& tx, const Notice& n, const std::string& event_id, const std::string& request_id) {
  if (!identity::Identity::exists(tx, n.user_id)) return;
  json user = identity_.me(tx, n.user_id);
  auto rendered = render_for(tx, n, user.value("locale", "en"));
  if (!rendered.type) {
    log::warn("notification without a template", {{"types", n.types}, {"user_id", n.user_id}});
    return;
  }
  std::string category = n.category.empty() ? rendered.type->category : n.category;
  auto on = channels_for(tx, n.user_id, category);
  if (n.only_when_away && !away(n)) on["push"] = on["email"] = false;
  if (!on["in_app"] && !on["push"] && !on["email"]) return;

  bool rtl = is_rtl_locale(rendered.locale);
  auto values = values_of(tx, n);
  std::string id = new_id("ntf"), stamp = now_text();
  std::string title = utf8::prefix(render(rendered.title, values, rtl), 200);
  std::string body = utf8::prefix(render(rendered.body, values, rtl), 1000);
  std::string type = !n.type.empty() ? n.type : n.types.front();
  if (tx.exec("INSERT INTO notifications (id, user_id, type, category, title, body, locale, dir, data, in_app, dedupe_key,"
              " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
              " ON CONFLICT (user_id, dedupe_key) DO NOTHING",
              {id, n.user_id, type, category, title, body, rendered.locale, rtl ? "rtl" : "ltr", n.data.dump(),
               int64_t(on["in_app"] ? 1 : 0), n.dedupe_key.empty() ? event_id : n.dedupe_key, stamp}) == 0)
    return;  // told already (a redelivered event, or another event about the same thing)
  if (on["in_app"]) {
    auto row = tx.query_one(std::string("SELECT ") + kColumns + " FROM notifications WHERE id = $1", {id});
    json notification = notification_json(*row);
    std::string channel = "private-user." + n.user_id;
    tx.after_commit([this, channel, notification] { realtime_.publish(channel, "notification.created", notification); });
  }
  jobs::EnqueueOptions options;
  options.request_id = request_id;
  if (on["push"]) {
    options.max_attempts = kPushAttempts;
    queue_.enqueue(tx, "notifications.push", {{"notification_id", id}}, options);
  }
  if (on["email"] && user["email"].is_string()) {
    options.max_attempts = kEmailAttempts;
    queue_.enqueue(tx, "notifications.email", {{"notification_id", id}}, options);
  }
}

// ---- Deliveries ----------------------------------------------------------

void Notifications::deliver_push(const jobs::Job& job) {
  const std::string notification_id = job.payload.at("notification_id");
  auto [row, devices] = db_.read([&](db::Tx& tx) {
    auto r = tx.query_one("SELECT user_id, type, title, body, data FROM notifications WHERE id = $1", {notification_id});
    return std::make_pair(r, r ? identity_.devices(tx, r->text("user_id")) : json::array());
  });
  if (!row) return;
  std::string user_id = row->text("user_id");
  std::string failure;
  for (const auto& device : devices) {
    PushMessage m;
    m.token = device["push_token"];
    m.platform = device["platform"];
    m.title = row->text("title");
    m.body = row->text("body");
    json data = row->json("data");  // (items() of a temporary would outlive it)
    for (const auto& item : data.items())
      if (!item.value().is_null() && !item.value().is_structured()) m.data[item.key()] = scalar_text(item.value());
    m.data["notification_id"] = notification_id;
    m.data["type"] = row->text("type");
    if (m.data.count("conversation_id")) m.thread = m.data["conversation_id"];
    json payload = {{"title", m.title}, {"body", m.body}, {"data", m.data}, {"platform", m.platform}};
    auto delivery = pending_delivery(notification_id, user_id, "push", push_.name(), m.token, payload);
    if (!delivery) continue;
    try {
      auto result = push_.send(m);
      std::string status = result.status == PushResult::Status::sent       ? "sent"
                           : result.status == PushResult::Status::recorded ? "recorded"
                           : result.status == PushResult::Status::invalid_token ? "invalid_token"
                                                                                : "failed";
      record_attempt(*delivery, status, result.provider_message_id, result.error);
      if (result.status == PushResult::Status::invalid_token) {
        identity_.forget_push_token(m.token);
        log::info("push token removed", {{"user_id", user_id}, {"device_id", device["device_id"]}, {"why", result.error}});
      }
    } catch (const std::exception& e) {
      // Still queued: a later attempt, or an admin's retry of the dead job, sends it.
      failure = e.what();
      record_attempt(*delivery, "", "", failure);
      break;  // the provider is down or throttling: the other devices wait for the retry too
    }
  }
  if (!failure.empty()) throw std::runtime_error(failure);  // the devices not yet reached, later
}

void Notifications::deliver_email(const jobs::Job& job) {
  const std::string notification_id = job.payload.at("notification_id");
  auto [row, user] = db_.read([&](db::Tx& tx) {
    auto r = tx.query_one("SELECT user_id, title, body, locale FROM notifications WHERE id = $1", {notification_id});
    return std::make_pair(r, r ? identity_.me(tx, r->text("user_id")) : json());
  });
  if (!row || !user["email"].is_string()) return;  // the address was removed since
  EmailMessage m;
  m.to = user["email"];
  m.to_name = user.value("display_name", "");
  m.subject = row->text("title");
  m.text = row->text("body") + "\n\n--\n" + footer(row->text("locale")) + "\n";
  json payload = {{"subject", m.subject}, {"text", m.text}, {"to_name", m.to_name}};
  auto delivery = pending_delivery(notification_id, row->text("user_id"), "email", email_.name(), m.to, payload);
  if (!delivery) return;
  m.message_id = *delivery;
  try {
    record_attempt(*delivery, email_.send(m), "", "");
  } catch (const EmailRejected& e) {  // the server refused for good (5xx): retrying changes nothing
    record_attempt(*delivery, "failed", "", e.what());
  } catch (const std::exception& e) {  // still queued: a later attempt, or an admin's retry, sends it
    record_attempt(*delivery, "", "", e.what());
    throw;
  }
}

std::optional<std::string> Notifications::pending_delivery(const std::string& notification_id,
                                                           const std::string& user_id, const std::string& channel,
                                                           const std::string& provider, const std::string& target,
                                                           const json& payload) {
  return db_.write([&](db::Tx& tx) -> std::optional<std::string> {
    tx.exec("INSERT INTO notification_deliveries (id, notification_id, user_id, channel, provider, target, status,"
            " payload, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8)"
            " ON CONFLICT (notification_id, channel, target) DO NOTHING",
            {new_id("dlv"), notification_id, user_id, channel, provider, target, payload.dump(), now_text()});
    auto row = tx.query_one("SELECT id, status FROM notification_deliveries WHERE notification_id = $1 AND channel = $2"
                            " AND target = $3",
                            {notification_id, channel, target});
    if (row->text("status") != "queued") return std::nullopt;
    return row->text("id");
  });
}

void Notifications::record_attempt(const std::string& delivery_id, const std::string& status,
                                   const std::string& provider_message_id, const std::string& error) {
  bool delivered = status == "sent" || status == "recorded";
  db_.write([&](db::Tx& tx) {
    tx.exec("UPDATE notification_deliveries SET status = COALESCE($2, status),"
            " provider_message_id = COALESCE($3, provider_message_id), error = $4, attempts = attempts + 1,"
            " sent_at = COALESCE($5, sent_at) WHERE id = $1",
            {delivery_id, db::null_if_empty(status), db::null_if_empty(provider_message_id),
             error.empty() ? db::Value() : db::Value(utf8::sanitize(error, 1000)),
             delivered ? db::Value(now_text()) : db::Value()});
  });
}

// ---- The in-app list -------------------------------------------------------

Page Notifications::list(db::Tx& tx, const std::string& user_id, const std::optional<std::string>& before, int limit,
                         bool unread_only) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM notifications WHERE user_id = $1 AND in_app = 1";
  db::Params params = {user_id};
  if (unread_only) sql += " AND read_at IS NULL";
  if (before) {
    params.emplace_back(*before);
    sql += " AND id < $" + std::to_string(params.size());
  }
  params.emplace_back(int64_t(limit + 1));
  sql += " ORDER BY id DESC LIMIT $" + std::to_string(params.size());
  auto [items, next] = db::page_of(tx.query(sql, params), limit, notification_json);
  return {items, next};
}

int64_t Notifications::unread_count(db::Tx& tx, const std::string& user_id) {
  return tx.query_one("SELECT COUNT(*) AS n FROM notifications WHERE user_id = $1 AND in_app = 1 AND read_at IS NULL",
                      {user_id})
      ->integer("n");
}

void Notifications::publish_read(const std::string& user_id, const json& ids, int64_t unread,
                                 const std::optional<std::string>& up_to) {
  realtime_.publish("private-user." + user_id, "notification.read",
                    {{"ids", ids}, {"up_to", up_to ? json(*up_to) : json(nullptr)}, {"unread_count", unread}});
}

json Notifications::mark_read(const std::string& user_id, const std::string& id) {
  return db_.write([&](db::Tx& tx) {
    bool changed = tx.exec("UPDATE notifications SET read_at = $3 WHERE id = $1 AND user_id = $2 AND in_app = 1"
                           " AND read_at IS NULL",
                           {id, user_id, now_text()}) == 1;
    auto row = tx.query_one(std::string("SELECT ") + kColumns + " FROM notifications WHERE id = $1 AND user_id = $2"
                                                                " AND in_app = 1",
                            {id, user_id});
    if (!row) throw ApiError::not_found("No such notification.");
    if (changed) {
      int64_t unread = unread_count(tx, user_id);
      tx.after_commit([this, user_id, id, unread] { publish_read(user_id, json::array({id}), unread); });
    }
    return notification_json(*row);
  });
}

json Notifications::mark_all_read(const std::string& user_id, const std::optional<std::string>& up_to) {
  return db_.write([&](db::Tx& tx) {
    std::string sql = "UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND in_app = 1 AND read_at IS NULL";
    db::Params params = {user_id, now_text()};
    if (up_to) {
      params.emplace_back(*up_to);
      sql += " AND id <= $3";
    }
    int64_t marked = tx.exec(sql, params);
    int64_t unread = unread_count(tx, user_id);
    if (marked > 0)
      tx.after_commit([this, user_id, unread, up_to] { publish_read(user_id, nullptr, unread, up_to); });
    return json{{"marked", marked}, {"unread_count", unread}};
  });
}

// ---- Preferences -------------------------------------------------------------

json Notifications::preferences(db::Tx& tx, const std::string& user_id) {
  json prefs = json::object(), locked = json::object();
  for (const auto& c : categories()) {
    prefs[c.name] = c.defaults;
    if (!c.locked.empty()) locked[c.name] = c.locked;
  }
  for (const auto& r : tx.query("SELECT category, channel, enabled FROM notification_preferences WHERE user_id = $1",
                                {user_id}))
    if (prefs.contains(r.text("category"))) prefs[r.text("category")][r.text("channel")] = r.integer("enabled") != 0;
  for (const auto& c : categories())
    for (const auto& channel : c.locked) prefs[c.name][channel] = true;
  return {{"preferences", prefs}, {"locked", locked}};
}

json Notifications::update_preferences(const std::string& user_id, const json& changes) {
  json errors = json::object();
  std::vector<std::tuple<std::string, std::string, bool>> rows;
  json locked_hits = json::array();
  for (const auto& [category, channels] : changes.items()) {
    const Category* c = find_category(category);
    if (!c) {
      errors[category] = "is not a category";
      continue;
    }
    if (!channels.is_object()) {
      errors[category] = "must be an object of channel: true|false";
      continue;
    }
    for (const auto& [channel, on] : channels.items()) {
      std::string field = category + "." + channel;
      if (std::find(kChannels.begin(), kChannels.end(), channel) == kChannels.end())
        errors[field] = "is not a channel (in_app, push, email)";
      else if (!on.is_boolean())
        errors[field] = "must be true or false";
      else if (!on.get<bool>() && std::find(c->locked.begin(), c->locked.end(), channel) != c->locked.end())
        locked_hits.push_back(field);
      else
        rows.emplace_back(category, channel, on.get<bool>());
    }
  }
  if (!errors.empty()) throw ApiError::validation(errors);
  if (!locked_hits.empty())
    throw ApiError(422, "preference_locked", "Notices about your account cannot be turned off there.",
                   {{"preferences", locked_hits}});
  return db_.write([&](db::Tx& tx) {
    auto stamp = now_text();
    for (const auto& [category, channel, on] : rows)
      tx.exec("INSERT INTO notification_preferences (user_id, category, channel, enabled, updated_at)"
              " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, category, channel)"
              " DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
              {user_id, category, channel, int64_t(on ? 1 : 0), stamp});
    return preferences(tx, user_id);
  });
}

// ---- Templates (admin) -------------------------------------------------------

namespace {
json template_json(const TemplateType& t, const std::string& locale, const std::string& title, const std::string& body,
                   const std::optional<std::string>& updated_at) {
  return {{"type", t.type},   {"locale", locale}, {"category", t.category},
          {"title", title},   {"body", body},     {"variables", t.variables},
          {"source", updated_at ? "custom" : "built_in"}, {"updated_at", updated_at ? json(*updated_at) : json(nullptr)}};
}

const TemplateType& known_type(const std::string& type) {
  const TemplateType* t = find_template_type(type);
  if (!t) throw ApiError::not_found("There is no notification type \"" + type + "\".");
  return *t;
}
}  // namespace

json Notifications::templates(db::Tx& tx) {
  std::map<std::pair<std::string, std::string>, db::Row> custom;
  for (const auto& r : tx.query("SELECT type, locale, title, body, updated_at FROM notification_templates"))
    custom.emplace(std::make_pair(r.text("type"), r.text("locale")), r);
  json out = json::array();
  for (const auto& t : built_in_templates()) {
    std::map<std::string, bool> locales;
    for (const auto& [locale, text] : t.text) locales[locale] = true;
    for (const auto& [key, row] : custom)
      if (key.first == t.type) locales[key.second] = true;
    for (const auto& [locale, _] : locales) {
      auto it = custom.find({t.type, locale});
      if (it != custom.end())
        out.push_back(template_json(t, locale, it->second.text("title"), it->second.text("body"), it->second.text("updated_at")));
      else
        out.push_back(template_json(t, locale, t.text.at(locale).first, t.text.at(locale).second, std::nullopt));
    }
  }
  return out;
}

json Notifications::put_template(const identity::Principal& admin, const std::string& type, const std::string& locale,
                                 const std::string& title, const std::string& body, const std::string& request_id) {
  const TemplateType& t = known_type(type);
  json malformed = json::object();
  std::vector<std::string> unknown;
  for (const auto& [field, text] : {std::pair{"title", &title}, std::pair{"body", &body}})
    if (auto why = check_placeholders(*text, t.variables, unknown); !why.empty()) malformed[field] = why;
  if (!malformed.empty()) throw ApiError::validation(malformed);
  if (!unknown.empty())
    throw ApiError::unprocessable("unknown_template_variable", "The template names variables this type does not have.",
                                  {{"unknown", unknown}, {"variables", t.variables}});
  return db_.write([&](db::Tx& tx) {
    auto stamp = now_text();
    tx.exec("INSERT INTO notification_templates (type, locale, title, body, updated_by, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (type, locale) DO UPDATE SET title = excluded.title,"
            " body = excluded.body, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            {type, locale, title, body, admin.user_id, stamp});
    audit::record(tx, {admin.user_id, "notification_template.update", "notification_template", type + "/" + locale, "",
                       {{"title", title}, {"body", body}}, request_id});
    return template_json(t, locale, title, body, stamp);
  });
}

json Notifications::reset_template(const identity::Principal& admin, const std::string& type, const std::string& locale,
                                   const std::string& request_id) {
  const TemplateType& t = known_type(type);
  return db_.write([&](db::Tx& tx) {
    if (tx.exec("DELETE FROM notification_templates WHERE type = $1 AND locale = $2", {type, locale}) == 0)
      throw ApiError::not_found("There is no custom template for " + type + " in " + locale + ".");
    audit::record(tx, {admin.user_id, "notification_template.reset", "notification_template", type + "/" + locale, "",
                       json::object(), request_id});
    for (const auto& l : locale_chain(locale))
      if (auto it = t.text.find(l); it != t.text.end()) return template_json(t, l, it->second.first, it->second.second, std::nullopt);
    return json(nullptr);  // unreachable: every type has English
  });
}

json Notifications::deliveries(db::Tx& tx, const std::string& user_id, const std::string& channel, int limit) {
  json out = json::array();
  for (const auto& r : tx.query(
           "SELECT d.id, d.notification_id, d.user_id, d.channel, d.provider, d.target, d.status, d.payload,"
           " d.provider_message_id, d.error, d.attempts, d.created_at, d.sent_at FROM notification_deliveries d"
           " WHERE ($1 = '' OR d.user_id = $1) AND ($2 = '' OR d.channel = $2) ORDER BY d.id DESC LIMIT $3",
           {user_id, channel, int64_t(limit)})) {
    json payload = r.json("payload");
    out.push_back({{"id", r.text("id")},
                   {"notification_id", r.text("notification_id")},
                   {"user_id", r.text("user_id")},
                   {"channel", r.text("channel")},
                   {"provider", r.text("provider")},
                   {"target", r.text("target")},
                   {"status", r.text("status")},
                   {"title", payload.value("title", payload.value("subject", ""))},
                   {"body", payload.value("body", payload.value("text", ""))},
                   {"data", payload.value("data", json::object())},
                   {"provider_message_id", r.nullable_text("provider_message_id")},
                   {"error", r.nullable_text("error")},
                   {"attempts", r.integer("attempts")},
                   {"created_at", r.text("created_at")},
                   {"sent_at", r.nullable_text("sent_at")}});
  }
  return out;
}

}  // namespace souq::notifications
