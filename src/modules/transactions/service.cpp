#include <algorithm>

#include "core/id.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "modules/audit/module.hpp"
#include "modules/transactions/module.hpp"

namespace souq::transactions {
namespace {

constexpr const char* kColumns =
    "id, kind, process, process_version, state, version, buyer_id, seller_id, subject_type, subject_id, amount,"
    " currency, title, entered, created_at, updated_at, state_entered_at, ended_at";

Record record_from(const db::Row& r) {
  Record t;
  t.id = r.text("id");
  t.kind = r.text("kind");
  t.process = r.text("process");
  t.process_version = int(r.integer("process_version"));
  t.state = r.text("state");
  t.version = r.integer("version");
  t.buyer_id = r.text("buyer_id");
  t.seller_id = r.text("seller_id");
  t.subject_type = r.opt_text("subject_type").value_or("");
  t.subject_id = r.opt_text("subject_id").value_or("");
  t.amount = r.integer("amount");
  t.currency = r.text("currency");
  t.title = r.text("title");
  t.entered = r.json("entered");
  t.created_at = r.text("created_at");
  t.updated_at = r.text("updated_at");
  t.state_entered_at = r.text("state_entered_at");
  t.ended_at = r.opt_text("ended_at");
  return t;
}

TimePoint plus(const std::string& when, std::chrono::seconds d) {
  return *parse_time(when) + std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

// The transition `name` of the transaction's own process version, or 404.
const Transition& transition_of(const Processes& processes, const Record& txn, const std::string& name) {
  const Process* p = processes.find(txn.process, txn.process_version);
  if (!p)
    throw std::runtime_error("process " + txn.process + " version " + std::to_string(txn.process_version) +
                             " is not loaded");
  const Transition* t = p->transition(name);
  if (!t) throw ApiError(404, "unknown_transition", "The process \"" + p->name + "\" has no transition \"" + name + "\".");
  return *t;
}

// When a timed transition from the current state falls due: its delay after
// the transaction was created or entered the state it counts from; nullopt
// when that state was never entered.
std::optional<TimePoint> timer_due(const Record& txn, const Transition& t) {
  const std::string& state = t.timer->since_state;
  if (state.empty()) return plus(txn.created_at, t.timer->after);
  if (!txn.entered.contains(state)) return std::nullopt;
  return plus(txn.entered[state].get<std::string>(), t.timer->after);
}

ApiError invalid_transition(const Record& txn, const Transition& t) {
  return ApiError::conflict("invalid_transition",
                            "\"" + t.name + "\" cannot be taken from \"" + txn.state + "\".",
                            {{"state", txn.state}, {"transition", t.name}, {"from", t.from}});
}

}  // namespace

Transactions::Transactions(db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, identity::Identity& identity,
                           Processes& processes, Actions& actions)
    : db_(db), queue_(queue), outbox_(outbox), identity_(identity), processes_(processes), actions_(actions) {}

void Transactions::register_jobs() {
  queue_.handle("transactions.timer", [this](const jobs::Job& job) { fire_timer(job); });
}

std::optional<Record> Transactions::load(db::Tx& tx, const std::string& id) {
  auto row = tx.query_one(std::string("SELECT ") + kColumns + " FROM transactions WHERE id = $1", {id});
  if (!row) return std::nullopt;
  return record_from(*row);
}

json Transactions::event_payload(const Record& txn) const {
  return {{"transaction_id", txn.id},     {"kind", txn.kind},
          {"process", txn.process},       {"process_version", txn.process_version},
          {"state", txn.state},           {"buyer_id", txn.buyer_id},
          {"seller_id", txn.seller_id},   {"subject_type", txn.subject_type},
          {"subject_id", txn.subject_id}, {"amount", txn.amount},
          {"currency", txn.currency},     {"title", txn.title}};
}

Record Transactions::create(db::Tx& tx, const CreateSpec& spec) {
  const Process* p = processes_.latest(spec.process);
  if (!p) throw ApiError::unprocessable("unknown_process", "There is no process named \"" + spec.process + "\".");
  auto t = now_text();
  Record r;
  r.id = new_id(spec.kind);
  r.kind = spec.kind;
  r.process = p->name;
  r.process_version = p->version;
  r.state = p->initial;
  r.version = 1;
  r.buyer_id = spec.buyer_id;
  r.seller_id = spec.seller_id;
  r.subject_type = spec.subject_type;
  r.subject_id = spec.subject_id;
  r.amount = spec.amount;
  r.currency = spec.currency;
  r.title = spec.title;
  r.entered = {{p->initial, t}};
  r.created_at = r.updated_at = r.state_entered_at = t;
  tx.exec("INSERT INTO transactions (id, kind, process, process_version, state, version, buyer_id, seller_id,"
          " subject_type, subject_id, amount, currency, title, entered, created_at, updated_at,"
          " state_entered_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $14)",
          {r.id, r.kind, r.process, r.process_version, r.state, r.buyer_id, r.seller_id, db::null_if_empty(r.subject_type),
           db::null_if_empty(r.subject_id), r.amount, r.currency, r.title, r.entered.dump(), t});
  record_history(tx, r, "created", "", spec.actor, "", spec.request_id);
  // The transaction's own event first, then what its actions cause.
  outbox_.emit(tx, r.kind + ".created", event_payload(r), r.id, spec.request_id);
  run_actions(tx, r, p->on_create, "created", "", spec.actor, "", spec.request_id);
  schedule_timers(tx, r, spec.request_id);
  return r;
}

Record Transactions::apply(db::Tx& tx, const Record& txn, const std::string& name, const ActorRef& actor,
                           const std::string& reason, const std::string& request_id) {
  const Transition* t = &transition_of(processes_, txn, name);
  if (!t->allows(actor.type))
    throw ApiError(403, "forbidden", "\"" + name + "\" is not yours to take.", {{"actors", t->actors}});
  if (!t->leaves(txn.state)) throw invalid_transition(txn, *t);
  if (t->requires_reason && reason.empty())
    throw ApiError::validation({{"reason", "is required for \"" + name + "\""}});

  Record next = txn;
  auto stamp = now_text();
  next.state = t->to;
  next.version = txn.version + 1;
  next.entered[t->to] = stamp;
  next.updated_at = next.state_entered_at = stamp;
  if (processes_.find(txn.process, txn.process_version)->state(t->to)->terminal) next.ended_at = stamp;
  // Guarded by the version read: a transition that raced this one wins alone.
  if (tx.exec("UPDATE transactions SET state = $3, version = $4, entered = $5, updated_at = $6,"
              " state_entered_at = $6, ended_at = $7 WHERE id = $1 AND version = $2",
              {txn.id, txn.version, next.state, next.version, next.entered.dump(), stamp,
               next.ended_at ? db::Value(*next.ended_at) : db::Value()}) == 0)
    throw ApiError::conflict("invalid_transition", "The transaction changed while \"" + name + "\" was being taken.",
                             {{"transition", name}});
  record_history(tx, next, name, txn.state, actor, reason, request_id);
  json event = event_payload(next);
  event["transition"] = name;
  event["from"] = txn.state;
  event["to"] = next.state;
  event["actor_type"] = actor.type;
  event["actor_id"] = actor.user_id.empty() ? json(nullptr) : json(actor.user_id);
  event["reason"] = reason.empty() ? json(nullptr) : json(reason);
  outbox_.emit(tx, next.kind + "." + name, event, next.id, request_id);
  run_actions(tx, next, t->actions, name, txn.state, actor, reason, request_id);
  if (actor.type == "operator")
    audit::record(tx, {actor.user_id, next.kind + "." + name, "transaction", next.id, reason,
                       {{"from", txn.state}, {"to", next.state}}, request_id});
  schedule_timers(tx, next, request_id);
  return next;
}

std::vector<std::string> Transactions::roles_of(const Record& txn, const identity::Principal& who) const {
  std::vector<std::string> roles;
  if (who.user_id == txn.buyer_id) roles.push_back("buyer");
  if (who.user_id == txn.seller_id) roles.push_back("seller");
  if (who.has_role("admin")) roles.push_back("operator");
  return roles;
}

json Transactions::take(const identity::Principal& who, const std::string& id, const std::string& name,
                        const std::string& reason, const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto txn = load(tx, id);
    auto roles = txn ? roles_of(*txn, who) : std::vector<std::string>{};
    if (roles.empty()) throw ApiError::not_found("No such transaction.");
    const Transition* t = &transition_of(processes_, *txn, name);
    // The caller acts as the first of their roles the transition allows
    // (a party before an operator, so the history says who really did it).
    auto role = std::find_if(roles.begin(), roles.end(), [&](const std::string& r) { return t->allows(r); });
    if (role == roles.end())
      throw ApiError(403, "forbidden",
                     t->allows("system") && t->actors.size() == 1
                         ? "\"" + name + "\" is taken by the system, not by a person."
                         : "\"" + name + "\" is not yours to take.",
                     {{"actors", t->actors}});
    auto next = apply(tx, *txn, name, {*role, who.user_id}, reason, request_id);
    return view(tx, next, who);
  });
}

