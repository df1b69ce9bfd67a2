// The payments module: wallets, payments through gateways, signed webhooks,
// escrow for transactions, commission, disputes and payouts. Every amount
// moves by ledger transfers (modules/ledger); these tables say what was asked
// of a gateway and what it answered.
//
// Accounts, per currency (the ledger):
//   wallet:{user}:{CUR}        user_wallet, never negative
//   clearing:{provider}:{CUR}  gateway_clearing: what the gateway owes us
//   escrow:{CUR}               escrow: buyers' money held for transactions
//   revenue:{CUR}              platform_revenue: commission
//   payouts:{provider}:{CUR}   payouts_in_transit: sent to people's banks
//
// Money paths (transfer ids are derived, so each step happens once):
//   payment confirmed  clearing → payer's wallet            {pay}:capture
//   hold_payment       wallet → escrow, pending             {txn}:escrow
//   release_escrow     post {txn}:escrow; escrow → seller's wallet minus
//                      commission, escrow → revenue         (linked)
//   refund             void {txn}:escrow (back to the buyer's wallet)
//   split (dispute)    post; escrow → buyer part, seller part minus commission
//   payout             wallet → payouts, pending; posted when the gateway
//                      paid, voided when it failed
#pragma once
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
#include "modules/ledger/module.hpp"
#include "modules/transactions/module.hpp"

namespace souq::payments {

struct Options {
  std::vector<std::string> providers = {"wallet", "sandbox"};
  std::string public_url = "http://127.0.0.1:8080";  // where the sandbox page and webhook reach this server
  std::string sandbox_secret;  // empty: made once and kept in the database
  std::string merchant_id = "souq";  // the recipient a gateway's event must name
  std::string stripe_base_url = "https://api.stripe.com";
  std::string stripe_secret_key, stripe_webhook_secret;
  std::chrono::seconds webhook_tolerance{300};
};

struct Payment {
  std::string id, payer_id, purpose;
  std::optional<std::string> transaction_id;
  int64_t amount = 0;
  std::string currency, provider, status;
  std::optional<std::string> provider_ref, client_secret, return_url;
  std::string recipient;
  std::optional<std::string> failure_code, failure_message, flag_reason;
  std::string created_at, updated_at;
  std::optional<std::string> succeeded_at;
  json to_json(const std::string& public_url) const;
};

struct Payout {
  std::string id, user_id, reference;
  int64_t amount = 0;
  std::string currency, provider, destination, status;
  std::optional<std::string> provider_ref, failure_message;
  std::string created_at, updated_at;
  json to_json() const;
};

// What a verified webhook delivery says.
struct GatewayEvent {
  std::string id;       // the provider's event id (deduplication)
  std::string type;     // as the provider names it
  std::string outcome;  // succeeded | failed | "" for a type Souq does not act on
  std::string payment_id, provider_ref;
  int64_t amount = 0;
  std::string currency, recipient;
  std::string failure_code, failure_message;
};

struct Intent {
  std::string provider_ref, client_secret;
  json next_action = nullptr;  // {type: redirect, url} for hosted pages
};

struct PayoutResult {
  bool paid = false;
  std::string provider_ref, failure;
};

// A payment gateway behind Souq's interface.
class Gateway {
 public:
  virtual ~Gateway() = default;
  virtual std::string name() const = 0;
  // Asks the gateway to collect `p`. Throws ApiError 502 gateway_error.
  virtual Intent create(const Payment& p) = 0;
  // Checks a delivery's signature (and, when check_age, its timestamp) and
  // reads it. Throws ApiError 400 invalid_signature / stale_signature /
  // invalid_event.
  virtual GatewayEvent verify(const std::map<std::string, std::string>& headers, const std::string& body,
                              bool check_age) = 0;
  // Sends a payout. Returns paid or failed for good; throws to be retried.
  virtual PayoutResult payout(const Payout& p) = 0;
};

// Signature scheme shared by Stripe and the sandbox: "t=<unix>,v1=<hex>",
// v1 = HMAC-SHA256(secret, "<t>.<body>"). Throws ApiError 400.
void verify_signature(const std::string& header, const std::string& body, const std::string& secret,
                      std::chrono::seconds tolerance, bool check_age);
std::string sign(const std::string& body, const std::string& secret, int64_t unix_time);

std::unique_ptr<Gateway> make_sandbox(const Options& options, std::function<std::string()> secret,
                                      std::function<std::string()> public_url);
std::unique_ptr<Gateway> make_stripe(const Options& options);

struct CommissionRule {
  std::string category;
  int basis_points = 0;
  json minimums = json::object();  // currency → minor units
};

class Payments {
 public:
  Payments(db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, identity::Identity& identity,
           ledger::Ledger& ledger, transactions::Transactions& transactions, Options options);

