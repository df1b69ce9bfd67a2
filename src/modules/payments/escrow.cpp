// Escrow (the process actions), commission, disputes and payouts.
#include <algorithm>
#include <map>

#include "core/id.hpp"
#include "core/log.hpp"
#include "core/money.hpp"
#include "core/time.hpp"
#include "modules/audit/module.hpp"
#include "modules/payments/module.hpp"

namespace souq::payments {
namespace {

std::string hold_id(const std::string& txn) { return txn + ":escrow"; }

json opt(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }

const char* kPayoutColumns =
    "id, user_id, reference, amount, currency, provider, destination, status, provider_ref, failure_message, created_at, "
    "updated_at";

Payout payout_of(const db::Row& r) {
  Payout p;
  p.id = r.text("id");
  p.user_id = r.text("user_id");
  p.reference = r.text("reference");
  p.amount = r.integer("amount");
  p.currency = r.text("currency");
  p.provider = r.text("provider");
  p.destination = r.text("destination");
  p.status = r.text("status");
  p.provider_ref = r.opt_text("provider_ref");
  p.failure_message = r.opt_text("failure_message");
  p.created_at = r.text("created_at");
  p.updated_at = r.text("updated_at");
  return p;
}

constexpr int kPayoutAttempts = 12;

}  // namespace

json Payout::to_json() const {
  return {{"id", id},
          {"reference", reference},
          {"amount", amount},
          {"currency", currency},
          {"provider", provider},
          {"destination", destination},
          {"status", status},
          {"provider_ref", opt(provider_ref)},
          {"failure_message", opt(failure_message)},
          {"created_at", created_at},
          {"updated_at", updated_at}};
}

// ---- actions -------------------------------------------------------------------

namespace {
// The money actions, described once; without `runs` they are known by name only
// (`souq processes check`, which loads processes but runs no action).
void add_actions(transactions::Actions& actions, std::map<std::string, std::function<void(transactions::ActionContext&)>> runs) {
  const std::vector<std::pair<std::string, const char*>> described = {
      {"hold_payment", "Hold the buyer's payment in escrow (a pending transfer from the buyer's wallet)"},
      {"release_escrow", "Release escrow to the seller minus the platform's commission"},
      {"refund", "Void the escrow hold: the money returns to the buyer's wallet"},
      {"split_escrow", "Split escrow as an admin's dispute resolution decided"},
      {"open_dispute", "Open a dispute; the funds stay held until an admin resolves it"}};
  for (const auto& [name, description] : described) {
    auto run = runs.count(name) ? runs[name] : [name = name](transactions::ActionContext&) {
      throw std::logic_error("action " + name + " needs the payments module");
    };
    actions.add(name, {description, {}, run});
  }
}
}  // namespace

void Payments::register_action_names(transactions::Actions& actions) { add_actions(actions, {}); }

void Payments::register_actions(transactions::Actions& actions) {
  add_actions(actions, {
      {"hold_payment", [this](transactions::ActionContext& c) { hold(c); }},
      {"release_escrow", [this](transactions::ActionContext& c) { release(c, 0); }},
      {"refund", [this](transactions::ActionContext& c) { refund(c); }},
      {"split_escrow", [this](transactions::ActionContext& c) { split(c); }},
      {"open_dispute", [this](transactions::ActionContext& c) { open_dispute(c); }},
  });
}

void Payments::split(transactions::ActionContext& c) {
  auto d = c.tx.query_one(
      "SELECT buyer_amount FROM disputes WHERE transaction_id = $1 AND outcome = 'split' AND buyer_amount IS NOT NULL "
      "ORDER BY resolved_at DESC, id DESC LIMIT 1",
      {c.txn.id});
  if (!d)
    throw ApiError::unprocessable("split_needs_resolution",
                                  "A split is decided through the dispute's resolution (POST "
                                  "/api/v1/admin/disputes/{id}/resolve), which names the buyer's part.");
  release(c, d->integer("buyer_amount"));
}

void Payments::open_dispute(transactions::ActionContext& c) {
  std::string id = new_id("dsp");
  if (c.tx.exec("INSERT INTO disputes (id, transaction_id, opened_by, opener_role, reason, status, created_at) "
                "VALUES ($1, $2, $3, $4, $5, 'open', $6) ON CONFLICT DO NOTHING",
                {id, c.txn.id, c.actor.user_id, c.actor.type, c.reason.empty() ? std::string("(no reason given)") : c.reason,
                 now_text()}) == 0)
    throw ApiError::conflict("dispute_open", "A dispute about this transaction is open.");
  outbox_.emit(c.tx, "dispute.opened",
               {{"dispute_id", id}, {"transaction_id", c.txn.id}, {"buyer_id", c.txn.buyer_id},
                {"seller_id", c.txn.seller_id}, {"opened_by", c.actor.user_id}, {"reason", c.reason}},
               id, c.request_id);
}

void Payments::hold(transactions::ActionContext& c) {
  if (c.txn.amount <= 0) throw ApiError::conflict("not_payable", "This transaction has nothing to hold.");
  auto buyer = wallet(c.tx, c.txn.buyer_id, c.txn.currency);
  auto escrow = system_account(c.tx, std::string("escrow:") + c.txn.currency, ledger::code::escrow, c.txn.currency);
  ledger::TransferSpec t;
  t.id = hold_id(c.txn.id);
  t.kind = "pending";
  t.debit_account_id = buyer.id;
  t.credit_account_id = escrow.id;
  t.amount = c.txn.amount;
  t.code = "escrow_hold";
  t.reference = c.txn.id;
  ledger_.transfer(c.tx, t, c.request_id);
}

void Payments::release(transactions::ActionContext& c, int64_t buyer_part) {
  auto pending = ledger_.find(c.tx, hold_id(c.txn.id));
  if (!pending) throw ApiError::conflict("escrow_not_funded", "No payment is held in escrow for this transaction.");
  int64_t amount = pending->amount;
  if (buyer_part < 0 || buyer_part > amount)
    throw ApiError::unprocessable("invalid_split", "The buyer's part must be between 0 and the held amount.");
  int64_t seller_part = amount - buyer_part;
  int64_t fee = commission(c.tx, c.txn, seller_part);
  const std::string& cur = pending->ledger;
  auto escrow = system_account(c.tx, "escrow:" + cur, ledger::code::escrow, cur);
  std::vector<ledger::TransferSpec> batch;
  ledger::TransferSpec post;
  post.id = c.txn.id + ":escrow:post";
  post.kind = "post";
  post.pending_id = pending->id;
  post.code = "escrow_settle";
  post.reference = c.txn.id;
  batch.push_back(post);
  auto move = [&](const std::string& suffix, const ledger::Account& to, int64_t part, const char* code) {
    if (part <= 0) return;
    ledger::TransferSpec t;
    t.id = c.txn.id + ":" + suffix;
    t.debit_account_id = escrow.id;
    t.credit_account_id = to.id;
    t.amount = part;
    t.code = code;
    t.reference = c.txn.id;
    batch.push_back(t);
  };
  move("refund_part", wallet(c.tx, c.txn.buyer_id, cur), buyer_part, "dispute_refund");
  move("release", wallet(c.tx, c.txn.seller_id, cur), seller_part - fee, "escrow_release");
  move("commission", system_account(c.tx, "revenue:" + cur, ledger::code::platform_revenue, cur), fee, "commission");
  ledger_.transfer(c.tx, batch, c.request_id);
  close_disputes(c.tx, c.txn.id, buyer_part > 0 ? "split" : "release");
  outbox_.emit(c.tx, "escrow.released",
               {{"transaction_id", c.txn.id}, {"buyer_id", c.txn.buyer_id}, {"seller_id", c.txn.seller_id},
                {"amount", amount}, {"currency", cur}, {"seller_amount", seller_part - fee}, {"commission", fee},
                {"buyer_amount", buyer_part}},
               c.txn.id, c.request_id);
}

void Payments::refund(transactions::ActionContext& c) {
  auto pending = ledger_.find(c.tx, hold_id(c.txn.id));
  if (!pending) throw ApiError::conflict("escrow_not_funded", "No payment is held in escrow for this transaction.");
  ledger::TransferSpec t;
  t.id = c.txn.id + ":escrow:void";
  t.kind = "void";
  t.pending_id = pending->id;
  t.code = "escrow_refund";
  t.reference = c.txn.id;
  ledger_.transfer(c.tx, t, c.request_id);
  close_disputes(c.tx, c.txn.id, "refund");
  outbox_.emit(c.tx, "escrow.refunded",
               {{"transaction_id", c.txn.id}, {"buyer_id", c.txn.buyer_id}, {"seller_id", c.txn.seller_id},
                {"amount", pending->amount}, {"currency", pending->ledger}},
               c.txn.id, c.request_id);
}

void Payments::close_disputes(db::Tx& tx, const std::string& transaction_id, const std::string& outcome) {
  tx.exec("UPDATE disputes SET status = 'resolved', outcome = COALESCE(outcome, $2), resolved_at = $3 "
          "WHERE transaction_id = $1 AND status = 'open'",
          {transaction_id, outcome, now_text()});
}

// ---- commission -------------------------------------------------------------------

int64_t Payments::commission(db::Tx& tx, const transactions::Record& txn, int64_t amount) {
  if (amount <= 0) return 0;
  std::optional<std::string> category = category_of_ ? category_of_(tx, txn) : std::nullopt;
  std::optional<db::Row> rule;
  if (category) rule = tx.query_one("SELECT basis_points, minimums FROM commission_rules WHERE category = $1", {*category});
  if (!rule) rule = tx.query_one("SELECT basis_points, minimums FROM commission_rules WHERE category = '*'");
  if (!rule) return 0;
  int64_t fee = Money(amount, txn.currency).basis_points(rule->integer("basis_points")).minor();
  json minimums = rule->json("minimums");
  if (minimums.contains(txn.currency) && minimums[txn.currency].is_number_integer())
    fee = std::max(fee, minimums[txn.currency].get<int64_t>());
  return std::min(fee, amount);
}

json Payments::commission_rules(db::Tx& tx) {
  json out = json::array();
  for (const auto& r : tx.query("SELECT category, basis_points, minimums, updated_at FROM commission_rules ORDER BY category"))
    out.push_back({{"category", r.text("category")},
                   {"basis_points", r.integer("basis_points")},
                   {"minimums", r.json("minimums")},
                   {"updated_at", r.text("updated_at")}});
  return out;
}

json Payments::put_commission_rule(const identity::Principal& admin, const CommissionRule& rule,
                                   const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    std::string now = now_text();
    tx.exec("INSERT INTO commission_rules (category, basis_points, minimums, updated_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (category) DO UPDATE SET basis_points = excluded.basis_points, minimums = excluded.minimums, "
            "updated_at = excluded.updated_at",
            {rule.category, rule.basis_points, rule.minimums.dump(), now});
    audit::record(tx, {admin.user_id, "commission_rule.put", "commission_rule", rule.category, "",
                       {{"basis_points", rule.basis_points}, {"minimums", rule.minimums}}, request_id});
    return json{{"category", rule.category}, {"basis_points", rule.basis_points}, {"minimums", rule.minimums},
                {"updated_at", now}};
  });
}

