// Development conveniences: these routes and job kinds are registered only
// with --dev, so a production server has none of them.
#include "app/app.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "http/response.hpp"

namespace souq::app {

using api::Request;
using api::Response;

void register_dev_jobs(jobs::Queue& queue, db::Database& db) {
  db.write([](db::Tx& tx) {
    tx.script("CREATE TABLE IF NOT EXISTS dev_records (job_id TEXT PRIMARY KEY, payload TEXT NOT NULL,"
              " ran_at TEXT NOT NULL)");
  });
  queue.handle("dev.record", [&db](const jobs::Job& job) {
    db.write([&](db::Tx& tx) {
      tx.exec("INSERT INTO dev_records (job_id, payload, ran_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
              {job.id, job.payload.dump(), now_text()});
    });
  });
  queue.handle("dev.fail", [](const jobs::Job& job) {
    throw std::runtime_error("dev.fail always fails (attempt " + std::to_string(job.attempts) + ")");
  });
}

void register_dev_routes(api::Router& router, Services& s) {
  log::warn("development mode: dev routes are enabled; never run with --dev in production");

  router.post("/api/v1/dev/echo", [](Request& req) -> awaitable<Response> { co_return api::ok(req, req.body); });

  router.get("/api/v1/dev/sleep", [](Request& req) -> awaitable<Response> {
    int64_t ms = 0;
    if (auto text = req.query_param("ms")) {
      try {
        ms = std::stoll(*text);
      } catch (const std::exception&) {
        throw ApiError::validation({{"ms", "must be an integer"}});
      }
    }
    if (ms < 0 || ms > 30000) throw ApiError::validation({{"ms", "must be between 0 and 30000"}});
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    co_await timer.async_wait(use_awaitable);
    co_return api::ok(req, {{"slept_ms", ms}});
  });

  router.get("/api/v1/dev/fail", [](Request&) -> awaitable<Response> {
    throw std::runtime_error("deliberate failure from /api/v1/dev/fail");
    co_return Response{};
  });

  router.get("/api/v1/dev/items/{id:int}", [](Request& req) -> awaitable<Response> {
    co_return api::ok(req, {{"id", req.int_param("id")}});
  });

  router.post("/api/v1/dev/jobs", [&s](Request& req) -> awaitable<Response> {
    const auto& body = req.json_object();
    json fields = json::object();
    std::string kind = body.value("kind", "");
    if (!s.queue.knows(kind)) fields["kind"] = "must be a known job kind (dev.record, dev.fail)";
    if (body.contains("payload") && !body["payload"].is_object()) fields["payload"] = "must be an object";
    auto delay = body.value("delay_ms", json(0));
    if (!delay.is_number_integer() || delay.get<int64_t>() < 0) fields["delay_ms"] = "must be a non-negative integer";
    auto max_attempts = body.value("max_attempts", json(0));
    if (!max_attempts.is_number_integer() || max_attempts.get<int64_t>() < 0 || max_attempts.get<int64_t>() > 100)
      fields["max_attempts"] = "must be an integer from 1 to 100 (0 or absent: the default)";
    if (!fields.empty()) throw ApiError::validation(fields);
    jobs::EnqueueOptions options;
    options.delay = std::chrono::milliseconds(delay.get<int64_t>());
    options.max_attempts = max_attempts.get<int>();
    options.request_id = req.request_id;
    json payload = body.value("payload", json::object());
    auto id = co_await s.async_db.write([&](db::Tx& tx) { return *s.queue.enqueue(tx, kind, payload, options); });
    co_return api::ok(req, {{"job_id", id}}, http::status::accepted);
  });

  // What the dev SMS provider recorded, newest first: how tests read OTPs.
  router.get("/api/v1/dev/sms", [&s](Request& req) -> awaitable<Response> {
    std::string to = req.query_param("to").value_or("");
    co_return api::ok(req, co_await s.blocking.run([&] { return s.sms.recent(to, 20); }));
  });

  // The outbox, for tests that check a step wrote its domain events.
  router.get("/api/v1/dev/events", [&s](Request& req) -> awaitable<Response> {
    std::string subject = req.query_param("subject").value_or("");
    std::string type = req.query_param("type").value_or("");
    // A named closure: g++ 12 destroys the captures of a temporary one in a
    // co_await operand twice.
    auto read = [&subject, &type](db::Tx& tx) { return jobs::Outbox::recent(tx, subject, type, 500); };
    co_return api::ok(req, co_await s.async_db.read(read));
  });

  router.get("/api/v1/dev/records", [&s](Request& req) -> awaitable<Response> {
    auto records = co_await s.async_db.read([](db::Tx& tx) {
      json out = json::array();
      for (const auto& r : tx.query("SELECT job_id, payload, ran_at FROM dev_records ORDER BY ran_at, job_id"))
        out.push_back({{"job_id", r.text("job_id")}, {"payload", r.json("payload")}, {"ran_at", r.text("ran_at")}});
      return out;
    });
    co_return api::ok(req, records);
  });
}

}  // namespace souq::app