  // hold_payment, release_escrow, refund, split_escrow, open_dispute.
  void register_actions(transactions::Actions& actions);
  static void register_action_names(transactions::Actions& actions);  // for `souq processes check`
  // payments.webhook, payments.payout, payments.sandbox_deliver.
  void register_jobs();
  // The category a transaction's commission follows (wired by the app).
  void use_category_of(std::function<std::optional<std::string>(db::Tx&, const transactions::Record&)> fn) {
    category_of_ = std::move(fn);
  }

  // ---- wallets
  ledger::Account wallet(db::Tx& tx, const std::string& user_id, const std::string& currency);
  json wallets(db::Tx& tx, const std::string& user_id);
  std::pair<json, json> wallet_history(db::Tx& tx, const std::string& user_id, const std::string& currency,
                                       const std::optional<json>& before, int limit);

  // ---- payments
  struct PayRequest {
    std::optional<std::string> transaction_id;
    bool order = false;  // named as order_id: the transaction must be an order
    std::optional<int64_t> topup_amount;
    std::string currency;
    std::string provider;
    std::optional<std::string> return_url;
    std::optional<std::string> payment_id;  // the caller's choice (a checkout records it first); default a new one
  };
  json pay(const identity::Principal& who, const PayRequest& r, const std::string& request_id);
  // 422 unknown_provider (details.providers) unless --payment-providers names it.
  void require_provider(const std::string& provider) const;
  // Pays a transaction waiting for payment from the payer's wallet, in the
  // caller's transaction: a succeeded payment, and the process's payment
  // step (409 insufficient_funds when the balance is short; 409 not_payable).
  json pay_from_wallet(db::Tx& tx, const std::string& payer_id, const transactions::Record& txn,
                       const std::string& request_id);
  json payment(db::Tx& tx, const std::string& id, const identity::Principal& who);
  std::pair<json, json> list_payments(db::Tx& tx, const std::optional<std::string>& status,
                                      const std::optional<std::string>& before, int limit);
  // An admin's decision on a flagged payment, after checking with the
  // gateway: accept (the money did arrive as the payment says: it is
  // captured and funds what it was for) or reject (it fails; any money the
  // gateway took goes back there). Audited. 409 payment_not_flagged.
  json review_payment(const identity::Principal& admin, const std::string& id, const std::string& decision,
                      const std::string& reason, const std::string& request_id);

  // ---- webhooks
  // Stores the delivery, verifies it, deduplicates it and queues its
  // processing. Returns {id, status}. Throws 400/404 after storing.
  json receive_webhook(const std::string& provider, const std::map<std::string, std::string>& headers,
                       const std::string& body, const std::string& request_id);
  // Verifies (without the age check) and processes a stored delivery again.
  json replay_webhook(const identity::Principal& admin, const std::string& id, const std::string& request_id);
  std::pair<json, json> list_webhooks(db::Tx& tx, const std::optional<std::string>& status,
                                      const std::optional<std::string>& before, int limit);

  // ---- the sandbox's hosted page
  std::optional<Payment> sandbox_payment(const std::string& id);
  // The payer completes (or fails) the payment on the hosted page; the
  // sandbox then delivers a signed webhook to Souq. `overrides` (amount,
  // currency, recipient) let a test play a gateway that misreports.
  json sandbox_complete(const std::string& payment_id, const std::string& outcome, const json& overrides,
                        const std::string& request_id);

  // ---- payouts
  json request_payout(const identity::Principal& who, int64_t amount, const std::string& currency,
                      const std::string& reference, const std::string& destination, const std::string& provider,
                      const std::string& request_id);
  json payout(db::Tx& tx, const std::string& id, const identity::Principal& who);
  std::pair<json, json> list_payouts(db::Tx& tx, const std::string& user_id, const std::optional<std::string>& before,
                                     int limit);

