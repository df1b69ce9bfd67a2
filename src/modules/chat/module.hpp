// The chat module: conversations between the parties of a subject (one per
// offer, per transaction, per request enquiry; modules register the subjects
// they own), text messages with attachments, system messages posted by
// processes, read markers and exact unread counts. Every message reaches the
// conversation's channels as `message.created` the moment it commits, and the
// outbox as `message.created` for notifications (a push to whoever has no
// open socket).
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/blocking.hpp"
#include "db/database.hpp"
#include "http/router.hpp"
#include "jobs/queue.hpp"
#include "modules/identity/module.hpp"
#include "modules/realtime/module.hpp"
#include "modules/transactions/module.hpp"
#include "storage/storage.hpp"

namespace souq::chat {

struct Options {
  size_t max_text = 4000;                  // characters in one message
  size_t max_attachment = 5 * 1024 * 1024;  // bytes in one file
  int max_attachments_per_message = 10;
};

struct Participant {
  std::string user_id;
  std::string role;  // buyer, seller, …
};

// Who talks about a subject: the participants when `who` may open a
// conversation about it (`who` among them), nullopt when there is no such
// subject or it is not theirs (404 either way).
using SubjectResolver =
    std::function<std::optional<std::vector<Participant>>(db::Tx& tx, const identity::Principal& who, const std::string& id)>;

struct Page {
  json items;
  json next_cursor;
};

class Chat {
 public:
  Chat(db::Database& db, jobs::Outbox& outbox, identity::Identity& identity, realtime::Realtime& realtime,
       storage::Storage& files, Options options = {});
  void add_subject(const std::string& type, SubjectResolver resolver);
  // Conversation channels for participants only.
  void register_policies();
  // post_message, for processes: a system message in the transaction's conversation.
  static void register_actions(transactions::Actions& actions);
  void use_for_actions() { instance_ = this; }

  // The conversation about the subject between `who` and the other parties:
  // the existing one (false) or a new one (true).
  std::pair<json, bool> open(const identity::Principal& who, const std::string& subject_type, const std::string& subject_id,
                             const std::string& request_id);
  json conversation(db::Tx& tx, const std::string& id, const identity::Principal& who);
  Page inbox(db::Tx& tx, const identity::Principal& who, const std::optional<std::string>& cursor, int limit);
  int64_t unread_total(db::Tx& tx, const std::string& user_id);

  struct NewMessage {
    std::string body;
    std::vector<std::string> attachment_ids;
    std::string client_id;
  };
  // 201 with the message, or 200 with the one this client_id already made.
  std::pair<json, bool> post(const identity::Principal& who, const std::string& conversation_id, const NewMessage& m,
                             const std::string& request_id);
  // Newest first (before a cursor), or oldest first after `after`.
  Page messages(db::Tx& tx, const std::string& conversation_id, const identity::Principal& who,
                const std::optional<std::string>& before, const std::optional<std::string>& after, int limit);
  // Moves the caller's read marker forward to `message_id` (default: the
  // latest); never backwards. Returns {last_read_message_id, unread_count, unread_total}.
  json mark_read(const identity::Principal& who, const std::string& conversation_id,
                 const std::optional<std::string>& message_id);

  json upload(const identity::Principal& who, const std::string& conversation_id, const std::string& filename,
              const std::string& declared_type, const std::string& bytes);
  // {content_type, filename, bytes} of an attachment the caller may see.
  std::tuple<std::string, std::string, std::string> download(const identity::Principal& who, const std::string& id);

  // A system message in the conversation of this subject between these
  // participants (made if missing), in the caller's transaction.
  void post_system(db::Tx& tx, const std::string& subject_type, const std::string& subject_id,
                   const std::vector<Participant>& participants, const std::string& text, const std::string& request_id);
  // The sender of a message (for reports), if it exists.
  std::optional<std::string> sender_of(db::Tx& tx, const std::string& message_id);
  const Options& options() const { return options_; }

 private:
  std::pair<json, bool> post_once(const identity::Principal& who, const std::string& conversation_id, const NewMessage& m,
                                  const std::string& request_id);
  std::optional<std::vector<Participant>> participants_of(db::Tx& tx, const std::string& conversation_id);
  // The conversation's participants, or 404 unless `who` is one of them.
  std::vector<Participant> require_participant(db::Tx& tx, const std::string& conversation_id,
                                               const identity::Principal& who);
  std::string find_or_create(db::Tx& tx, const std::string& subject_type, const std::string& subject_id,
                             const std::vector<Participant>& participants, const std::string& created_by, bool& created);
  // Locks the conversation row: its messages then commit in the order of
  // their ids (PostgreSQL; SQLite's writer is single anyway), which read
  // markers and unread counts rely on. Across nodes ids follow each node's
  // clock; pointers only move forward, so a lagging clock cannot move them back.
  static void lock_conversation(db::Tx& tx, const std::string& conversation_id);
  static std::optional<db::Row> by_client_id(db::Tx& tx, const std::string& conversation_id, const std::string& sender,
                                             const std::string& client_id);
  // On both channels of the conversation (private- and presence-).
  void publish_to_conversation(const std::string& conversation_id, const std::string& event, const json& data);
  // Call with the conversation locked (lock_conversation).
  json insert_message(db::Tx& tx, const std::string& conversation_id, const std::vector<Participant>& participants,
                      const std::optional<std::string>& sender, const std::string& kind, const std::string& body,
                      const std::vector<std::string>& attachment_ids, const std::string& client_id,
                      const std::string& request_id);
  json message_json(db::Tx& tx, const db::Row& r);
  json attachments_json(db::Tx& tx, const std::vector<std::string>& ids);

  db::Database& db_;
  jobs::Outbox& outbox_;
  identity::Identity& identity_;
  realtime::Realtime& realtime_;
  storage::Storage& files_;
  Options options_;
  std::map<std::string, SubjectResolver> subjects_;
  static Chat* instance_;
};

// /api/v1/conversations…, /api/v1/attachments/{id}.
void register_routes(api::Router& router, Chat& chat, identity::Identity& identity, BlockingPool& blocking);

}  // namespace souq::chat