void Payments::delete_commission_rule(const identity::Principal& admin, const std::string& category,
                                      const std::string& request_id) {
  db_.write([&](db::Tx& tx) {
    if (tx.exec("DELETE FROM commission_rules WHERE category = $1", {category}) == 0)
      throw ApiError::not_found("No commission rule for this category.");
    audit::record(tx, {admin.user_id, "commission_rule.delete", "commission_rule", category, "", json::object(), request_id});
  });
}

// ---- disputes -------------------------------------------------------------------

namespace {
json dispute_of(db::Tx& tx, const db::Row& r) {
  json evidence = json::array();
  for (const auto& e : tx.query("SELECT id, author_id, text, created_at FROM dispute_evidence WHERE dispute_id = $1 ORDER BY id",
                                {r.text("id")}))
    evidence.push_back(
        {{"id", e.text("id")}, {"author_id", e.text("author_id")}, {"text", e.text("text")}, {"created_at", e.text("created_at")}});
  return {{"id", r.text("id")},
          {"transaction_id", r.text("transaction_id")},
          {"opened_by", r.text("opened_by")},
          {"opener_role", r.text("opener_role")},
          {"reason", r.text("reason")},
          {"status", r.text("status")},
          {"outcome", r.nullable_text("outcome")},
          {"buyer_amount", r.is_null("buyer_amount") ? json(nullptr) : json(r.integer("buyer_amount"))},
          {"resolution_reason", r.nullable_text("resolution_reason")},
          {"evidence", evidence},
          {"created_at", r.text("created_at")},
          {"resolved_at", r.nullable_text("resolved_at")}};
}
const char* kDisputeColumns =
    "id, transaction_id, opened_by, opener_role, reason, status, outcome, buyer_amount, resolution_reason, created_at, "
    "resolved_at";
}  // namespace