  // ---- disputes
  json dispute(db::Tx& tx, const std::string& id, const identity::Principal& who);
  json transaction_disputes(db::Tx& tx, const std::string& transaction_id, const identity::Principal& who);
  json add_evidence(const identity::Principal& who, const std::string& dispute_id, const std::string& text,
                    const std::string& request_id);
  std::pair<json, json> list_disputes(db::Tx& tx, const std::optional<std::string>& status,
                                      const std::optional<std::string>& before, int limit);
  // outcome: release | refund | split (buyer_amount back to the buyer).
  json resolve_dispute(const identity::Principal& admin, const std::string& id, const std::string& outcome,
                       std::optional<int64_t> buyer_amount, const std::string& reason, const std::string& request_id);

  // ---- commission
  json commission_rules(db::Tx& tx);
  json put_commission_rule(const identity::Principal& admin, const CommissionRule& rule, const std::string& request_id);
  void delete_commission_rule(const identity::Principal& admin, const std::string& category,
                              const std::string& request_id);
  int64_t commission(db::Tx& tx, const transactions::Record& txn, int64_t amount);

  db::Database& db() { return db_; }
  const Options& options() const { return options_; }
  // Where the sandbox's page and webhook reach this server: --public-url, or
  // once the server has bound its port, http://127.0.0.1:<port>.
  std::string public_url() const;
  void use_public_url(const std::string& url);
  Gateway* gateway(const std::string& name);
  // The first gateway enabled (payouts that name none); "" when only the wallet is.
  std::string default_payout_provider() const;

 private:
  std::optional<Payment> load_payment(db::Tx& tx, const std::string& id, bool lock = false);
  // The row of a new payment; `funded`: the transaction it paid at once (wallet).
  void insert_payment(db::Tx& tx, const Payment& p, const std::optional<std::string>& funded);
  // The payment of `provider` an event names (by Souq's id, else by the
  // gateway's reference), or nullopt.
  std::optional<Payment> event_payment(db::Tx& tx, const std::string& provider, const GatewayEvent& ev, bool lock);
  ledger::Account system_account(db::Tx& tx, const std::string& key, const std::string& code, const std::string& currency);
  // The transition of txn's process that takes payment from its current
  // state (a system transition running hold_payment), or null.
  const transactions::Transition* payable(const transactions::Record& txn) const;
  const transactions::Transition* resolution(const transactions::Record& txn, const std::string& action) const;
  // Applies a confirmed payment: capture into the wallet, then fund the
  // transaction if it still waits for it.
  void succeed(db::Tx& tx, const Payment& p, const std::string& request_id);
  void process_delivery(const std::string& delivery_id, bool replay, const std::string& request_id);
  void settle_payout(const std::string& payout_id, const std::string& request_id);
  std::string sandbox_secret();
  void publish_payment(db::Tx& tx, const Payment& p, const std::string& request_id);
  // Escrow moves (the actions).
  void hold(transactions::ActionContext& c);
  void release(transactions::ActionContext& c, int64_t buyer_part);
  void refund(transactions::ActionContext& c);
  void split(transactions::ActionContext& c);
  void open_dispute(transactions::ActionContext& c);
  void close_disputes(db::Tx& tx, const std::string& transaction_id, const std::string& outcome);

  db::Database& db_;
  jobs::Queue& queue_;
  jobs::Outbox& outbox_;
  identity::Identity& identity_;
  ledger::Ledger& ledger_;
  transactions::Transactions& transactions_;
  Options options_;
  std::map<std::string, std::unique_ptr<Gateway>> gateways_;
  std::function<std::optional<std::string>(db::Tx&, const transactions::Record&)> category_of_;
  std::mutex secret_mutex_;
  std::string sandbox_secret_;
  mutable std::mutex url_mutex_;
  std::string public_url_;
};

// The wallet, payment, webhook, payout, dispute and commission routes, and
// the sandbox's hosted page at /sandbox/checkout/{id}.
void register_routes(api::Router& router, Payments& payments, identity::Identity& identity, api::Idempotency& idempotency,
                     BlockingPool& blocking);

}  // namespace souq::payments
