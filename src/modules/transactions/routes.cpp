// /api/v1/processes and /api/v1/transactions: thin routes over the engine.
#include "core/validation.hpp"
#include "http/paging.hpp"
#include "http/response.hpp"
#include "modules/transactions/module.hpp"

namespace souq::transactions {

using api::Request;
using api::Response;

namespace {
// A process as clients see it, with every version this node knows.
json describe(const Processes& processes, const Process& p) {
  json out = p.to_json();
  out["versions"] = json::array();
  for (const Process* v : processes.versions(p.name)) out["versions"].push_back(v->version);
  return out;
}
}  // namespace

void register_routes(api::Router& router, Transactions& transactions, identity::Identity& identity,
                     BlockingPool& blocking, api::Idempotency* idempotency) {
  // Public: clients show the steps of a flow before anyone signs in.
  router.get("/api/v1/processes", [&](Request& req) -> awaitable<Response> {
    json out = json::array();
    for (const Process* p : transactions.processes().all_latest()) out.push_back(describe(transactions.processes(), *p));
    co_return api::ok(req, out);
  });

  router.get("/api/v1/processes/{name}", [&](Request& req) -> awaitable<Response> {
    const std::string& name = req.param("name");
    const Process* p = transactions.processes().latest(name);
    if (auto version = req.query_int("version", 1, 1'000'000)) p = transactions.processes().find(name, int(*version));
    if (!p) throw ApiError::not_found("No such process (or version).");
    co_return api::ok(req, describe(transactions.processes(), *p));
  });

  router.get("/api/v1/transactions", [&](Request& req) -> awaitable<Response> {
    ListFilter filter;
    filter.limit = api::page_limit(req);
    filter.before = api::page_cursor(req);
    filter.kind = req.query_param("kind");
    filter.state = req.query_param("state");
    filter.role = req.query_param("role");
    if (filter.role && *filter.role != "buyer" && *filter.role != "seller")
      throw ApiError::validation({{"role", "must be buyer or seller"}});
    auto read = [&transactions, &filter](db::Tx& tx, const identity::Principal& who) {
      return transactions.list(tx, who, filter);
    };
    auto [items, next] = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  router.get("/api/v1/transactions/{id:id}", [&](Request& req) -> awaitable<Response> {
    const std::string& id = req.param("id");
    auto read = [&transactions, &id](db::Tx& tx, const identity::Principal& who) { return transactions.view(tx, id, who); };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.post("/api/v1/transactions/{id:id}/transitions/{name}", [&, idempotency](Request& req) -> awaitable<Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    std::string reason = lone_text(req.body, "reason", 3, 1000, false);
    auto step = [&]() -> awaitable<Response> {
      json out = co_await blocking.run([&] {
        return transactions.take(who, req.param("id"), req.param("name"), reason, req.request_id);
      });
      co_return api::ok(req, std::move(out));
    };
    // A step may move money (release, refund): an Idempotency-Key, when
    // sent, makes a retried step answer as the first did.
    if (idempotency && !req.header("Idempotency-Key").empty())
      co_return co_await idempotency->run(req, who.user_id, blocking, step);
    co_return co_await step();
  });
}

}  // namespace souq::transactions