json Payments::dispute(db::Tx& tx, const std::string& id, const identity::Principal& who) {
  auto r = tx.query_one(std::string("SELECT ") + kDisputeColumns + " FROM disputes WHERE id = $1", {id});
  if (!r) throw ApiError::not_found("No such dispute.");
  auto txn = transactions_.load(tx, r->text("transaction_id"));
  if (!txn || transactions_.roles_of(*txn, who).empty()) throw ApiError::not_found("No such dispute.");
  return dispute_of(tx, *r);
}

json Payments::transaction_disputes(db::Tx& tx, const std::string& transaction_id, const identity::Principal& who) {
  auto txn = transactions_.load(tx, transaction_id);
  if (!txn || transactions_.roles_of(*txn, who).empty()) throw ApiError::not_found("No such transaction.");
  json out = json::array();
  for (const auto& r : tx.query(std::string("SELECT ") + kDisputeColumns +
                                    " FROM disputes WHERE transaction_id = $1 ORDER BY id",
                                {transaction_id}))
    out.push_back(dispute_of(tx, r));
  return out;
}

json Payments::add_evidence(const identity::Principal& who, const std::string& dispute_id, const std::string& text,
                            const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto r = tx.query_one(std::string("SELECT ") + kDisputeColumns + " FROM disputes WHERE id = $1", {dispute_id});
    if (!r) throw ApiError::not_found("No such dispute.");
    auto txn = transactions_.load(tx, r->text("transaction_id"));
    if (!txn || (txn->buyer_id != who.user_id && txn->seller_id != who.user_id && !who.has_role("admin")))
      throw ApiError::not_found("No such dispute.");
    if (r->text("status") != "open") throw ApiError::conflict("dispute_resolved", "This dispute is resolved.");
    tx.exec("INSERT INTO dispute_evidence (id, dispute_id, author_id, text, created_at) VALUES ($1, $2, $3, $4, $5)",
            {new_id("evd"), dispute_id, who.user_id, text, now_text()});
    outbox_.emit(tx, "dispute.evidence_added",
                 {{"dispute_id", dispute_id}, {"transaction_id", txn->id}, {"author_id", who.user_id}}, dispute_id,
                 request_id);
    return dispute_of(tx, *r);
  });
}