void Transactions::record_history(db::Tx& tx, const Record& txn, const std::string& transition,
                                  const std::string& from, const ActorRef& actor, const std::string& reason,
                                  const std::string& request_id) {
  tx.exec("INSERT INTO transaction_history (id, transaction_id, transition, from_state, to_state, actor_type,"
          " actor_id, reason, request_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
          {new_id("txh"), txn.id, transition, db::null_if_empty(from), txn.state, actor.type,
           db::null_if_empty(actor.user_id), db::null_if_empty(reason), db::null_if_empty(request_id), txn.updated_at});
}

void Transactions::run_actions(db::Tx& tx, const Record& txn, const std::vector<ActionCall>& calls,
                               const std::string& transition, const std::string& from, const ActorRef& actor,
                               const std::string& reason, const std::string& request_id) {
  for (const auto& call : calls) {
    const ActionSpec* spec = actions_.find(call.name);
    if (!spec) throw std::runtime_error("action " + call.name + " is not registered");
    ActionContext ctx{tx, txn, transition, from, actor, request_id, call.params, outbox_, reason};
    spec->run(ctx);
  }
}

void Transactions::schedule_timers(db::Tx& tx, const Record& txn, const std::string& request_id) {
  const Process* p = processes_.find(txn.process, txn.process_version);
  for (const auto& t : p->transitions) {
    if (!t.timer || !t.leaves(txn.state)) continue;
    auto due = timer_due(txn, t);
    if (!due) continue;
    jobs::EnqueueOptions options;
    options.run_at = *due;
    options.unique_key = "txn-timer:" + txn.id + ":" + t.name + ":" + std::to_string(txn.version);
    options.request_id = request_id;
    queue_.enqueue(tx, "transactions.timer",
                   {{"transaction_id", txn.id}, {"transition", t.name}, {"version", txn.version}}, options);
  }
}

