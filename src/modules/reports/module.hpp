// The reports module: any signed-in user reports a user, request, offer or
// message; admins list the reports and decide them (dismiss, warn or suspend
// the owner of what was reported, through identity), each decision audited in
// its transaction. The modules that own reportable things register how to
// find their owner.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "core/blocking.hpp"
#include "db/database.hpp"
#include "http/router.hpp"
#include "jobs/queue.hpp"
#include "modules/identity/module.hpp"
#include "modules/identity/policy.hpp"

namespace souq::reports {


class Reports {
 public:
  // The owner of target `id`, or nullopt when there is none.
  using OwnerOf = std::function<std::optional<std::string>(db::Tx& tx, const std::string& id)>;

  Reports(db::Database& db, jobs::Outbox& outbox, identity::Identity& identity);
  void add_target(const std::string& type, OwnerOf owner_of) { targets_[type] = std::move(owner_of); }
  bool knows(const std::string& type) const { return targets_.count(type) > 0; }

  // 422 `unknown_target_type`, 404 for a target that does not exist, 422
  // `cannot_report_self`, 409 `already_reported` (an open report by the same
  // reporter on the same target).
  json create(const identity::Principal& who, const std::string& type, const std::string& target_id,
              const std::string& reason, const std::string& details, const std::string& request_id);
  std::pair<json, json> list(db::Tx& tx, const std::string& status, const std::optional<std::string>& target_type,
                             const std::optional<std::string>& before, int limit);
  json get(db::Tx& tx, const std::string& id);
  // decision: dismiss | warn | suspend. 409 `report_decided` when it was decided already.
  json decide(const identity::Principal& admin, const std::string& id, const std::string& decision,
              const std::string& note, const std::string& request_id);

 private:
  db::Database& db_;
  jobs::Outbox& outbox_;
  identity::Identity& identity_;
  std::map<std::string, OwnerOf> targets_;
};

void register_policies(identity::Policy& policy);
// POST /api/v1/reports; GET /api/v1/admin/reports[/{id}]; POST /api/v1/admin/reports/{id}/{dismiss,warn,suspend}.
void register_routes(api::Router& router, Reports& reports, identity::Identity& identity, const identity::Policy& policy,
                     BlockingPool& blocking);

}  // namespace souq::reports
