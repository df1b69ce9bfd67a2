#include "core/id.hpp"
#include "core/time.hpp"
#include "modules/audit/module.hpp"

namespace souq::audit {

std::string record(db::Tx& tx, const Entry& e) {
  std::string id = new_id("aud");
  auto optional = [](const std::string& s) { return s.empty() ? std::optional<std::string>() : std::optional(s); };
  tx.exec("INSERT INTO audit_log (id, actor_id, action, target_type, target_id, reason, details, request_id,"
          " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
          {id, optional(e.actor_id), e.action, e.target_type, e.target_id, optional(e.reason), e.details.dump(),
           optional(e.request_id), now_text()});
  return id;
}

std::pair<json, json> list(db::Tx& tx, const Filter& f) {
  std::string sql = "SELECT id, actor_id, action, target_type, target_id, reason, details, request_id, created_at"
                    " FROM audit_log WHERE 1 = 1";
  db::Params params;
  auto add = [&](const char* column, const std::optional<std::string>& value, const char* op = "=") {
    if (!value) return;
    params.emplace_back(*value);
    sql += std::string(" AND ") + column + " " + op + " $" + std::to_string(params.size());
  };
  add("action", f.action);
  add("actor_id", f.actor_id);
  add("target_type", f.target_type);
  add("target_id", f.target_id);
  add("id", f.before, "<");
  params.emplace_back(f.limit + 1);
  sql += " ORDER BY id DESC LIMIT $" + std::to_string(params.size());
  json entries = json::array();
  auto rows = tx.query(sql, params);
  for (size_t i = 0; i < rows.size() && int(i) < f.limit; ++i) {
    const auto& r = rows[i];
    auto text_or_null = [&](const char* c) { return r.opt_text(c) ? json(*r.opt_text(c)) : json(nullptr); };
    entries.push_back({{"id", r.text("id")},
                       {"actor_id", text_or_null("actor_id")},
                       {"action", r.text("action")},
                       {"target_type", r.text("target_type")},
                       {"target_id", r.text("target_id")},
                       {"reason", text_or_null("reason")},
                       {"details", r.json("details")},
                       {"request_id", text_or_null("request_id")},
                       {"created_at", r.text("created_at")}});
  }
  json next = int(rows.size()) > f.limit ? json(entries.back()["id"]) : json(nullptr);
  return {entries, next};
}

}  // namespace souq::audit