void Transactions::fire_timer(const jobs::Job& job) {
  std::string id = job.payload.at("transaction_id");
  std::string name = job.payload.at("transition");
  int64_t version = job.payload.at("version");
  db_.write([&](db::Tx& tx) {
    auto txn = load(tx, id);
    // Moved on since the timer was set: nothing to do.
    if (!txn || txn->version != version) return;
    try {
      apply(tx, *txn, name, {"system", ""}, "", job.request_id);
      log::info("timed transition taken", {{"transaction_id", id}, {"transition", name}, {"request_id", job.request_id}});
    } catch (const ApiError& e) {
      // Only "moved on" (raised before anything is written) is nothing to do;
      // an action that failed (money not held, say) rolls the step back and
      // the job retries, then waits dead for an operator.
      if (e.code() != "invalid_transition") throw;
    }
  });
}

json Transactions::summary(db::Tx& tx, const Record& txn, const identity::Principal* who) {
  return summary(txn, who, identity_.summaries(tx, {txn.buyer_id, txn.seller_id}));
}

json Transactions::summary(const Record& txn, const identity::Principal* who, const std::map<std::string, json>& parties) {
  const Process* p = processes_.find(txn.process, txn.process_version);
  const State* state = p ? p->state(txn.state) : nullptr;
  json out = {{"id", txn.id},
              {"kind", txn.kind},
              {"process", {{"name", txn.process}, {"version", txn.process_version}}},
              {"state", txn.state},
              {"state_title", state ? state->title : txn.state},
              {"terminal", state && state->terminal},
              {"buyer", identity::summary_of(parties, txn.buyer_id)},
              {"seller", identity::summary_of(parties, txn.seller_id)},
              {"subject", txn.subject_type.empty() ? json(nullptr)
                                                   : json{{"type", txn.subject_type}, {"id", txn.subject_id}}},
              {"amount", txn.amount},
              {"currency", txn.currency},
              {"title", txn.title},
              {"created_at", txn.created_at},
              {"updated_at", txn.updated_at},
              {"state_entered_at", txn.state_entered_at},
              {"ended_at", txn.ended_at ? json(*txn.ended_at) : json(nullptr)}};
  if (who) out["my_roles"] = roles_of(txn, *who);
  return out;
}