std::pair<json, json> Payments::list_disputes(db::Tx& tx, const std::optional<std::string>& status,
                                              const std::optional<std::string>& before, int limit) {
  auto rows = db::newest_first(tx, std::string("SELECT ") + kDisputeColumns + " FROM disputes", {{"status", status}},
                               before, limit);
  return db::page_of(rows, limit, [&](const db::Row& r) { return dispute_of(tx, r); });
}

json Payments::resolve_dispute(const identity::Principal& admin, const std::string& id, const std::string& outcome,
                               std::optional<int64_t> buyer_amount, const std::string& reason,
                               const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto r = tx.query_one(std::string("SELECT ") + kDisputeColumns + " FROM disputes WHERE id = $1" +
                              std::string(tx.for_update()),
                          {id});
    if (!r) throw ApiError::not_found("No such dispute.");
    if (r->text("status") != "open") throw ApiError::conflict("dispute_resolved", "This dispute is already resolved.");
    auto txn = transactions_.load(tx, r->text("transaction_id"));
    if (!txn) throw ApiError::not_found("No such dispute.");
    std::string action = outcome == "release" ? "release_escrow" : outcome == "refund" ? "refund" : "split_escrow";
    const auto* step = resolution(*txn, action);
    if (!step)
      throw ApiError::conflict("no_resolution_step",
                               "The transaction's process has no operator step that does this from state " + txn->state + ".",
                               {{"state", txn->state}, {"outcome", outcome}});
    if (outcome == "split") {
      auto hold = ledger_.find(tx, hold_id(txn->id));
      int64_t held = hold ? hold->amount : 0;
      if (!buyer_amount || *buyer_amount <= 0 || *buyer_amount >= held)
        throw ApiError::unprocessable("invalid_split", "A split gives the buyer more than nothing and less than all.",
                                      {{"held", held}});
    }
    if (tx.exec("UPDATE disputes SET status = 'resolved', outcome = $2, buyer_amount = $3, resolved_by = $4, "
                "resolution_reason = $5, resolved_at = $6 WHERE id = $1 AND status = 'open'",
                {id, outcome, outcome == "split" ? db::Value(*buyer_amount) : db::Value(nullptr), admin.user_id, reason,
                 now_text()}) != 1)
      throw ApiError::conflict("dispute_resolved", "This dispute is already resolved.");
    transactions_.apply(tx, *txn, step->name, {"operator", admin.user_id}, reason, request_id);
    audit::record(tx, {admin.user_id, "dispute.resolve", "dispute", id, reason,
                       {{"outcome", outcome}, {"buyer_amount", buyer_amount ? json(*buyer_amount) : json(nullptr)},
                        {"transaction_id", txn->id}, {"transition", step->name}},
                       request_id});
    outbox_.emit(tx, "dispute.resolved",
                 {{"dispute_id", id}, {"transaction_id", txn->id}, {"buyer_id", txn->buyer_id},
                  {"seller_id", txn->seller_id}, {"outcome", outcome}},
                 id, request_id);
    auto again = tx.query_one(std::string("SELECT ") + kDisputeColumns + " FROM disputes WHERE id = $1", {id});
    return dispute_of(tx, *again);
  });
}

