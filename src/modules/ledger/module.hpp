// The ledger module (ARCHITECTURE.md "Money"): double-entry accounts and
// immutable transfers, after TigerBeetle's model, kept in the SQL database.
//
//   - An account is on one ledger (a currency) and has a code saying what it
//     is for (user_wallet, escrow, platform_revenue, gateway_clearing,
//     payouts_in_transit) and flags (a wallet's debits must not exceed its
//     credits: it never goes negative).
//   - A transfer moves an amount from a debit account to a credit account on
//     the same ledger. Its id is the caller's and is its idempotency key: the
//     same id with the same fields returns the original; with other fields it
//     is refused (409 transfer_id_reused).
//   - Two-phase: a pending transfer reserves; a post (all or part, the rest
//     released), a void or its timeout resolves it, once.
//   - A batch is linked: every transfer of it is made or none is (they share
//     the caller's database transaction).
//   - Balances are updated in the same database transaction. Each ledger's
//     transfers form a SHA-256 hash chain; verify() recomputes the chain and
//     every balance from the transfers.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/blocking.hpp"
#include "core/json.hpp"
#include "db/database.hpp"
#include "http/router.hpp"
#include "jobs/queue.hpp"
#include "modules/identity/module.hpp"

namespace souq::ledger {

// Account flags.
inline constexpr int kDebitsMustNotExceedCredits = 1;
inline constexpr int kCreditsMustNotExceedDebits = 2;

// Account codes Souq itself uses.
namespace code {
inline constexpr const char* user_wallet = "user_wallet";
inline constexpr const char* escrow = "escrow";
inline constexpr const char* platform_revenue = "platform_revenue";
inline constexpr const char* gateway_clearing = "gateway_clearing";
inline constexpr const char* payouts_in_transit = "payouts_in_transit";
}  // namespace code

struct Account {
  std::string id, ledger, code, key;
  std::optional<std::string> owner_id;
  int flags = 0;
  int64_t debits_pending = 0, debits_posted = 0, credits_pending = 0, credits_posted = 0;
  std::string created_at;

  // What a wallet can spend now: credits posted minus debits posted and pending.
  int64_t available() const { return credits_posted - debits_posted - debits_pending; }
  json to_json() const;
};

struct AccountSpec {
  std::string ledger;  // ISO 4217 currency code
  std::string code;
  std::string key;     // unique: opening the same key again returns the account
  std::optional<std::string> owner_id;
  int flags = 0;
};

struct TransferSpec {
  std::string id;                 // the caller's; its idempotency key
  std::string kind = "posted";    // posted | pending | post | void
  std::string debit_account_id;   // posted, pending (post and void take the pending's)
  std::string credit_account_id;
  int64_t amount = 0;             // post: 0 means the whole pending amount; void: ignored
  std::string pending_id;         // post, void
  std::optional<std::chrono::seconds> timeout;  // pending: expires (voids) after this
  std::string code;               // what it is for: topup, escrow_hold, commission …
  std::string reference;          // what it is about: a payment, a transaction, a payout
};

struct Transfer {
  std::string id, ledger;
  int64_t seq = 0;
  std::string kind, debit_account_id, credit_account_id;
  int64_t amount = 0;
  std::optional<std::string> pending_id, timeout_at;
  std::string code, reference, batch_id, created_at, prev_hash, hash;

  json to_json() const;
};

struct Fault {
  std::string kind;     // chain_broken, hash_mismatch, seq_gap, balance_mismatch, totals_unbalanced, limit_exceeded, …
  std::string ledger;
  std::string transfer_id, account_id;
  std::string message;
  json to_json() const;
};

struct VerifyReport {
  bool ok = true;
  int64_t transfers = 0, accounts = 0;
  json ledgers = json::object();  // ledger → {transfers, head, debits_posted, credits_posted, …}
  std::vector<Fault> faults;      // in the order found; the first is the first fault
  json to_json() const;
};

// The state of a pending transfer: pending, posted, voided or expired.
struct PendingState {
  std::string state;
  std::optional<Transfer> resolution;
};

class Ledger {
 public:
  Ledger(db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox);
  // ledger.expire: voids pending transfers whose timeout has passed.
  void register_jobs();

