#include <algorithm>

#include "core/id.hpp"
#include "core/time.hpp"
#include "core/validation.hpp"
#include "http/paging.hpp"
#include "http/response.hpp"
#include "modules/audit/module.hpp"
#include "modules/reports/module.hpp"

namespace souq::reports {
namespace {

constexpr const char* kColumns =
    "id, reporter_id, target_type, target_id, target_owner_id, reason, details, status, decision, decision_note,"
    " decided_by, decided_at, created_at";

json report_json(const db::Row& r) {
  return {{"id", r.text("id")},
          {"reporter_id", r.text("reporter_id")},
          {"target", {{"type", r.text("target_type")}, {"id", r.text("target_id")}, {"owner_id", r.text("target_owner_id")}}},
          {"reason", r.text("reason")},
          {"details", r.nullable_text("details")},
          {"status", r.text("status")},
          {"decision", r.nullable_text("decision")},
          {"decision_note", r.nullable_text("decision_note")},
          {"decided_by", r.nullable_text("decided_by")},
          {"decided_at", r.nullable_text("decided_at")},
          {"created_at", r.text("created_at")}};
}

}  // namespace

Reports::Reports(db::Database& db, jobs::Outbox& outbox, identity::Identity& identity)
    : db_(db), outbox_(outbox), identity_(identity) {}

json Reports::create(const identity::Principal& who, const std::string& type, const std::string& target_id,
                     const std::string& reason, const std::string& details, const std::string& request_id) {
  auto target = targets_.find(type);
  if (target == targets_.end()) {
    std::string known;
    for (const auto& [name, _] : targets_) known += (known.empty() ? "" : ", ") + name;
    throw ApiError::unprocessable("unknown_target_type", "Reports name one of: " + known + ".");
  }
  try {
    return db_.write([&](db::Tx& tx) {
      auto owner = target->second(tx, target_id);
      if (!owner) throw ApiError::not_found("No such " + type + ".");
      if (*owner == who.user_id) throw ApiError::unprocessable("cannot_report_self", "You cannot report yourself or what is yours.");
      // An open report by the same reporter on the same target meets the
      // unique key (below).
      std::string id = new_id("rpt");
      tx.exec("INSERT INTO reports (id, reporter_id, target_type, target_id, target_owner_id, reason, details, status,"
              " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8)",
              {id, who.user_id, type, target_id, *owner, reason, db::null_if_empty(details),
               now_text()});
      outbox_.emit(tx, "report.created",
                   {{"report_id", id}, {"target_type", type}, {"target_id", target_id}, {"reason", reason}}, id,
                   request_id);
      return get(tx, id);
    });
  } catch (const db::ConstraintError& e) {
    if (e.kind() == db::ConstraintError::Kind::unique)  // reports_one_open
      throw ApiError::conflict("already_reported", "You have already reported this; an admin will look at it.");
    throw;
  }
}

json Reports::get(db::Tx& tx, const std::string& id) {
  auto row = tx.query_one(std::string("SELECT ") + kColumns + " FROM reports WHERE id = $1", {id});
  if (!row) throw ApiError::not_found("No such report.");
  return report_json(*row);
}

std::pair<json, json> Reports::list(db::Tx& tx, const std::string& status, const std::optional<std::string>& target_type,
                                    const std::optional<std::string>& before, int limit) {
  db::Params params = {status};
  std::string sql = std::string("SELECT ") + kColumns + " FROM reports WHERE status = $1";
  if (target_type) {
    params.emplace_back(*target_type);
    sql += " AND target_type = $" + std::to_string(params.size());
  }
  if (before) {
    params.emplace_back(*before);
    sql += " AND id < $" + std::to_string(params.size());
  }
  params.emplace_back(int64_t(limit + 1));
  auto rows = tx.query(sql + " ORDER BY id DESC LIMIT $" + std::to_string(params.size()), params);
  return db::page_of(rows, limit, report_json);
}

json Reports::decide(const identity::Principal& admin, const std::string& id, const std::string& decision,
                     const std::string& note, const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto row = tx.query_one("SELECT status, target_owner_id, target_type, target_id FROM reports WHERE id = $1", {id});
    if (!row) throw ApiError::not_found("No such report.");
    auto stamp = now_text();
    if (tx.exec("UPDATE reports SET status = $2, decision = $3, decision_note = $4, decided_by = $5, decided_at = $6"
                " WHERE id = $1 AND status = 'open'",
                {id, decision == "dismiss" ? "dismissed" : "actioned", decision,
                 db::null_if_empty(note), admin.user_id, stamp}) == 0)
      throw ApiError::conflict("report_decided", "This report was already decided.", {{"status", row->text("status")}});
    std::string owner = row->text("target_owner_id");
    std::string why = note.empty() ? "report " + id : note;
    // The action on the owner and its audit entry share this transaction.
    if (decision == "warn") identity_.warn(tx, admin, owner, why, request_id);
    if (decision == "suspend") identity_.suspend(tx, admin, owner, why, request_id);
    audit::record(tx, {admin.user_id, "report." + decision, "report", id, note,
                       {{"target_type", row->text("target_type")}, {"target_id", row->text("target_id")},
                        {"owner_id", owner}},
                       request_id});
    outbox_.emit(tx, "report.decided", {{"report_id", id}, {"decision", decision}, {"owner_id", owner}}, id, request_id);
    return get(tx, id);
  });
}