// ---- payouts ----------------------------------------------------------------------

json Payments::request_payout(const identity::Principal& who, int64_t amount, const std::string& currency,
                              const std::string& reference, const std::string& destination, const std::string& provider,
                              const std::string& request_id) {
  if (!gateway(provider))
    throw ApiError::unprocessable("unknown_provider", "Payout provider \"" + provider + "\" is not enabled here.");
  return db_.write([&](db::Tx& tx) {
    if (auto r = tx.query_one(std::string("SELECT ") + kPayoutColumns + " FROM payouts WHERE user_id = $1 AND reference = $2",
                              {who.user_id, reference})) {
      Payout p = payout_of(*r);
      if (p.amount != amount || p.currency != currency || p.destination != destination || p.provider != provider)
        throw ApiError::conflict("payout_reference_reused", "A payout with this reference exists with other fields.",
                                 {{"payout_id", p.id}});
      return p.to_json();
    }
    std::string id = new_id("po"), now = now_text();
    if (tx.exec(std::string("INSERT INTO payouts (") + kPayoutColumns +
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, 'requested', NULL, NULL, $8, $8) "
                    "ON CONFLICT (user_id, reference) DO NOTHING",
                {id, who.user_id, reference, amount, currency, provider, destination, now}) == 0) {
      // A concurrent request with this reference won: answer as a replay would.
      auto r = tx.query_one(std::string("SELECT ") + kPayoutColumns + " FROM payouts WHERE user_id = $1 AND reference = $2",
                            {who.user_id, reference});
      Payout p = payout_of(*r);
      if (p.amount != amount || p.currency != currency || p.destination != destination || p.provider != provider)
        throw ApiError::conflict("payout_reference_reused", "A payout with this reference exists with other fields.",
                                 {{"payout_id", p.id}});
      return p.to_json();
    }
    auto from = wallet(tx, who.user_id, currency);
    auto to = system_account(tx, "payouts:" + provider + ":" + currency, ledger::code::payouts_in_transit, currency);
    ledger::TransferSpec hold;
    hold.id = id + ":hold";
    hold.kind = "pending";
    hold.debit_account_id = from.id;
    hold.credit_account_id = to.id;
    hold.amount = amount;
    hold.code = "payout";
    hold.reference = id;
    ledger_.transfer(tx, hold, request_id);
    jobs::EnqueueOptions o;
    o.max_attempts = kPayoutAttempts;
    o.request_id = request_id;
    queue_.enqueue(tx, "payments.payout", {{"payout_id", id}}, o);
    auto r = tx.query_one(std::string("SELECT ") + kPayoutColumns + " FROM payouts WHERE id = $1", {id});
    outbox_.emit(tx, "payout.requested", {{"payout_id", id}, {"user_id", who.user_id}, {"status", "requested"},
                                          {"amount", amount}, {"currency", currency}},
                 id, request_id);
    return payout_of(*r).to_json();
  });
}