  // Finds the account with spec.key or opens it. 422 `invalid_currency` for
  // an unknown ledger; 409 `account_key_reused` when the key names an account
  // with another ledger, code or flags.
  Account open(db::Tx& tx, const AccountSpec& spec);
  std::optional<Account> account(db::Tx& tx, const std::string& id);
  std::optional<Account> account_by_key(db::Tx& tx, const std::string& key);

  // Makes the transfers, linked: all or none (an error throws and the
  // caller's transaction rolls back). Returns them in order; a transfer
  // whose id already exists with the same fields is returned as it was.
  // Errors (ApiError): 422 invalid_amount, amount_overflow, ledger_mismatch,
  // same_account, not_pending, amount_exceeds_pending, invalid_transfer;
  // 404 account_not_found, pending_transfer_not_found; 409
  // transfer_id_reused, insufficient_funds, exceeds_debits,
  // pending_transfer_resolved (posted, voided or expired already).
  std::vector<Transfer> transfer(db::Tx& tx, const std::vector<TransferSpec>& batch, const std::string& request_id = "");
  Transfer transfer(db::Tx& tx, const TransferSpec& one, const std::string& request_id = "");

  std::optional<Transfer> find(db::Tx& tx, const std::string& id);
  PendingState pending_state(db::Tx& tx, const std::string& pending_id);

  // Transfers touching an account, newest first. Transfer ids are the
  // callers', so cursors are opaque (api::encode_cursor of an array, as
  // api::page_cursor_json reads them): [seq] here, [created_at, id] for
  // transfers().
  std::pair<json, json> history(db::Tx& tx, const std::string& account_id, const std::optional<json>& before, int limit);
  // Admin lists.
  std::pair<json, json> accounts(db::Tx& tx, const std::optional<std::string>& ledger,
                                 const std::optional<std::string>& code, const std::optional<std::string>& owner_id,
                                 const std::optional<std::string>& before, int limit);
  std::pair<json, json> transfers(db::Tx& tx, const std::optional<std::string>& account_id,
                                  const std::optional<std::string>& reference, const std::optional<json>& before, int limit);

  // Recomputes every ledger's hash chain and every account's balances from
  // the transfers, in one read snapshot, and checks the invariants.
  VerifyReport verify();

  // Voids the pending transfer if its timeout has passed and it is still
  // pending (the ledger.expire job; also callable by tests through it).
  void expire(db::Tx& tx, const std::string& pending_id, const std::string& request_id);

  db::Database& db() { return db_; }

 private:
  Transfer make(db::Tx& tx, const TransferSpec& spec, const std::string& batch_id, const std::string& request_id);
  // Locks a ledger's head row (making it if new): it orders that ledger's writers.
  db::Row lock_head(db::Tx& tx, const std::string& ledger);
  // What a transfer does to its debit and credit accounts' balances.
  struct Deltas {
    int64_t debits_pending, debits_posted, credits_pending, credits_posted;
  };
  // Writes `t` after `head` (its ledger's locked head: seq and hashes follow
  // from it) and applies `d` to its accounts.
  void append(db::Tx& tx, Transfer& t, const db::Row& head, const Deltas& d);

  db::Database& db_;
  jobs::Queue& queue_;
  jobs::Outbox& outbox_;
};

// The hash of a transfer given its predecessor's hash (exposed for tests).
std::string chain_hash(const std::string& prev_hash, const Transfer& t);

// Admin routes: GET/POST /api/v1/admin/ledger/accounts, GET
// /api/v1/admin/ledger/accounts/{id}, GET/POST /api/v1/admin/ledger/transfers,
// GET /api/v1/admin/ledger/verify.
void register_routes(api::Router& router, Ledger& ledger, identity::Identity& identity, BlockingPool& blocking);

}  // namespace souq::ledger
