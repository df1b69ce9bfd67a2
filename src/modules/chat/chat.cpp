#include <algorithm>

#include "core/crypto.hpp"
#include "core/id.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"
#include "http/paging.hpp"
#include "modules/chat/module.hpp"

namespace souq::chat {

Chat* Chat::instance_ = nullptr;

namespace {

constexpr const char* kMessageColumns = "id, conversation_id, sender_id, kind, body, attachments, created_at";

std::string participants_key(std::vector<Participant> people) {
  std::vector<std::string> ids;
  for (const auto& p : people) ids.push_back(p.user_id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::string key;
  for (const auto& id : ids) key += (key.empty() ? "" : ",") + id;
  return key;
}

bool includes(const std::vector<Participant>& people, const std::string& user_id) {
  return std::any_of(people.begin(), people.end(), [&](const Participant& p) { return p.user_id == user_id; });
}

std::vector<std::string> recipients(const std::vector<Participant>& people, const std::optional<std::string>& sender) {
  std::vector<std::string> out;
  for (const auto& p : people)
    if (!sender || p.user_id != *sender) out.push_back(p.user_id);
  return out;
}

}  // namespace

Chat::Chat(db::Database& db, jobs::Outbox& outbox, identity::Identity& identity, realtime::Realtime& realtime,
           storage::Storage& files, Options options)
    : db_(db), outbox_(outbox), identity_(identity), realtime_(realtime), files_(files), options_(options) {}

void Chat::add_subject(const std::string& type, SubjectResolver resolver) { subjects_[type] = std::move(resolver); }

void Chat::register_policies() {
  realtime_.add_policy("conversation.", [this](db::Tx& tx, const identity::Principal& who, const std::string& id) {
    if (!is_id(id, "conv")) return false;
    return tx.query_one("SELECT 1 AS yes FROM conversation_participants WHERE conversation_id = $1 AND user_id = $2",
                        {id, who.user_id})
        .has_value();
  });
}

void Chat::register_actions(transactions::Actions& actions) {
  actions.add("post_message",
              {"Posts a system message (params.text) in the conversation between the transaction's parties.",
               [](const json& params) -> std::string {
                 if (!params.is_object() || !params.contains("text") || !params["text"].is_string() ||
                     params["text"].get<std::string>().empty())
                   return "post_message needs params.text";
                 return "";
               },
               [](transactions::ActionContext& ctx) {
                 if (!instance_) return;  // loading processes without a server (souq processes check)
                 instance_->post_system(ctx.tx, "transaction", ctx.txn.id,
                                        {{ctx.txn.buyer_id, "buyer"}, {ctx.txn.seller_id, "seller"}},
                                        ctx.params["text"].get<std::string>(), ctx.request_id);
               }});
}

std::optional<std::vector<Participant>> Chat::participants_of(db::Tx& tx, const std::string& conversation_id) {
  auto rows = tx.query("SELECT user_id, role FROM conversation_participants WHERE conversation_id = $1 ORDER BY user_id",
                       {conversation_id});
  if (rows.empty()) return std::nullopt;
  std::vector<Participant> out;
  for (const auto& r : rows) out.push_back({r.text("user_id"), r.text("role")});
  return out;
}

std::vector<Participant> Chat::require_participant(db::Tx& tx, const std::string& conversation_id,
                                                   const identity::Principal& who) {
  auto people = participants_of(tx, conversation_id);
  if (!people || !includes(*people, who.user_id)) throw ApiError::not_found("No such conversation.");
  return *people;
}

std::string Chat::find_or_create(db::Tx& tx, const std::string& subject_type, const std::string& subject_id,
                                 const std::vector<Participant>& participants, const std::string& created_by,
                                 bool& created) {
  std::string key = participants_key(participants);
  const char* find = "SELECT id FROM conversations WHERE subject_type = $1 AND subject_id = $2 AND participants_key = $3";
  if (auto row = tx.query_one(find, {subject_type, subject_id, key})) {
    created = false;
    return row->text("id");
  }
  std::string id = new_id("conv"), t = now_text();
  // Two first messages racing: the unique key lets one insert; the other
  // finds it.
  created = tx.exec("INSERT INTO conversations (id, subject_type, subject_id, participants_key, created_by, created_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    {id, subject_type, subject_id, key, db::null_if_empty(created_by), t}) == 1;
  if (!created) return tx.query_one(find, {subject_type, subject_id, key})->text("id");
  for (const auto& p : participants)
    tx.exec("INSERT INTO conversation_participants (conversation_id, user_id, role, joined_at, last_activity_at)"
            " VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING",
            {id, p.user_id, p.role, t});
  return id;
}

std::pair<json, bool> Chat::open(const identity::Principal& who, const std::string& subject_type,
                                 const std::string& subject_id, const std::string& request_id) {
  auto resolver = subjects_.find(subject_type);
  if (resolver == subjects_.end()) {
    std::string known;
    for (const auto& [type, fn] : subjects_) known += (known.empty() ? "" : ", ") + type;
    throw ApiError::validation({{"subject_type", "must be one of " + known}});
  }
  return db_.write([&](db::Tx& tx) {
    auto people = resolver->second(tx, who, subject_id);
    if (!people || !includes(*people, who.user_id))
      throw ApiError::not_found("No such " + subject_type + " to talk about.");
    bool created = false;
    std::string id = find_or_create(tx, subject_type, subject_id, *people, who.user_id, created);
    if (created)
      outbox_.emit(tx, "conversation.created",
                   {{"conversation_id", id}, {"subject_type", subject_type}, {"subject_id", subject_id},
                    {"participants", recipients(*people, std::nullopt)}, {"created_by", who.user_id}},
                   id, request_id);
    return std::make_pair(conversation(tx, id, who), created);
  });
}

json Chat::attachments_json(db::Tx& tx, const std::vector<std::string>& ids) {
  json out = json::array();
  if (ids.empty()) return out;
  db::Params params;
  std::string in = db::bind_list(params, ids);
  std::map<std::string, json> found;
  for (const auto& r : tx.query("SELECT id, filename, content_type, size FROM chat_attachments WHERE id IN (" + in + ")",
                                params))
    found[r.text("id")] = {{"id", r.text("id")},
                           {"filename", r.text("filename")},
                           {"content_type", r.text("content_type")},
                           {"size", r.integer("size")},
                           {"url", "/api/v1/attachments/" + r.text("id")}};
  for (const auto& id : ids)
    if (found.count(id)) out.push_back(found[id]);
  return out;
}

json Chat::message_json(db::Tx& tx, const db::Row& r) {
  auto ids = json::parse(r.text("attachments")).get<std::vector<std::string>>();
  return {{"id", r.text("id")},
          {"conversation_id", r.text("conversation_id")},
          {"sender_id", r.nullable_text("sender_id")},
          {"kind", r.text("kind")},
          {"body", r.nullable_text("body")},
          {"attachments", attachments_json(tx, ids)},
          {"created_at", r.text("created_at")}};
}

json Chat::conversation(db::Tx& tx, const std::string& id, const identity::Principal& who) {
  auto c = tx.query_one("SELECT id, subject_type, subject_id, created_at, last_message_id, last_message_at, message_count"
                        " FROM conversations WHERE id = $1",
                        {id});
  if (!c) throw ApiError::not_found("No such conversation.");
  auto rows = tx.query("SELECT user_id, role, last_read_message_id, unread_count FROM conversation_participants"
                       " WHERE conversation_id = $1 ORDER BY user_id",
                       {id});
  std::vector<std::string> ids;
  for (const auto& r : rows) ids.push_back(r.text("user_id"));
  if (std::find(ids.begin(), ids.end(), who.user_id) == ids.end()) throw ApiError::not_found("No such conversation.");
  auto people = identity_.summaries(tx, ids);
  json participants = json::array();
  int64_t unread = 0;
  for (const auto& r : rows) {
    json p = identity::summary_of(people, r.text("user_id"));
    p.erase("rating");
    participants.push_back({{"user", p}, {"role", r.text("role")}, {"last_read_message_id", r.nullable_text("last_read_message_id")}});
    if (r.text("user_id") == who.user_id) unread = r.integer("unread_count");
  }
  json last = nullptr;
  if (auto last_id = c->opt_text("last_message_id"))
    if (auto m = tx.query_one(std::string("SELECT ") + kMessageColumns + " FROM messages WHERE id = $1", {*last_id}))
      last = message_json(tx, *m);
  return {{"id", id},
          {"subject_type", c->text("subject_type")},
          {"subject_id", c->text("subject_id")},
          {"participants", participants},
          {"last_message", last},
          {"message_count", c->integer("message_count")},
          {"unread_count", unread},
          {"created_at", c->text("created_at")},
          {"last_message_at", c->nullable_text("last_message_at")},
          {"channel", "private-conversation." + id},
          {"presence_channel", "presence-conversation." + id}};
}

Page Chat::inbox(db::Tx& tx, const identity::Principal& who, const std::optional<std::string>& cursor, int limit) {
  db::Params params = {who.user_id};
  std::string sql = "SELECT conversation_id, last_activity_at FROM conversation_participants WHERE user_id = $1";
  if (cursor) {
    auto position = json::parse(*cursor, nullptr, false);
    if (!position.is_array() || position.size() != 2 || !position[0].is_string() || !position[1].is_string())
      throw ApiError::validation({{"cursor", "is not a cursor this list gave out"}});
    params.emplace_back(position[0].get<std::string>());
    params.emplace_back(position[1].get<std::string>());
    sql += " AND (last_activity_at < $2 OR (last_activity_at = $2 AND conversation_id < $3))";
  }
  params.emplace_back(int64_t(limit + 1));
  auto rows = tx.query(sql + " ORDER BY last_activity_at DESC, conversation_id DESC LIMIT $" + std::to_string(params.size()),
                       params);
  Page page{json::array(), nullptr};
  for (size_t i = 0; i < rows.size() && int(i) < limit; ++i)
    page.items.push_back(conversation(tx, rows[i].text("conversation_id"), who));
  if (int(rows.size()) > limit) {
    const auto& last = rows[size_t(limit) - 1];
    page.next_cursor = api::encode_cursor(json::array({last.text("last_activity_at"), last.text("conversation_id")}));
  }
  return page;
}

int64_t Chat::unread_total(db::Tx& tx, const std::string& user_id) {
  auto row = tx.query_one("SELECT COALESCE(SUM(unread_count), 0) AS n FROM conversation_participants WHERE user_id = $1",
                          {user_id});
  return row ? row->integer("n") : 0;
}

json Chat::insert_message(db::Tx& tx, const std::string& conversation_id, const std::vector<Participant>& participants,
                          const std::optional<std::string>& sender, const std::string& kind, const std::string& body,
                          const std::vector<std::string>& attachment_ids, const std::string& client_id,
                          const std::string& request_id) {
  std::string id = new_id("msg"), t = now_text();
  tx.exec("INSERT INTO messages (id, conversation_id, sender_id, kind, body, attachments, client_id, created_at)"
          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
          {id, conversation_id, sender ? db::Value(*sender) : db::Value(), kind, db::null_if_empty(body),
           json(attachment_ids).dump(), db::null_if_empty(client_id), t});
  for (const auto& a : attachment_ids) {
    // Only the sender's own, unused uploads to this conversation.
    if (tx.exec("UPDATE chat_attachments SET message_id = $1 WHERE id = $2 AND conversation_id = $3 AND owner_id = $4"
                " AND message_id IS NULL",
                {id, a, conversation_id, sender.value_or("")}) != 1)
      throw ApiError::validation({{"attachment_ids", "must be your own uploads to this conversation, each used once"}});
  }
  tx.exec("UPDATE conversations SET message_count = message_count + 1,"
          " last_message_id = CASE WHEN last_message_id IS NULL OR last_message_id < $1 THEN $1 ELSE last_message_id END,"
          " last_message_at = CASE WHEN last_message_id IS NULL OR last_message_id < $1 THEN $2 ELSE last_message_at END"
          " WHERE id = $3",
          {id, t, conversation_id});
  // Everyone's inbox moves; the others have one more unread.
  tx.exec("UPDATE conversation_participants SET last_activity_at = $1,"
          " unread_count = unread_count + CASE WHEN user_id = $2 THEN 0 ELSE 1 END WHERE conversation_id = $3",
          {t, sender.value_or(""), conversation_id});
  if (sender)  // a sender has read everything up to their own message
    tx.exec("UPDATE conversation_participants SET last_read_message_id = $1, last_read_at = $2, unread_count = 0"
            " WHERE conversation_id = $3 AND user_id = $4 AND (last_read_message_id IS NULL OR last_read_message_id < $1)",
            {id, t, conversation_id, *sender});
  auto row = tx.query_one(std::string("SELECT ") + kMessageColumns + " FROM messages WHERE id = $1", {id});
  json message = message_json(tx, *row);
  outbox_.emit(tx, "message.created",
               {{"message_id", id},
                {"conversation_id", conversation_id},
                {"sender_id", sender ? json(*sender) : json(nullptr)},
                {"recipients", recipients(participants, sender)},
                {"kind", kind},
                {"preview", utf8::prefix(body, 140)}},
               conversation_id, request_id);
  // Realtime at once after the commit, not through the queue: a chat line
  // should not wait for a worker. (At most once, like every realtime
  // delivery; clients catch up from the history after reconnecting.)
  // The recipients' own channels hear of it too, so an app open on another
  // screen can update its inbox and badge (no push goes to someone online).
  tx.after_commit([this, conversation_id, message, others = recipients(participants, sender)] {
    publish_to_conversation(conversation_id, "message.created", message);
    for (const auto& user : others) realtime_.publish("private-user." + user, "message.created", message);
  });
  return message;
}

std::pair<json, bool> Chat::post(const identity::Principal& who, const std::string& conversation_id,
                                 const NewMessage& m, const std::string& request_id) {
  try {
    return post_once(who, conversation_id, m, request_id);
  } catch (const db::ConstraintError& e) {
    // The same client_id racing itself: the first insert won.
    if (e.kind() != db::ConstraintError::Kind::unique || m.client_id.empty()) throw;
    auto error = std::current_exception();
    return db_.read([&](db::Tx& tx) {
      auto row = by_client_id(tx, conversation_id, who.user_id, m.client_id);
      if (!row) std::rethrow_exception(error);
      return std::make_pair(message_json(tx, *row), false);
    });
  }
}

std::pair<json, bool> Chat::post_once(const identity::Principal& who, const std::string& conversation_id,
                                      const NewMessage& m, const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto people = require_participant(tx, conversation_id, who);
    // Locked before looking for the client_id, so that a retry waits for
    // the first attempt to commit and then finds it.
    lock_conversation(tx, conversation_id);
    if (!m.client_id.empty())
      if (auto earlier = by_client_id(tx, conversation_id, who.user_id, m.client_id))
        return std::make_pair(message_json(tx, *earlier), false);
    return std::make_pair(insert_message(tx, conversation_id, people, who.user_id, "text", m.body, m.attachment_ids,
                                         m.client_id, request_id),
                          true);
  });
}

void Chat::post_system(db::Tx& tx, const std::string& subject_type, const std::string& subject_id,
                       const std::vector<Participant>& participants, const std::string& text,
                       const std::string& request_id) {
  bool created = false;
  std::string id = find_or_create(tx, subject_type, subject_id, participants, "", created);
  lock_conversation(tx, id);
  insert_message(tx, id, participants, std::nullopt, "system", text, {}, "", request_id);
}

void Chat::lock_conversation(db::Tx& tx, const std::string& conversation_id) {
  tx.query_one(std::string("SELECT id FROM conversations WHERE id = $1") + std::string(tx.for_update()), {conversation_id});
}

std::optional<db::Row> Chat::by_client_id(db::Tx& tx, const std::string& conversation_id, const std::string& sender,
                                          const std::string& client_id) {
  return tx.query_one(std::string("SELECT ") + kMessageColumns +
                          " FROM messages WHERE conversation_id = $1 AND sender_id = $2 AND client_id = $3",
                      {conversation_id, sender, client_id});
}

void Chat::publish_to_conversation(const std::string& conversation_id, const std::string& event, const json& data) {
  realtime_.publish("private-conversation." + conversation_id, event, data);
  realtime_.publish("presence-conversation." + conversation_id, event, data);
}

Page Chat::messages(db::Tx& tx, const std::string& conversation_id, const identity::Principal& who,
                    const std::optional<std::string>& before, const std::optional<std::string>& after, int limit) {
  require_participant(tx, conversation_id, who);
  db::Params params = {conversation_id};
  std::string sql = std::string("SELECT ") + kMessageColumns + " FROM messages WHERE conversation_id = $1";
  if (after) {
    params.emplace_back(*after);
    sql += " AND id > $2 ORDER BY id ASC";
  } else {
    if (before) {
      params.emplace_back(*before);
      sql += " AND id < $2";
    }
    sql += " ORDER BY id DESC";
  }
  params.emplace_back(int64_t(limit + 1));
  auto rows = tx.query(sql + " LIMIT $" + std::to_string(params.size()), params);
  auto [items, next] = db::page_of(rows, limit, [&](const db::Row& r) { return message_json(tx, r); });
  return {items, next};
}

json Chat::mark_read(const identity::Principal& who, const std::string& conversation_id,
                     const std::optional<std::string>& message_id) {
  return db_.write([&](db::Tx& tx) {
    // Locked first: a message committing meanwhile is then either counted
    // below (committed before) or adds its own unread after (committed later).
    auto me = tx.query_one(std::string("SELECT last_read_message_id FROM conversation_participants"
                                       " WHERE conversation_id = $1 AND user_id = $2") +
                               std::string(tx.for_update()),
                           {conversation_id, who.user_id});
    if (!me) throw ApiError::not_found("No such conversation.");
    std::string target;
    if (message_id) {
      if (!tx.query_one("SELECT 1 AS yes FROM messages WHERE id = $1 AND conversation_id = $2", {*message_id, conversation_id}))
        throw ApiError::validation({{"message_id", "is not a message of this conversation"}});
      target = *message_id;
    } else {
      auto last = tx.query_one("SELECT last_message_id FROM conversations WHERE id = $1", {conversation_id});
      target = last ? last->opt_text("last_message_id").value_or("") : "";
    }
    auto current = me->opt_text("last_read_message_id").value_or("");
    if (!target.empty() && target > current) {
      auto t = now_text();
      tx.exec("UPDATE conversation_participants SET last_read_message_id = $1, last_read_at = $2,"
              " unread_count = (SELECT COUNT(*) FROM messages WHERE conversation_id = $3 AND id > $1"
              " AND (sender_id IS NULL OR sender_id <> $4))"
              " WHERE conversation_id = $3 AND user_id = $4",
              {target, t, conversation_id, who.user_id});
      json receipt = {{"conversation_id", conversation_id}, {"user_id", who.user_id}, {"last_read_message_id", target},
                      {"read_at", t}};
      tx.after_commit([this, conversation_id, receipt] {
        publish_to_conversation(conversation_id, "conversation.read", receipt);
      });
      current = target;
    }
    auto mine = tx.query_one("SELECT unread_count FROM conversation_participants WHERE conversation_id = $1 AND user_id = $2",
                             {conversation_id, who.user_id});
    return json{{"conversation_id", conversation_id},
                {"last_read_message_id", current.empty() ? json(nullptr) : json(current)},
                {"unread_count", mine->integer("unread_count")},
                {"unread_total", unread_total(tx, who.user_id)}};
  });
}

json Chat::upload(const identity::Principal& who, const std::string& conversation_id, const std::string& filename,
                  const std::string& declared_type, const std::string& bytes) {
  if (bytes.empty()) throw ApiError::validation({{"file", "is empty"}});
  if (bytes.size() > options_.max_attachment)
    throw ApiError(413, "payload_too_large", "Attachments are limited to " + std::to_string(options_.max_attachment) + " bytes.",
                   {{"max_bytes", options_.max_attachment}});
  std::string actual = storage::sniff_type(bytes);
  if (actual.empty())
    throw ApiError(415, "unsupported_file_type", "Attachments may be JPEG, PNG, GIF, WebP images or PDF documents.",
                   {{"allowed", {"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"}}});
  if (actual != declared_type)
    throw ApiError(415, "file_type_mismatch",
                   "The file is " + actual + " but was sent as " + (declared_type.empty() ? "nothing" : declared_type) + ".",
                   {{"detected", actual}});
  std::string id = new_id("att");
  std::string key = "chat/" + conversation_id + "/" + id;
  // Checked before storing, and again in the transaction that records it.
  db_.read([&](db::Tx& tx) { require_participant(tx, conversation_id, who); });
  files_.put(key, bytes);
  try {
    return db_.write([&](db::Tx& tx) {
      require_participant(tx, conversation_id, who);
      auto t = now_text();
      tx.exec("INSERT INTO chat_attachments (id, conversation_id, owner_id, filename, content_type, size, storage_key,"
              " sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
              {id, conversation_id, who.user_id, filename, actual, int64_t(bytes.size()), key, crypto::sha256_hex(bytes), t});
      return json{{"id", id},
                  {"filename", filename},
                  {"content_type", actual},
                  {"size", bytes.size()},
                  {"url", "/api/v1/attachments/" + id},
                  {"created_at", t}};
    });
  } catch (...) {
    files_.remove(key);
    throw;
  }
}

std::tuple<std::string, std::string, std::string> Chat::download(const identity::Principal& who, const std::string& id) {
  auto row = db_.read([&](db::Tx& tx) {
    auto r = tx.query_one("SELECT conversation_id, filename, content_type, storage_key FROM chat_attachments WHERE id = $1",
                          {id});
    if (!r) throw ApiError::not_found("No such attachment.");
    require_participant(tx, r->text("conversation_id"), who);
    return *r;
  });
  auto bytes = files_.get(row.text("storage_key"));
  if (!bytes) {
    log::error("chat: attachment missing from storage", {{"attachment_id", id}, {"key", row.text("storage_key")}});
    throw ApiError::not_found("No such attachment.");
  }
  return {row.text("content_type"), row.text("filename"), std::move(*bytes)};
}

std::optional<std::string> Chat::sender_of(db::Tx& tx, const std::string& message_id) {
  auto r = tx.query_one("SELECT sender_id FROM messages WHERE id = $1", {message_id});
  if (!r) return std::nullopt;
  return r->opt_text("sender_id");
}

}  // namespace souq::chat
