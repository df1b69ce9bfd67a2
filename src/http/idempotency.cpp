#include "http/idempotency.hpp"

#include "core/crypto.hpp"
#include "core/time.hpp"

namespace souq::api {
namespace {

enum class Claim { run, replay };

struct Stored {
  int status = 0;
  std::string body;
};

}  // namespace

awaitable<Response> Idempotency::run(Request& req, const std::string& scope, BlockingPool& blocking,
                                     std::function<awaitable<Response>()> fn) {
  std::string key(req.header("Idempotency-Key"));
  if (key.empty())
    throw ApiError::bad_request("idempotency_key_required",
                                "This request moves money or creates an order: send an Idempotency-Key header "
                                "(a unique value, such as a UUID, per operation).");
  if (key.size() > 255) throw ApiError::bad_request("invalid_idempotency_key", "An Idempotency-Key is at most 255 characters.");
  std::string body = req.body.is_null() ? std::string(req.message.body()) : req.body.dump();
  std::string fingerprint =
      crypto::sha256_hex(std::string(req.message.method_string()) + " " + req.path + "\n" + body);

  Stored stored;
  // Our claim's token: the lock deadline we wrote (made unique per claim).
  // The answer is saved, or the claim dropped, only while it is still ours.
  std::string token;
  Claim claim = co_await blocking.run([&] {
    return db_.write([&](db::Tx& tx) {
      std::string now = now_text();
      std::string until = format_time(souq::now() + lock_) + "#" + crypto::random_token(6);
      token = until;
      if (claims_.fetch_add(1) % 1000 == 999)
        tx.exec("DELETE FROM idempotency_keys WHERE created_at < $1 AND status = 'done'",
                {time_ago(std::chrono::duration_cast<std::chrono::seconds>(keep_) * 2)});
      if (tx.exec("INSERT INTO idempotency_keys (scope, key, fingerprint, status, locked_until, created_at) "
                  "VALUES ($1, $2, $3, 'in_flight', $4, $5) ON CONFLICT (scope, key) DO NOTHING",
                  {scope, key, fingerprint, until, now}) == 1)
        return Claim::run;
      auto row = tx.query_one("SELECT fingerprint, status, response_status, response_body, locked_until, created_at "
                              "FROM idempotency_keys WHERE scope = $1 AND key = $2" +
                                  std::string(tx.for_update()),
                              {scope, key});
      if (!row) throw ApiError::conflict("idempotency_key_in_flight", "A request with this Idempotency-Key is running.");
      // A key older than the replay window starts afresh.
      if (row->text("created_at") < time_ago(std::chrono::duration_cast<std::chrono::seconds>(keep_))) {
        tx.exec("UPDATE idempotency_keys SET fingerprint = $3, status = 'in_flight', response_status = NULL, "
                "response_body = NULL, locked_until = $4, created_at = $5 WHERE scope = $1 AND key = $2",
                {scope, key, fingerprint, until, now});
        return Claim::run;
      }
      if (row->text("fingerprint") != fingerprint)
        throw ApiError::unprocessable("idempotency_key_reused",
                                      "This Idempotency-Key was used with a different request; use a new key.");
      if (row->text("status") == "done") {
        stored.status = int(row->integer("response_status"));
        stored.body = row->text("response_body");
        return Claim::replay;
      }
      // In flight. A holder that died (its lock ran out) is taken over.
      if (row->text("locked_until") > now)
        throw ApiError::conflict("idempotency_key_in_flight",
                                 "A request with this Idempotency-Key is still running; retry when it has finished.");
      tx.exec("UPDATE idempotency_keys SET locked_until = $3 WHERE scope = $1 AND key = $2", {scope, key, until});
      return Claim::run;
    });
  });

  if (claim == Claim::replay) {
    // The first answer's data, told as this request's: meta names this
    // request (as X-Request-Id does); Original-Request names the first.
    json body = json::parse(stored.body, nullptr, false);
    std::string original;
    if (body.is_object() && body.contains("meta") && body["meta"].is_object()) {
      original = body["meta"].value("request_id", "");
      body["meta"]["request_id"] = req.request_id;
      body["meta"]["timestamp"] = now_text();
    }
    Response res{http::status(stored.status), req.message.version()};
    res.set(http::field::content_type, "application/json; charset=utf-8");
    res.set("Idempotent-Replayed", "true");
    if (!original.empty()) res.set("Original-Request", original);
    res.body() = body.is_discarded() ? stored.body : body.dump();
    res.prepare_payload();
    co_return res;
  }

  auto release = [&] {
    return blocking.run([&] {
      db_.write([&](db::Tx& tx) {
        tx.exec("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status = 'in_flight' AND locked_until = $3",
                {scope, key, token});
      });
    });
  };
  std::optional<Response> res;
  std::exception_ptr failure;
  try {
    Response answer = co_await fn();
    res.emplace(std::move(answer));
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure || res->result_int() >= 300) {
    co_await release();
    if (failure) std::rethrow_exception(failure);
    co_return std::move(*res);
  }
  int status = int(res->result_int());
  std::string saved = res->body();
  co_await blocking.run([&] {
    db_.write([&](db::Tx& tx) {
      tx.exec("UPDATE idempotency_keys SET status = 'done', response_status = $3, response_body = $4, locked_until = NULL "
              "WHERE scope = $1 AND key = $2 AND locked_until = $5",
              {scope, key, status, saved, token});
    });
  });
  co_return std::move(*res);
}

}  // namespace souq::api