void Payments::settle_payout(const std::string& payout_id, const std::string& request_id) {
  auto row = db_.read([&](db::Tx& tx) {
    return tx.query_one(std::string("SELECT ") + kPayoutColumns + " FROM payouts WHERE id = $1", {payout_id});
  });
  if (!row) return;
  Payout p = payout_of(*row);
  if (p.status != "requested") return;
  Gateway* g = gateway(p.provider);
  if (!g) throw std::runtime_error("payout provider " + p.provider + " is not enabled");
  PayoutResult result = g->payout(p);  // throws to retry
  db_.write([&](db::Tx& tx) {
    std::string now = now_text();
    std::string status = result.paid ? "paid" : "failed";
    if (tx.exec("UPDATE payouts SET status = $2, provider_ref = $3, failure_message = $4, updated_at = $5 "
                "WHERE id = $1 AND status = 'requested'",
                {p.id, status, result.provider_ref.empty() ? db::Value(nullptr) : db::Value(result.provider_ref),
                 result.failure.empty() ? db::Value(nullptr) : db::Value(result.failure), now}) != 1)
      return;
    ledger::TransferSpec t;
    t.id = p.id + (result.paid ? ":paid" : ":failed");
    t.kind = result.paid ? "post" : "void";
    t.pending_id = p.id + ":hold";
    t.code = result.paid ? "payout" : "payout_failed";
    t.reference = p.id;
    ledger_.transfer(tx, t, request_id);
    outbox_.emit(tx, "payout." + status,
                 {{"payout_id", p.id}, {"user_id", p.user_id}, {"status", status}, {"amount", p.amount},
                  {"currency", p.currency}, {"destination", p.destination}, {"failure_message", result.failure}},
                 p.id, request_id);
  });
}

json Payments::payout(db::Tx& tx, const std::string& id, const identity::Principal& who) {
  auto r = tx.query_one(std::string("SELECT ") + kPayoutColumns + " FROM payouts WHERE id = $1", {id});
  if (!r || (r->text("user_id") != who.user_id && !who.has_role("admin"))) throw ApiError::not_found("No such payout.");
  return payout_of(*r).to_json();
}

std::pair<json, json> Payments::list_payouts(db::Tx& tx, const std::string& user_id,
                                             const std::optional<std::string>& before, int limit) {
  auto rows = db::newest_first(tx, std::string("SELECT ") + kPayoutColumns + " FROM payouts", {{"user_id", user_id}},
                               before, limit);
  return db::page_of(rows, limit, [](const db::Row& r) { return payout_of(r).to_json(); });
}

}  // namespace souq::payments
