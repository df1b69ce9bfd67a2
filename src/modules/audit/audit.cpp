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
  return db::page_of(tx.query(sql, params), f.limit, [](const db::Row& r) {
    return json{{"id", r.text("id")},
                       {"actor_id", r.nullable_text("actor_id")},
                       {"action", r.text("action")},
                       {"target_type", r.text("target_type")},
                       {"target_id", r.text("target_id")},
                       {"reason", r.nullable_text("reason")},
                       {"details", r.json("details")},
                       {"request_id", r.nullable_text("request_id")},
                       {"created_at", r.text("created_at")}};
  });
}

}  // namespace souq::audit
