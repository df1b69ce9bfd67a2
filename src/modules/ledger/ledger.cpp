#include <map>
#include <set>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/id.hpp"
#include "core/log.hpp"
#include "core/money.hpp"
#include "core/time.hpp"
#include "http/paging.hpp"
#include "modules/ledger/module.hpp"

namespace souq::ledger {
namespace {

const std::string kGenesis(64, '0');
constexpr int kExpireAttempts = 20;

const char* kAccountColumns =
    "id, ledger, code, key, owner_id, flags, debits_pending, debits_posted, credits_pending, credits_posted, created_at";
const char* kTransferColumns =
    "id, ledger, seq, kind, debit_account_id, credit_account_id, amount, pending_id, timeout_at, code, reference, "
    "batch_id, created_at, prev_hash, hash";

Account account_of(const db::Row& r) {
  Account a;
  a.id = r.text("id");
  a.ledger = r.text("ledger");
  a.code = r.text("code");
  a.key = r.text("key");
  a.owner_id = r.opt_text("owner_id");
  a.flags = int(r.integer("flags"));
  a.debits_pending = r.integer("debits_pending");
  a.debits_posted = r.integer("debits_posted");
  a.credits_pending = r.integer("credits_pending");
  a.credits_posted = r.integer("credits_posted");
  a.created_at = r.text("created_at");
  return a;
}

Transfer transfer_of(const db::Row& r) {
  Transfer t;
  t.id = r.text("id");
  t.ledger = r.text("ledger");
  t.seq = r.integer("seq");
  t.kind = r.text("kind");
  t.debit_account_id = r.text("debit_account_id");
  t.credit_account_id = r.text("credit_account_id");
  t.amount = r.integer("amount");
  t.pending_id = r.opt_text("pending_id");
  t.timeout_at = r.opt_text("timeout_at");
  t.code = r.text("code");
  t.reference = r.opt_text("reference").value_or("");
  t.batch_id = r.text("batch_id");
  t.created_at = r.text("created_at");
  t.prev_hash = r.text("prev_hash");
  t.hash = r.text("hash");
  return t;
}

json flags_json(int flags) {
  json out = json::array();
  if (flags & kDebitsMustNotExceedCredits) out.push_back("debits_must_not_exceed_credits");
  if (flags & kCreditsMustNotExceedDebits) out.push_back("credits_must_not_exceed_debits");
  return out;
}

int64_t checked_add(int64_t a, int64_t b) {
  int64_t out;
  if (__builtin_add_overflow(a, b, &out))
    throw ApiError::unprocessable("amount_overflow", "The transfer would overflow an account's balance.");
  return out;
}

// Whether a stored transfer is what `spec` asks for (an idempotent replay).
bool same_fields(const Transfer& t, const TransferSpec& s) {
  if (t.kind != s.kind || t.code != s.code || t.reference != s.reference) return false;
  if (s.kind == "posted" || s.kind == "pending") {
    if (t.debit_account_id != s.debit_account_id || t.credit_account_id != s.credit_account_id ||
        t.amount != s.amount)
      return false;
    if (s.kind == "pending" && bool(s.timeout) != bool(t.timeout_at)) return false;
    return true;
  }
  if (t.pending_id.value_or("") != s.pending_id) return false;
  if (s.kind == "post" && s.amount != 0 && s.amount != t.amount) return false;
  return true;
}

}  // namespace

json Account::to_json() const {
  return {{"id", id},
          {"ledger", ledger},
          {"code", code},
          {"key", key},
          {"owner_id", owner_id ? json(*owner_id) : json(nullptr)},
          {"flags", flags_json(flags)},
          {"debits_pending", debits_pending},
          {"debits_posted", debits_posted},
          {"credits_pending", credits_pending},
          {"credits_posted", credits_posted},
          {"created_at", created_at}};
}

json Transfer::to_json() const {
  return {{"id", id},
          {"ledger", ledger},
          {"seq", seq},
          {"kind", kind},
          {"debit_account_id", debit_account_id},
          {"credit_account_id", credit_account_id},
          {"amount", amount},
          {"pending_id", pending_id ? json(*pending_id) : json(nullptr)},
          {"timeout_at", timeout_at ? json(*timeout_at) : json(nullptr)},
          {"code", code},
          {"reference", reference.empty() ? json(nullptr) : json(reference)},
          {"batch_id", batch_id},
          {"created_at", created_at},
          {"hash", hash}};
}

json Fault::to_json() const {
  json out = {{"kind", kind}, {"ledger", ledger}, {"message", message}};
  out["transfer_id"] = transfer_id.empty() ? json(nullptr) : json(transfer_id);
  out["account_id"] = account_id.empty() ? json(nullptr) : json(account_id);
  return out;
}

json VerifyReport::to_json() const {
  json f = json::array();
  for (const auto& x : faults) f.push_back(x.to_json());
  return {{"ok", ok},
          {"transfers", transfers},
          {"accounts", accounts},
          {"ledgers", ledgers},
          {"first_fault", faults.empty() ? json(nullptr) : faults.front().to_json()},
          {"faults", f}};
}

std::string chain_hash(const std::string& prev_hash, const Transfer& t) {
  std::string text = "souq-ledger-v1\n" + prev_hash + "\n" + t.id + "\n" + t.ledger + "\n" + std::to_string(t.seq) +
                     "\n" + t.kind + "\n" + t.debit_account_id + "\n" + t.credit_account_id + "\n" +
                     std::to_string(t.amount) + "\n" + t.pending_id.value_or("") + "\n" + t.timeout_at.value_or("") +
                     "\n" + t.code + "\n" + t.reference + "\n" + t.batch_id + "\n" + t.created_at;
  return crypto::sha256_hex(text);
}

Ledger::Ledger(db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox) : db_(db), queue_(queue), outbox_(outbox) {}

void Ledger::register_jobs() {
  queue_.handle("ledger.expire", [this](const jobs::Job& job) {
    std::string id = job.payload.value("transfer_id", "");
    db_.write([&](db::Tx& tx) { expire(tx, id, job.request_id); });
  });
}

Account Ledger::open(db::Tx& tx, const AccountSpec& spec) {
  if (!Currency::find(spec.ledger))
    throw ApiError::unprocessable("invalid_currency", "Unknown currency: " + spec.ledger);
  if (auto existing = account_by_key(tx, spec.key)) {
    if (existing->ledger != spec.ledger || existing->code != spec.code || existing->flags != spec.flags ||
        existing->owner_id != spec.owner_id)
      throw ApiError::conflict("account_key_reused", "An account with this key exists with other fields.",
                               {{"account_id", existing->id}});
    return *existing;
  }
  std::string id = new_id("acct");
  tx.exec(
      "INSERT INTO ledger_accounts (id, ledger, code, key, owner_id, flags, created_at) VALUES ($1, $2, $3, $4, $5, $6, "
      "$7) ON CONFLICT (key) DO NOTHING",
      {id, spec.ledger, spec.code, spec.key, spec.owner_id ? db::Value(*spec.owner_id) : db::Value(nullptr), spec.flags,
       now_text()});
  // Another writer may have opened it first (PostgreSQL): read it back by key.
  auto made = account_by_key(tx, spec.key);
  if (!made) throw std::runtime_error("ledger: account " + spec.key + " vanished");
  return *made;
}

std::optional<Account> Ledger::account(db::Tx& tx, const std::string& id) {
  auto r = tx.query_one(std::string("SELECT ") + kAccountColumns + " FROM ledger_accounts WHERE id = $1", {id});
  if (!r) return std::nullopt;
  return account_of(*r);
}

std::optional<Account> Ledger::account_by_key(db::Tx& tx, const std::string& key) {
  auto r = tx.query_one(std::string("SELECT ") + kAccountColumns + " FROM ledger_accounts WHERE key = $1", {key});
  if (!r) return std::nullopt;
  return account_of(*r);
}

std::optional<Transfer> Ledger::find(db::Tx& tx, const std::string& id) {
  auto r = tx.query_one(std::string("SELECT ") + kTransferColumns + " FROM ledger_transfers WHERE id = $1", {id});
  if (!r) return std::nullopt;
  return transfer_of(*r);
}

PendingState Ledger::pending_state(db::Tx& tx, const std::string& pending_id) {
  auto r = tx.query_one(std::string("SELECT ") + kTransferColumns + " FROM ledger_transfers WHERE pending_id = $1",
                        {pending_id});
  if (!r) return {"pending", std::nullopt};
  Transfer t = transfer_of(*r);
  std::string state = t.kind == "post" ? "posted" : t.kind == "void" ? "voided" : "expired";
  return {state, std::move(t)};
}

std::vector<Transfer> Ledger::transfer(db::Tx& tx, const std::vector<TransferSpec>& batch,
                                       const std::string& request_id) {
  if (batch.empty()) throw ApiError::unprocessable("invalid_transfer", "A batch needs at least one transfer.");
  std::string batch_id = new_id("batch");
  std::vector<Transfer> out;
  std::set<std::string> ids;
  for (const auto& spec : batch) {
    if (!ids.insert(spec.id).second)
      throw ApiError::unprocessable("invalid_transfer", "The batch names transfer " + spec.id + " twice.");
    out.push_back(make(tx, spec, batch_id, request_id));
  }
  return out;
}

Transfer Ledger::transfer(db::Tx& tx, const TransferSpec& one, const std::string& request_id) {
  return transfer(tx, std::vector<TransferSpec>{one}, request_id).front();
}

db::Row Ledger::lock_head(db::Tx& tx, const std::string& ledger) {
  tx.exec("INSERT INTO ledger_heads (ledger, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (ledger) DO NOTHING",
          {ledger, kGenesis});
  return *tx.query_one("SELECT seq, hash FROM ledger_heads WHERE ledger = $1" + std::string(tx.for_update()), {ledger});
}

void Ledger::append(db::Tx& tx, Transfer& t, const db::Row& head, const Deltas& d) {
  t.seq = head.integer("seq") + 1;
  t.prev_hash = head.text("hash");
  t.hash = chain_hash(t.prev_hash, t);
  try {
    tx.exec(std::string("INSERT INTO ledger_transfers (") + kTransferColumns +
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            {t.id, t.ledger, t.seq, t.kind, t.debit_account_id, t.credit_account_id, t.amount,
             t.pending_id ? db::Value(*t.pending_id) : db::Value(nullptr),
             t.timeout_at ? db::Value(*t.timeout_at) : db::Value(nullptr), t.code,
             t.reference.empty() ? db::Value(nullptr) : db::Value(t.reference), t.batch_id, t.created_at, t.prev_hash,
             t.hash});
  } catch (const db::ConstraintError& e) {
    // PostgreSQL: the idempotency check in make() ran before the head's lock,
    // so a concurrent request with the same transfer id (a client's retry
    // while its first attempt is in flight) may have committed it since. Run
    // the transaction again: the check then finds it and answers as for any
    // replay (the original, or 409 transfer_id_reused).
    if (e.kind() != db::ConstraintError::Kind::unique) throw;
    throw db::RetryableError("ledger: transfer " + t.id + " was written concurrently: " + e.what());
  }
  tx.exec("UPDATE ledger_accounts SET debits_pending = debits_pending + $2, debits_posted = debits_posted + $3 WHERE id = $1",
          {t.debit_account_id, d.debits_pending, d.debits_posted});
  tx.exec("UPDATE ledger_accounts SET credits_pending = credits_pending + $2, credits_posted = credits_posted + $3 WHERE id = $1",
          {t.credit_account_id, d.credits_pending, d.credits_posted});
  tx.exec("UPDATE ledger_heads SET seq = $2, hash = $3 WHERE ledger = $1", {t.ledger, t.seq, t.hash});
}

Transfer Ledger::make(db::Tx& tx, const TransferSpec& s, const std::string& batch_id, const std::string& request_id) {
  if (s.id.empty() || s.id.size() > 200)
    throw ApiError::validation({{"id", "must be 1 to 200 characters"}});
  if (s.kind != "posted" && s.kind != "pending" && s.kind != "post" && s.kind != "void")
    throw ApiError::validation({{"kind", "must be posted, pending, post or void"}});
  if (s.code.empty()) throw ApiError::validation({{"code", "is required"}});
  bool resolves = s.kind == "post" || s.kind == "void";
  if (resolves && s.pending_id.empty()) throw ApiError::validation({{"pending_id", "is required to post or void"}});
  if (!resolves && s.amount <= 0)
    throw ApiError::unprocessable("invalid_amount", "An amount is a positive whole number of minor units.");
  if (s.kind == "post" && s.amount < 0)
    throw ApiError::unprocessable("invalid_amount", "An amount is a positive whole number of minor units.");
  if (s.timeout && (s.kind != "pending" || s.timeout->count() <= 0))
    throw ApiError::validation({{"timeout", "only a pending transfer has a timeout, of at least one second"}});

  // Idempotency: the same id again.
  if (auto existing = find(tx, s.id)) {
    if (!same_fields(*existing, s))
      throw ApiError::conflict("transfer_id_reused", "Transfer " + s.id + " exists with other fields.",
                               {{"transfer_id", s.id}});
    return *existing;
  }

  std::optional<Transfer> pending;
  std::string debit_id = s.debit_account_id, credit_id = s.credit_account_id;
  if (resolves) {
    pending = find(tx, s.pending_id);
    if (!pending)
      throw ApiError(404, "pending_transfer_not_found", "No transfer " + s.pending_id + ".");
    if (pending->kind != "pending")
      throw ApiError::unprocessable("not_pending", "Transfer " + s.pending_id + " is not a pending transfer.");
    debit_id = pending->debit_account_id;
    credit_id = pending->credit_account_id;
    if ((!s.debit_account_id.empty() && s.debit_account_id != debit_id) ||
        (!s.credit_account_id.empty() && s.credit_account_id != credit_id))
      throw ApiError::unprocessable("invalid_transfer", "A post or void moves between the pending transfer's accounts.");
  }
  if (debit_id.empty() || credit_id.empty())
    throw ApiError::validation({{"debit_account_id", "both accounts are required"}});
  if (debit_id == credit_id)
    throw ApiError::unprocessable("same_account", "A transfer moves between two different accounts.");

  auto debit = account(tx, debit_id);
  if (!debit) throw ApiError(404, "account_not_found", "No account " + debit_id + ".", {{"account_id", debit_id}});
  // The ledger's head first: it orders this ledger's writers (PostgreSQL), so
  // the accounts below are read and changed by one transfer at a time.
  db::Row head = lock_head(tx, debit->ledger);
  debit = account(tx, debit_id);  // re-read under the head's lock
  auto credit = account(tx, credit_id);
  if (!credit) throw ApiError(404, "account_not_found", "No account " + credit_id + ".", {{"account_id", credit_id}});
  if (debit->ledger != credit->ledger)
    throw ApiError::unprocessable("ledger_mismatch", "Both accounts of a transfer must be on the same ledger.",
                                  {{"debit_ledger", debit->ledger}, {"credit_ledger", credit->ledger}});

  std::string now = now_text();
  int64_t amount = s.amount;
  // What the transfer does to the four balances of each side.
  int64_t d_pending = 0, d_posted = 0, c_pending = 0, c_posted = 0;
  if (s.kind == "posted") {
    d_posted = c_posted = amount;
  } else if (s.kind == "pending") {
    d_pending = c_pending = amount;
  } else {
    // A second resolution (a racing post and void) finds the first here or
    // hits the unique index on pending_id.
    auto state = pending_state(tx, pending->id);
    if (state.state != "pending")
      throw ApiError::conflict("pending_transfer_resolved", "Transfer " + pending->id + " is already " + state.state + ".",
                               {{"pending_id", pending->id}, {"state", state.state}});
    if (pending->timeout_at && *pending->timeout_at <= now)
      throw ApiError::conflict("pending_transfer_resolved", "Transfer " + pending->id + " has expired.",
                               {{"pending_id", pending->id}, {"state", "expired"}});
    if (s.kind == "post") {
      if (amount == 0) amount = pending->amount;
      if (amount > pending->amount)
        throw ApiError::unprocessable("amount_exceeds_pending", "A post cannot exceed the pending amount.",
                                      {{"pending_amount", pending->amount}});
      d_posted = c_posted = amount;
    } else {
      amount = pending->amount;
    }
    d_pending = c_pending = -pending->amount;
  }

  int64_t dp = checked_add(debit->debits_pending, d_pending), dq = checked_add(debit->debits_posted, d_posted);
  int64_t cp = checked_add(credit->credits_pending, c_pending), cq = checked_add(credit->credits_posted, c_posted);
  checked_add(dp, dq);
  checked_add(cp, cq);
  if ((debit->flags & kDebitsMustNotExceedCredits) && (d_pending > 0 || d_posted > 0) &&
      checked_add(dp, dq) > debit->credits_posted)
    throw ApiError::conflict("insufficient_funds", "Account " + debit->id + " does not hold enough.",
                             {{"account_id", debit->id}, {"available", debit->available()}, {"amount", amount}});
  if ((credit->flags & kCreditsMustNotExceedDebits) && (c_pending > 0 || c_posted > 0) &&
      checked_add(cp, cq) > credit->debits_posted)
    throw ApiError::conflict("exceeds_debits", "Account " + credit->id + " may not be credited beyond its debits.",
                             {{"account_id", credit->id}});

  Transfer t;
  t.id = s.id;
  t.ledger = debit->ledger;
  t.kind = s.kind;
  t.debit_account_id = debit->id;
  t.credit_account_id = credit->id;
  t.amount = amount;
  if (resolves) t.pending_id = pending->id;
  if (s.timeout) t.timeout_at = format_time(souq::now() + *s.timeout);
  t.code = s.code;
  t.reference = s.reference;
  t.batch_id = batch_id;
  t.created_at = now;
  append(tx, t, head, {d_pending, d_posted, c_pending, c_posted});
  if (t.timeout_at) {
    jobs::EnqueueOptions o;
    o.run_at = parse_time(*t.timeout_at);
    o.max_attempts = kExpireAttempts;
    o.request_id = request_id;
    queue_.enqueue(tx, "ledger.expire", {{"transfer_id", t.id}}, o);
  }
  return t;
}

void Ledger::expire(db::Tx& tx, const std::string& pending_id, const std::string& request_id) {
  auto pending = find(tx, pending_id);
  if (!pending || pending->kind != "pending" || !pending->timeout_at) return;
  if (*pending->timeout_at > now_text()) {
    // Early (a clock step): look again at the timeout.
    jobs::EnqueueOptions o;
    o.run_at = parse_time(*pending->timeout_at);
    o.max_attempts = kExpireAttempts;
    queue_.enqueue(tx, "ledger.expire", {{"transfer_id", pending_id}}, o);
    return;
  }
  if (pending_state(tx, pending_id).state != "pending") return;
  // Written as the expire kind, bypassing make()'s "has expired" refusal.
  db::Row head = lock_head(tx, pending->ledger);
  if (pending_state(tx, pending_id).state != "pending") return;
  Transfer t;
  t.id = pending_id + ":expire";
  t.ledger = pending->ledger;
  t.kind = "expire";
  t.debit_account_id = pending->debit_account_id;
  t.credit_account_id = pending->credit_account_id;
  t.amount = pending->amount;
  t.pending_id = pending_id;
  t.code = pending->code;
  t.reference = pending->reference;
  t.batch_id = new_id("batch");
  t.created_at = now_text();
  append(tx, t, head, {-t.amount, 0, -t.amount, 0});
  outbox_.emit(tx, "ledger.transfer_expired",
               {{"transfer_id", pending_id}, {"code", t.code}, {"reference", t.reference}, {"amount", t.amount},
                {"ledger", t.ledger}},
               pending_id, request_id);
}

std::pair<json, json> Ledger::history(db::Tx& tx, const std::string& account_id, const std::optional<json>& before,
                                      int limit) {
  std::string sql = std::string("SELECT ") + kTransferColumns +
                    " FROM ledger_transfers WHERE (debit_account_id = $1 OR credit_account_id = $1)";
  db::Params p{account_id, limit + 1};
  if (before) {
    // [seq]: an array, as api::page_cursor_json reads every cursor.
    if (!before->is_array() || before->size() != 1 || !(*before)[0].is_number_integer())
      throw ApiError::validation({{"cursor", "is not a cursor of this list"}});
    p.push_back((*before)[0].get<int64_t>());
    sql += " AND seq < $3";
  }
  sql += " ORDER BY seq DESC LIMIT $2";
  auto rows = tx.query(sql, p);
  json items = json::array();
  for (size_t i = 0; i < rows.size() && int(i) < limit; ++i) items.push_back(transfer_of(rows[i]).to_json());
  json next = int(rows.size()) > limit ? json(api::encode_cursor(json::array({items.back()["seq"]}))) : json(nullptr);
  return {items, next};
}

std::pair<json, json> Ledger::accounts(db::Tx& tx, const std::optional<std::string>& ledger,
                                       const std::optional<std::string>& code, const std::optional<std::string>& owner_id,
                                       const std::optional<std::string>& before, int limit) {
  auto rows = db::newest_first(tx, std::string("SELECT ") + kAccountColumns + " FROM ledger_accounts",
                               {{"ledger", ledger}, {"code", code}, {"owner_id", owner_id}}, before, limit);
  return db::page_of(rows, limit, [](const db::Row& r) { return account_of(r).to_json(); });
}

std::pair<json, json> Ledger::transfers(db::Tx& tx, const std::optional<std::string>& account_id,
                                        const std::optional<std::string>& reference, const std::optional<json>& before,
                                        int limit) {
  db::Params p{limit + 1};
  std::string sql = std::string("SELECT ") + kTransferColumns + " FROM ledger_transfers WHERE true";
  if (account_id) {
    p.push_back(*account_id);
    sql += " AND (debit_account_id = $2 OR credit_account_id = $2)";
  }
  if (reference) {
    p.push_back(*reference);
    sql += " AND reference = $" + std::to_string(p.size());
  }
  if (before) {
    // Newest first across ledgers: by creation time, then id.
    // [created_at, id]
    if (!before->is_array() || before->size() != 2 || !(*before)[0].is_string() || !(*before)[1].is_string())
      throw ApiError::validation({{"cursor", "is not a cursor of this list"}});
    p.push_back((*before)[0].get<std::string>());
    p.push_back((*before)[1].get<std::string>());
    std::string at = "$" + std::to_string(p.size() - 1), id = "$" + std::to_string(p.size());
    sql += " AND (created_at < " + at + " OR (created_at = " + at + " AND id < " + id + "))";
  }
  sql += " ORDER BY created_at DESC, id DESC LIMIT $1";
  auto rows = tx.query(sql, p);
  json items = json::array();
  for (size_t i = 0; i < rows.size() && int(i) < limit; ++i) items.push_back(transfer_of(rows[i]).to_json());
  json next = int(rows.size()) > limit
                  ? json(api::encode_cursor(json::array({items.back()["created_at"], items.back()["id"]})))
                  : json(nullptr);
  return {items, next};
}

VerifyReport Ledger::verify() {
  VerifyReport report;
  db_.read([&](db::Tx& tx) {
    report = VerifyReport{};
    struct Sums {
      int64_t debits_pending = 0, debits_posted = 0, credits_pending = 0, credits_posted = 0;
    };
    std::map<std::string, Sums> computed;      // account → balances from the transfers
    std::map<std::string, std::string> ledger_of;  // account → ledger
    for (const auto& r : tx.query("SELECT id, ledger FROM ledger_accounts")) ledger_of[r.text("id")] = r.text("ledger");
    auto fault = [&](std::string kind, std::string ledger, std::string transfer, std::string account, std::string msg) {
      report.ok = false;
      if (report.faults.size() < 100)
        report.faults.push_back({std::move(kind), std::move(ledger), std::move(transfer), std::move(account), std::move(msg)});
    };
    // Overflow while summing is itself a fault, not a crash.
    auto add = [&](int64_t& into, int64_t v, const std::string& ledger, const std::string& id) {
      if (__builtin_add_overflow(into, v, &into)) fault("overflow", ledger, id, "", "a balance overflows");
    };

    for (const auto& h : tx.query("SELECT ledger, seq, hash FROM ledger_heads ORDER BY ledger")) {
      std::string ledger = h.text("ledger");
      std::string prev = kGenesis;
      int64_t expect_seq = 1, count = 0;
      std::map<std::string, Transfer> pendings;  // unresolved pending transfers of this ledger
      std::set<std::string> resolved;
      bool chain_ok = true;
      // Keyset pages, so a large ledger does not sit in memory at once.
      int64_t after = 0;
      for (;;) {
        auto rows = tx.query(std::string("SELECT ") + kTransferColumns +
                                 " FROM ledger_transfers WHERE ledger = $1 AND seq > $2 ORDER BY seq LIMIT 5000",
                             {ledger, after});
        if (rows.empty()) break;
        for (const auto& r : rows) {
          Transfer t = transfer_of(r);
          after = t.seq;
          ++count;
          if (chain_ok) {
            if (t.seq != expect_seq) {
              fault("seq_gap", ledger, t.id, "", "expected transfer number " + std::to_string(expect_seq) + ", found " +
                                                      std::to_string(t.seq));
              chain_ok = false;
            } else if (t.prev_hash != prev) {
              fault("chain_broken", ledger, t.id, "", "prev_hash does not match the previous transfer's hash");
              chain_ok = false;
            } else if (chain_hash(prev, t) != t.hash) {
              fault("hash_mismatch", ledger, t.id, "", "the transfer's fields do not hash to its stored hash");
              chain_ok = false;
            }
          }
          prev = t.hash;
          expect_seq = t.seq + 1;
          if (ledger_of.count(t.debit_account_id) == 0 || ledger_of.count(t.credit_account_id) == 0 ||
              ledger_of[t.debit_account_id] != ledger || ledger_of[t.credit_account_id] != ledger)
            fault("ledger_mismatch", ledger, t.id, "", "a transfer's accounts are not on its ledger");
          if (t.amount < 0) fault("invalid_amount", ledger, t.id, "", "negative amount");
          auto& d = computed[t.debit_account_id];
          auto& c = computed[t.credit_account_id];
          if (t.kind == "posted") {
            add(d.debits_posted, t.amount, ledger, t.id);
            add(c.credits_posted, t.amount, ledger, t.id);
          } else if (t.kind == "pending") {
            add(d.debits_pending, t.amount, ledger, t.id);
            add(c.credits_pending, t.amount, ledger, t.id);
            pendings[t.id] = t;
          } else {
            auto it = pendings.find(t.pending_id.value_or(""));
            if (it == pendings.end()) {
              fault(resolved.count(t.pending_id.value_or("")) ? "resolved_twice" : "unknown_pending", ledger, t.id, "",
                    "resolves " + t.pending_id.value_or("") + ", which is not an open pending transfer");
              continue;
            }
            const Transfer& p = it->second;
            if (p.debit_account_id != t.debit_account_id || p.credit_account_id != t.credit_account_id)
              fault("invalid_resolution", ledger, t.id, "", "resolves a pending transfer between other accounts");
            if (t.kind == "post" && t.amount > p.amount)
              fault("invalid_resolution", ledger, t.id, "", "posts more than was pending");
            add(d.debits_pending, -p.amount, ledger, t.id);
            add(c.credits_pending, -p.amount, ledger, t.id);
            if (t.kind == "post") {
              add(d.debits_posted, t.amount, ledger, t.id);
              add(c.credits_posted, t.amount, ledger, t.id);
            }
            resolved.insert(p.id);
            pendings.erase(it);
          }
        }
      }
      if (chain_ok && (h.integer("seq") != expect_seq - 1 || h.text("hash") != prev))
        fault("head_mismatch", ledger, "", "", "the ledger's head does not name its last transfer");
      report.transfers += count;
      report.ledgers[ledger] = {{"transfers", count}, {"head_seq", h.integer("seq")}, {"head_hash", h.text("hash")},
                                {"open_pending", int64_t(pendings.size())}};
    }
    // Transfers on a ledger with no head.
    auto orphans = tx.query_one(
        "SELECT COUNT(*) AS n FROM ledger_transfers WHERE ledger NOT IN (SELECT ledger FROM ledger_heads)");
    if (orphans && orphans->integer("n") > 0) fault("head_missing", "", "", "", "transfers on a ledger without a head");

    // Every account's stored balances against its transfers; the totals per ledger.
    // A ledger's totals add up many accounts, each within int64: they may
    // pass 2^63 on a legal ledger, so they are summed in 128 bits.
    struct Totals {
      __int128 debits_pending = 0, debits_posted = 0, credits_pending = 0, credits_posted = 0;
    };
    auto total_json = [](__int128 v) -> json {
      if (v >= 0 && v <= __int128(UINT64_MAX)) return json(uint64_t(v));
      if (v < 0 && v >= __int128(INT64_MIN)) return json(int64_t(v));
      std::string digits;
      bool negative = v < 0;
      do {
        int d = int(v % 10);
        digits.insert(digits.begin(), char('0' + (d < 0 ? -d : d)));
        v /= 10;
      } while (v != 0);
      return json(negative ? "-" + digits : digits);
    };
    std::map<std::string, Totals> stored_totals;
    for (const auto& r : tx.query(std::string("SELECT ") + kAccountColumns + " FROM ledger_accounts ORDER BY id")) {
      Account a = account_of(r);
      ++report.accounts;
      Sums c = computed.count(a.id) ? computed[a.id] : Sums{};
      if (c.debits_pending != a.debits_pending || c.debits_posted != a.debits_posted ||
          c.credits_pending != a.credits_pending || c.credits_posted != a.credits_posted)
        fault("balance_mismatch", a.ledger, "", a.id,
              "stored balances " + std::to_string(a.debits_pending) + "/" + std::to_string(a.debits_posted) + "/" +
                  std::to_string(a.credits_pending) + "/" + std::to_string(a.credits_posted) +
                  " (debits pending/posted, credits pending/posted) but the transfers sum to " +
                  std::to_string(c.debits_pending) + "/" + std::to_string(c.debits_posted) + "/" +
                  std::to_string(c.credits_pending) + "/" + std::to_string(c.credits_posted));
      if ((a.flags & kDebitsMustNotExceedCredits) && __int128(a.debits_pending) + a.debits_posted > a.credits_posted)
        fault("limit_exceeded", a.ledger, "", a.id, "debits exceed credits on an account that forbids it");
      if ((a.flags & kCreditsMustNotExceedDebits) && __int128(a.credits_pending) + a.credits_posted > a.debits_posted)
        fault("limit_exceeded", a.ledger, "", a.id, "credits exceed debits on an account that forbids it");
      auto& totals = stored_totals[a.ledger];
      totals.debits_pending += a.debits_pending;
      totals.debits_posted += a.debits_posted;
      totals.credits_pending += a.credits_pending;
      totals.credits_posted += a.credits_posted;
    }
    for (const auto& [ledger, t] : stored_totals) {
      if (t.debits_pending != t.credits_pending || t.debits_posted != t.credits_posted)
        fault("totals_unbalanced", ledger, "", "", "total debits differ from total credits");
      if (report.ledgers.contains(ledger)) {
        report.ledgers[ledger]["debits_posted"] = total_json(t.debits_posted);
        report.ledgers[ledger]["credits_posted"] = total_json(t.credits_posted);
        report.ledgers[ledger]["debits_pending"] = total_json(t.debits_pending);
        report.ledgers[ledger]["credits_pending"] = total_json(t.credits_pending);
      }
    }
  });
  return report;
}

}  // namespace souq::ledger