void register_policies(identity::Policy& policy) {
  policy.allow("reports.review", [](const identity::Principal& p, const json&) { return p.has_role("admin"); });
}

void register_routes(api::Router& router, Reports& reports, identity::Identity& identity, const identity::Policy& policy,
                     BlockingPool& blocking) {
  router.post("/api/v1/reports", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"target_type", "target_id", "reason", "details"});
    auto type = v.text("target_type", 1, 40);
    auto target = v.text("target_id", 1, 40);
    if (target && !is_id(*target)) v.fail("target_id", "must be an id");
    auto reason = v.one_of("reason", {"spam", "fraud", "abuse", "inappropriate", "prohibited_item", "other"});
    auto details = v.text("details", 0, 2000, false);
    v.done();
    if (reason == "other" && details.value_or("").empty())
      throw ApiError::validation({{"details", "is required when the reason is other"}});
    co_return api::ok(req, co_await blocking.run([&] {
      return reports.create(who, *type, *target, *reason, details.value_or(""), req.request_id);
    }), http::status::created);
  });

  router.get("/api/v1/admin/reports", [&](api::Request& req) -> awaitable<api::Response> {
    std::string status = req.query_param("status").value_or("open");
    if (status != "open" && status != "dismissed" && status != "actioned")
      throw ApiError::validation({{"status", "must be open, dismissed or actioned"}});
    auto type = req.query_param("target_type");
    int limit = api::page_limit(req);
    auto before = api::page_cursor(req);
    auto read = [&](db::Tx& tx, const identity::Principal& who) {
      policy.check(who, "reports.review");
      return reports.list(tx, status, type, before, limit);
    };
    auto [items, next] = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  router.get("/api/v1/admin/reports/{id:id}", [&](api::Request& req) -> awaitable<api::Response> {
    const std::string& id = req.param("id");
    auto read = [&policy, &reports, &id](db::Tx& tx, const identity::Principal& who) {
      policy.check(who, "reports.review");
      return reports.get(tx, id);
    };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  for (const char* decision : {"dismiss", "warn", "suspend"}) {
    router.post(std::string("/api/v1/admin/reports/{id:id}/") + decision,
                [&, decision = std::string(decision)](api::Request& req) -> awaitable<api::Response> {
                  auto who = co_await identity::require_user(req, identity, blocking);
                  policy.check(who, "reports.review");
                  // Acting on someone needs a reason they can be told.
                  std::string note = lone_text(req.body, "note", 3, 1000, decision != "dismiss");
                  co_return api::ok(req, co_await blocking.run([&] {
                    return reports.decide(who, req.param("id"), decision, note, req.request_id);
                  }));
                });
  }
}

}  // namespace souq::reports
