// The transactions module: agreements between a buyer and a seller (a deal,
// an order, a won auction…) moving through a process (process.hpp).
//
// A transition is taken in one database transaction: the guarded state
// change, the actions the process names, the history entry, the outbox events
// and the timers of the state entered. Modules register actions by name;
// timed transitions are jobs that fire once and do nothing if the
// transaction has moved on.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/blocking.hpp"
#include "core/json.hpp"
#include "db/database.hpp"
#include "http/idempotency.hpp"
#include "http/router.hpp"
#include "jobs/queue.hpp"
#include "modules/identity/module.hpp"
#include "modules/transactions/process.hpp"

namespace souq::transactions {

// A transaction as stored.
struct Record {
  std::string id, kind, process;
  int process_version = 0;
  std::string state;
  int64_t version = 0;  // bumped by every transition; guards them
  std::string buyer_id, seller_id;
  std::string subject_type, subject_id;
  int64_t amount = 0;
  std::string currency, title;
  json entered = json::object();  // state → when the transaction last entered it
  std::string created_at, updated_at, state_entered_at;
  std::optional<std::string> ended_at;
};

// Who takes a transition: buyer, seller, operator (an admin) or system.
struct ActorRef {
  std::string type;
  std::string user_id;  // empty for the system
};

struct ActionContext {
  db::Tx& tx;
  const Record& txn;          // after the state change
  const std::string& transition;  // "created" for on_create actions
  const std::string& from;    // empty for on_create
  const ActorRef& actor;
  const std::string& request_id;
  const json& params;         // the action's parameters in the process
  jobs::Outbox& outbox;
  const std::string& reason;  // the actor's reason for the step, if any
};

struct ActionSpec {
  std::string description;
  ParamCheck check;  // may be empty: no parameters
  std::function<void(ActionContext&)> run;
};

// Actions by name. Modules register theirs before processes load.
class Actions {
 public:
  void add(const std::string& name, ActionSpec spec);
  const ActionSpec* find(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, ActionSpec, std::less<>> actions_;
};

// Every process version this node knows. New transactions start on the
// highest version of their process.
class Processes {
 public:
  // Parses and adds a definition; throws ProcessError on a fault or when
  // the same name and version is already held with another definition.
  const Process& add(const json& definition, const std::string& origin, const Actions& actions);
  const Process* latest(std::string_view name) const;
  const Process* find(std::string_view name, int version) const;
  std::vector<const Process*> all_latest() const;
  std::vector<const Process*> versions(std::string_view name) const;

  // The built-in definitions (compiled in), then every *.json in `dir` (if
  // not empty), then the versions stored in the database that are not held
  // here (older versions running transactions still use); stores the new
  // ones. Throws ProcessError naming the file and fault.
  void load(db::Database& db, const Actions& actions, const std::string& dir);
  // The files only (built-in and `dir`), without a database.
  void load_files(const Actions& actions, const std::string& dir);

 private:
  void sync(db::Database& db, const Actions& actions);
  std::map<std::string, std::map<int, std::unique_ptr<Process>>, std::less<>> by_name_;
};

// The compiled-in definitions: {file name, JSON text}.
const std::vector<std::pair<const char*, const char*>>& builtin_processes();

struct CreateSpec {
  std::string kind;       // "deal": events are "deal.created", "deal.<transition>"; ids "deal_…"
  std::string process;    // the process name; its latest version
  std::string buyer_id, seller_id;
  std::string subject_type, subject_id;
  int64_t amount = 0;
  std::string currency, title;
  ActorRef actor;
  std::string request_id;
};

struct ListFilter {
  std::optional<std::string> kind, state, role;  // role: buyer | seller (of the caller)
  bool everyone = false;                         // every party's (admins), not the caller's
  std::optional<std::string> buyer_id, seller_id;
  std::optional<std::string> before;             // cursor
  int limit = 50;
};

class Transactions {
 public:
  Transactions(db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, identity::Identity& identity,
               Processes& processes, Actions& actions);

  // The timer job kind; serve and worker both call it before workers start.
  void register_jobs();

  // Starts a transaction on the latest version of spec.process in the
  // caller's database transaction: runs the process's on_create actions,
  // records the history entry, emits "<kind>.created", schedules timers.
  Record create(db::Tx& tx, const CreateSpec& spec);

  // Takes transition `name` as the caller, in a transaction of its own:
  // 404 when the caller may not see it, 404 `unknown_transition`, 403 when
  // the caller is not an actor the transition allows, 409
  // `invalid_transition` from the wrong state (or when another transition won
  // the race), 422 when a reason is required and missing.
  json take(const identity::Principal& who, const std::string& id, const std::string& name, const std::string& reason,
            const std::string& request_id);
  // Takes a transition as `actor` in the caller's transaction (other modules:
  // a payment confirmed, an order shipped). Throws 409 as take() does.
  Record apply(db::Tx& tx, const Record& txn, const std::string& name, const ActorRef& actor, const std::string& reason,
               const std::string& request_id);

  std::optional<Record> load(db::Tx& tx, const std::string& id);
  // The transaction for `who`, with its history and the transitions `who`
  // may take now; 404 when `who` is not a party or an admin.
  json view(db::Tx& tx, const std::string& id, const identity::Principal& who);
  json view(db::Tx& tx, const Record& txn, const identity::Principal& who);
  std::pair<json, json> list(db::Tx& tx, const identity::Principal& who, const ListFilter& filter);
  // A summary for lists: no history.
  json summary(db::Tx& tx, const Record& txn, const identity::Principal* who);
  // The same, with the parties' profiles already read (identity summaries()).
  json summary(const Record& txn, const identity::Principal* who, const std::map<std::string, json>& parties);

  // The roles `who` has on `txn`: buyer, seller, operator (admins).
  std::vector<std::string> roles_of(const Record& txn, const identity::Principal& who) const;

  // Per-day counts for admin statistics, between the timestamps from and to:
  // created, completed (ended in a state named "completed") and cancelled
  // (any other terminal state) of `kind`, by day ("YYYY-MM-DD").
  json daily_stats(db::Tx& tx, const std::string& kind, const std::string& from, const std::string& to);

  const Processes& processes() const { return processes_; }
  db::Database& db() { return db_; }

 private:
  void record_history(db::Tx& tx, const Record& txn, const std::string& transition, const std::string& from,
                      const ActorRef& actor, const std::string& reason, const std::string& request_id);
  void run_actions(db::Tx& tx, const Record& txn, const std::vector<ActionCall>& calls, const std::string& transition,
                   const std::string& from, const ActorRef& actor, const std::string& reason,
                   const std::string& request_id);
  void schedule_timers(db::Tx& tx, const Record& txn, const std::string& request_id);
  json event_payload(const Record& txn) const;
  void fire_timer(const jobs::Job& job);

  db::Database& db_;
  jobs::Queue& queue_;
  jobs::Outbox& outbox_;
  identity::Identity& identity_;
  Processes& processes_;
  Actions& actions_;
};

// The built-in actions of this module: notify (an outbox event asking the
// notifications module to tell parties).
void register_actions(Actions& actions);

// GET /api/v1/processes[/{name}], GET /api/v1/transactions[/{id}],
// POST /api/v1/transactions/{id}/transitions/{name}.
void register_routes(api::Router& router, Transactions& transactions, identity::Identity& identity,
                     BlockingPool& blocking, api::Idempotency* idempotency = nullptr);

}  // namespace souq::transactions
