// The audit module: an append-only record of what operators did, to whom,
// why, and in which request. Other modules write entries in the same
// transaction as the action they record.
#pragma once
#include <optional>
#include <string>

#include "core/json.hpp"
#include "db/database.hpp"

namespace souq::audit {

struct Entry {
  std::string actor_id;  // empty for the system (CLI, jobs)
  std::string action;    // "user.suspend", "seller_profile.approve"
  std::string target_type;
  std::string target_id;
  std::string reason;
  json details = json::object();
  std::string request_id;
};

// Appends the entry in the caller's transaction; returns its id.
std::string record(db::Tx& tx, const Entry& entry);

struct Filter {
  std::optional<std::string> action, actor_id, target_type, target_id;
  std::optional<std::string> before;  // cursor: entries with a smaller id
  int limit = 50;
};

// Newest first. Returns the entries and the cursor for the next page (or null).
std::pair<json, json> list(db::Tx& tx, const Filter& filter);

}  // namespace souq::audit
