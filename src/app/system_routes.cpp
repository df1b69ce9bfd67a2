// /healthz, /readyz, /metrics and /api/v1/status.
#include "app/app.hpp"
#include "http/response.hpp"

namespace souq {
std::string_view openapi_yaml();  // generated from docs/openapi.yaml
}

namespace souq::app {

using api::Request;
using api::Response;

void register_system_routes(api::Router& router, Services& s) {
  router.get("/healthz", [](Request& req) -> awaitable<Response> { co_return api::ok(req, {{"status", "ok"}}); });

  router.get("/readyz", [&s](Request& req) -> awaitable<Response> {
    json checks = {{"database", "ok"}, {"migrations", "ok"}};
    bool ready = true;
    if (s.draining()) {
      checks["server"] = "draining";
      ready = false;
    }
    try {
      auto status = co_await s.blocking.run([&] { return s.migrator.status(); });
      if (status.pending > 0) {
        checks["migrations"] = std::to_string(status.pending) + " pending";
        ready = false;
      }
    } catch (const std::exception& e) {
      checks["database"] = std::string("unreachable: ") + e.what();
      checks["migrations"] = "unknown";
      ready = false;
    }
    if (!ready) throw ApiError(503, "not_ready", "The service is not ready.", {{"checks", checks}});
    co_return api::ok(req, {{"status", "ready"}, {"checks", checks}});
  });

  router.get("/metrics", [&s](Request& req) -> awaitable<Response> {
    std::string out;
    s.metrics.render(out);
    auto pool = s.db.pool_stats();
    out += "# HELP souq_db_pool_connections Database connections by state.\n";
    out += "# TYPE souq_db_pool_connections gauge\n";
    out += "souq_db_pool_connections{state=\"in_use\"} " + std::to_string(pool.in_use) + "\n";
    out += "souq_db_pool_connections{state=\"idle\"} " + std::to_string(pool.idle) + "\n";
    out += "# HELP souq_db_pool_size Connections the pool may open.\n# TYPE souq_db_pool_size gauge\n";
    out += "souq_db_pool_size " + std::to_string(pool.size) + "\n";
    try {
      auto stats = co_await s.blocking.run([&] { return s.queue.stats(); });
      out += "# HELP souq_jobs Jobs in the queue by status.\n# TYPE souq_jobs gauge\n";
      out += "souq_jobs{status=\"queued\"} " + std::to_string(stats.queued) + "\n";
      out += "souq_jobs{status=\"running\"} " + std::to_string(stats.running) + "\n";
      out += "souq_jobs{status=\"dead\"} " + std::to_string(stats.dead) + "\n";
      out += "# HELP souq_jobs_oldest_queued_age_seconds How long the oldest due job has waited.\n";
      out += "# TYPE souq_jobs_oldest_queued_age_seconds gauge\n";
      out += "souq_jobs_oldest_queued_age_seconds " + std::to_string(stats.oldest_queued_age_seconds) + "\n";
    } catch (const std::exception&) {
      // The database is down: report what we have; /readyz says why.
    }
    co_return api::text_response(req, http::status::ok, "text/plain; version=0.0.4; charset=utf-8", std::move(out));
  });

  router.get("/api/v1/openapi.yaml", [](Request& req) -> awaitable<Response> {
    auto res = api::text_response(req, http::status::ok, "application/yaml; charset=utf-8", std::string(openapi_yaml()));
    res.set(http::field::cache_control, "public, max-age=300");
    co_return res;
  });

  router.get("/api/v1/status", [&s](Request& req) -> awaitable<Response> {
    auto applied = co_await s.async_db.read(
        [](db::Tx& tx) { return tx.query_one("SELECT COUNT(*) AS n FROM schema_migrations")->integer("n"); });
    co_return api::ok(req, {{"version", SOUQ_VERSION},
                            {"database", db::engine_name(s.db.engine())},
                            {"migrations", applied},
                            {"started_at", s.started_at}});
  });
}

}  // namespace souq::app