json Transactions::view(db::Tx& tx, const std::string& id, const identity::Principal& who) {
  auto txn = load(tx, id);
  if (!txn || roles_of(*txn, who).empty()) throw ApiError::not_found("No such transaction.");
  return view(tx, *txn, who);
}

json Transactions::view(db::Tx& tx, const Record& txn, const identity::Principal& who) {
  json out = summary(tx, txn, &who);
  const Process* p = processes_.find(txn.process, txn.process_version);
  auto roles = roles_of(txn, who);
  json next = json::array(), timers = json::array();
  for (const auto& t : p->transitions) {
    if (!t.leaves(txn.state)) continue;
    if (std::any_of(roles.begin(), roles.end(), [&](const std::string& r) { return t.allows(r); }))
      next.push_back({{"name", t.name}, {"title", t.title}, {"to", t.to}, {"requires_reason", t.requires_reason}});
    if (auto due = t.timer ? timer_due(txn, t) : std::nullopt)
      timers.push_back({{"transition", t.name}, {"due_at", format_time(*due)}});
  }
  out["next_transitions"] = std::move(next);
  out["timers"] = std::move(timers);
  json history = json::array();
  for (const auto& h : tx.query("SELECT transition, from_state, to_state, actor_type, actor_id, reason, request_id,"
                                " created_at FROM transaction_history WHERE transaction_id = $1 ORDER BY id",
                                {txn.id}))
    history.push_back({{"transition", h.text("transition")},
                       {"from", h.nullable_text("from_state")},
                       {"to", h.text("to_state")},
                       {"actor", {{"type", h.text("actor_type")}, {"id", h.nullable_text("actor_id")}}},
                       {"reason", h.nullable_text("reason")},
                       {"request_id", h.nullable_text("request_id")},
                       {"at", h.text("created_at")}});
  out["history"] = std::move(history);
  return out;
}

std::pair<json, json> Transactions::list(db::Tx& tx, const identity::Principal& who, const ListFilter& f) {
  std::string where;
  db::Params params;
  if (f.everyone) where = "1 = 1";
  else {
    params.emplace_back(who.user_id);
    if (f.role == "buyer") where = "buyer_id = $1";
    else if (f.role == "seller") where = "seller_id = $1";
    else where = "(buyer_id = $1 OR seller_id = $1)";
  }
  auto add = [&](const char* clause, const std::string& value) {
    params.emplace_back(value);
    where += std::string(" AND ") + clause + std::to_string(params.size());
  };
  if (f.buyer_id) add("buyer_id = $", *f.buyer_id);
  if (f.seller_id) add("seller_id = $", *f.seller_id);
  if (f.kind) add("kind = $", *f.kind);
  if (f.state) add("state = $", *f.state);
  if (f.before) add("id < $", *f.before);
  params.emplace_back(int64_t(f.limit + 1));
  auto rows = tx.query(std::string("SELECT ") + kColumns + " FROM transactions WHERE " + where +
                           " ORDER BY id DESC LIMIT $" + std::to_string(params.size()),
                       params);
  // Every party of the page in one query, not two per transaction.
  std::vector<std::string> people;
  for (const auto& r : rows) {
    people.push_back(r.text("buyer_id"));
    people.push_back(r.text("seller_id"));
  }
  auto parties = identity_.summaries(tx, people);
  return db::page_of(rows, f.limit, [&](const db::Row& r) { return summary(record_from(r), &who, parties); });
}

json Transactions::daily_stats(db::Tx& tx, const std::string& kind, const std::string& from, const std::string& to) {
  json days = json::object();
  for (const auto& r : tx.query("SELECT substr(created_at, 1, 10) AS day, COUNT(*) AS n FROM transactions"
                                " WHERE kind = $1 AND created_at >= $2 AND created_at <= $3 GROUP BY substr(created_at, 1, 10)",
                                {kind, from, to}))
    days[r.text("day")]["created"] = r.integer("n");
  for (const auto& r : tx.query("SELECT substr(ended_at, 1, 10) AS day,"
                                " SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END) AS completed,"
                                " SUM(CASE WHEN state = 'completed' THEN 0 ELSE 1 END) AS other"
                                " FROM transactions WHERE kind = $1 AND ended_at >= $2 AND ended_at <= $3"
                                " GROUP BY substr(ended_at, 1, 10)",
                                {kind, from, to})) {
    days[r.text("day")]["completed"] = r.integer("completed");
    days[r.text("day")]["cancelled"] = r.integer("other");
  }
  return days;
}

}  // namespace souq::transactions
