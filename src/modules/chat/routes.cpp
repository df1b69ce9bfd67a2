#include "core/id.hpp"
#include "core/validation.hpp"
#include "http/paging.hpp"
#include "http/response.hpp"
#include "modules/chat/module.hpp"

namespace souq::chat {

void register_routes(api::Router& router, Chat& chat, identity::Identity& identity, BlockingPool& blocking) {
  router.post("/api/v1/conversations", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"subject_type", "subject_id"});
    auto type = v.text("subject_type", 1, 40);
    auto id = v.text("subject_id", 1, 64);
    v.done();
    auto [conversation, created] = co_await blocking.run([&] { return chat.open(who, *type, *id, req.request_id); });
    co_return api::ok(req, conversation, created ? http::status::created : http::status::ok);
  });

  router.get("/api/v1/conversations", [&](api::Request& req) -> awaitable<api::Response> {
    int limit = api::page_limit(req, 20, 100);
    auto cursor = api::page_cursor_json(req);
    std::optional<std::string> position;
    if (cursor) position = cursor->dump();
    auto read = [&chat, position, limit](db::Tx& tx, const identity::Principal& who) {
      auto page = chat.inbox(tx, who, position, limit);
      return std::make_pair(page, chat.unread_total(tx, who.user_id));
    };
    auto [page, total] = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, page.items, http::status::ok, {{"next_cursor", page.next_cursor}, {"unread_total", total}});
  });

  router.get("/api/v1/conversations/unread", [&](api::Request& req) -> awaitable<api::Response> {
    auto read = [&chat](db::Tx& tx, const identity::Principal& who) { return chat.unread_total(tx, who.user_id); };
    auto total = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, {{"unread_total", total}});
  });

  router.get("/api/v1/conversations/{id:id}", [&](api::Request& req) -> awaitable<api::Response> {
    std::string id = req.param("id");
    auto read = [&chat, id](db::Tx& tx, const identity::Principal& who) { return chat.conversation(tx, id, who); };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.get("/api/v1/conversations/{id:id}/messages", [&](api::Request& req) -> awaitable<api::Response> {
    std::string id = req.param("id");
    int limit = api::page_limit(req, 50, 200);
    auto before = api::page_cursor(req);
    auto after = req.query_param("after");
    if (after && !is_id(*after, "msg")) throw ApiError::validation({{"after", "must be a message id"}});
    if (after && before) throw ApiError::validation({{"after", "cannot be combined with cursor"}});
    auto read = [&chat, id, before, after, limit](db::Tx& tx, const identity::Principal& who) {
      return chat.messages(tx, id, who, before, after, limit);
    };
    auto page = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, page.items, http::status::ok, {{"next_cursor", page.next_cursor}});
  });

  router.post("/api/v1/conversations/{id:id}/messages", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"body", "attachment_ids", "client_id"});
    auto body = v.multiline("body", 1, chat.options().max_text, false);
    auto attachments = v.strings("attachment_ids", size_t(chat.options().max_attachments_per_message), 1, 64, false);
    auto client_id = v.text("client_id", 1, 100, false);
    v.done();
    if (!body && (!attachments || attachments->empty()))
      throw ApiError::validation({{"body", "is required unless the message carries attachments"}});
    Chat::NewMessage m{body.value_or(""), attachments.value_or(std::vector<std::string>{}), client_id.value_or("")};
    std::string id = req.param("id");
    auto [message, created] = co_await blocking.run([&] { return chat.post(who, id, m, req.request_id); });
    co_return api::ok(req, message, created ? http::status::created : http::status::ok);
  });

  router.post("/api/v1/conversations/{id:id}/read", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    std::optional<std::string> message_id;
    if (!req.body.is_null()) {
      Validator v(req.json_object());
      v.only({"message_id"});
      message_id = v.text("message_id", 1, 64, false);
      v.done();
    }
    std::string id = req.param("id");
    co_return api::ok(req, co_await blocking.run([&] { return chat.mark_read(who, id, message_id); }));
  });

  // The file is the body, its type the Content-Type, its name ?filename=.
  router.post("/api/v1/conversations/{id:id}/attachments", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    std::string filename = req.query_param("filename").value_or("file");
    if (filename.empty() || filename.size() > 200 || filename.find_first_of("/\\\r\n\"") != std::string::npos)
      throw ApiError::validation({{"filename", "must be 1 to 200 characters without / \\ \" or line breaks"}});
    std::string type(req.header(http::field::content_type));
    if (auto semi = type.find(';'); semi != std::string::npos) type.resize(semi);
    std::string id = req.param("id");
    auto made = co_await blocking.run([&] { return chat.upload(who, id, filename, type, req.message.body()); });
    co_return api::ok(req, made, http::status::created);
  }, {.raw_body = true, .max_body = chat.options().max_attachment});

  router.get("/api/v1/attachments/{id:id}", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    std::string id = req.param("id");
    auto [type, filename, bytes] = co_await blocking.run([&] { return chat.download(who, id); });
    auto res = api::text_response(req, http::status::ok, type, std::move(bytes));
    // RFC 6266: an ASCII name for old clients, the exact one percent-encoded.
    std::string ascii, encoded;
    for (unsigned char c : filename) {
      ascii += c < 0x80 ? char(c) : '_';
      if (std::isalnum(c) || c == '.' || c == '-' || c == '_') encoded += char(c);
      else {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", c);
        encoded += hex;
      }
    }
    res.set(http::field::content_disposition, "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded);
    res.set(http::field::cache_control, "private, max-age=3600");
    co_return res;
  });
}

}  // namespace souq::chat
