// Wallets, payments and webhooks.
#include <algorithm>

#include "core/crypto.hpp"
#include "core/http_client.hpp"
#include "core/id.hpp"
#include "core/log.hpp"
#include "core/money.hpp"
#include "core/time.hpp"
#include "modules/audit/module.hpp"
#include "modules/payments/module.hpp"

namespace souq::payments {
namespace {

const char* kPaymentColumns =
    "id, payer_id, purpose, transaction_id, amount, currency, provider, status, provider_ref, client_secret, return_url, "
    "recipient, failure_code, failure_message, flag_reason, funded, created_at, updated_at, succeeded_at";

Payment payment_of(const db::Row& r) {
  Payment p;
  p.id = r.text("id");
  p.payer_id = r.text("payer_id");
  p.purpose = r.text("purpose");
  p.transaction_id = r.opt_text("transaction_id");
  p.amount = r.integer("amount");
  p.currency = r.text("currency");
  p.provider = r.text("provider");
  p.status = r.text("status");
  p.provider_ref = r.opt_text("provider_ref");
  p.client_secret = r.opt_text("client_secret");
  p.return_url = r.opt_text("return_url");
  p.recipient = r.text("recipient");
  p.failure_code = r.opt_text("failure_code");
  p.failure_message = r.opt_text("failure_message");
  p.flag_reason = r.opt_text("flag_reason");
  p.created_at = r.text("created_at");
  p.updated_at = r.text("updated_at");
  p.succeeded_at = r.opt_text("succeeded_at");
  return p;
}

const char* kWebhookColumns =
    "id, provider, headers, body, received_at, status, reason, event_id, event_type, payment_id, replays, processed_at";

json webhook_of(const db::Row& r) {
  return json{{"id", r.text("id")},
              {"provider", r.text("provider")},
              {"headers", r.json("headers")},
              {"body", r.text("body")},
              {"received_at", r.text("received_at")},
              {"status", r.text("status")},
              {"reason", r.nullable_text("reason")},
              {"event_id", r.nullable_text("event_id")},
              {"event_type", r.nullable_text("event_type")},
              {"payment_id", r.nullable_text("payment_id")},
              {"replays", r.integer("replays")},
              {"processed_at", r.nullable_text("processed_at")}};
}

json opt(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }

constexpr int kWebhookAttempts = 12;
constexpr int kSandboxDeliveryAttempts = 8;

}  // namespace

json Payment::to_json(const std::string& public_url) const {
  json out = {{"id", id},
              {"status", status},
              {"purpose", purpose},
              {"transaction_id", opt(transaction_id)},
              {"amount", amount},
              {"currency", currency},
              {"provider", provider},
              {"provider_ref", opt(provider_ref)},
              {"next_action", nullptr},
              {"failure", nullptr},
              {"flag_reason", opt(flag_reason)},
              {"created_at", created_at},
              {"updated_at", updated_at},
              {"succeeded_at", opt(succeeded_at)}};
  if (status == "pending" && provider == "sandbox")
    out["next_action"] = {{"type", "redirect"}, {"url", public_url + "/sandbox/checkout/" + id}};
  if (status == "pending" && provider == "stripe" && client_secret)
    out["next_action"] = {{"type", "stripe_client_secret"}, {"client_secret", *client_secret}};
  if (failure_code) out["failure"] = {{"code", *failure_code}, {"message", failure_message.value_or("")}};
  return out;
}

Payments::Payments(db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, identity::Identity& identity,
                   ledger::Ledger& ledger, transactions::Transactions& transactions, Options options)
    : db_(db),
      queue_(queue),
      outbox_(outbox),
      identity_(identity),
      ledger_(ledger),
      transactions_(transactions),
      options_(std::move(options)) {
  use_public_url(options_.public_url);
  for (const auto& name : options_.providers) {
    if (name == "wallet") continue;
    if (name == "sandbox") {
      log::warn("payments: the sandbox gateway is on; anyone can fund a wallet through it, so never enable it with real money",
                {{"providers", options_.providers}});
      gateways_[name] = make_sandbox(options_, [this] { return sandbox_secret(); }, [this] { return public_url(); });
    } else if (name == "stripe") {
      if (options_.stripe_secret_key.empty() || options_.stripe_webhook_secret.empty())
        throw std::invalid_argument("--payment-providers stripe needs --stripe-secret-key and --stripe-webhook-secret");
      gateways_[name] = make_stripe(options_);
    } else {
      throw std::invalid_argument("--payment-providers: unknown provider \"" + name + "\" (wallet, sandbox, stripe)");
    }
  }
}

std::string Payments::public_url() const {
  std::lock_guard lock(url_mutex_);
  return public_url_;
}

void Payments::use_public_url(const std::string& url) {
  std::lock_guard lock(url_mutex_);
  public_url_ = url;
  while (!public_url_.empty() && public_url_.back() == '/') public_url_.pop_back();
}

std::string Payments::default_payout_provider() const {
  for (const auto& name : options_.providers)
    if (gateways_.count(name)) return name;
  return "";
}

Gateway* Payments::gateway(const std::string& name) {
  auto it = gateways_.find(name);
  return it == gateways_.end() ? nullptr : it->second.get();
}

std::string Payments::sandbox_secret() {
  if (!options_.sandbox_secret.empty()) return options_.sandbox_secret;
  std::lock_guard lock(secret_mutex_);
  if (sandbox_secret_.empty()) {
    sandbox_secret_ = db_.write([&](db::Tx& tx) {
      tx.exec("INSERT INTO payment_secrets (provider, secret, created_at) VALUES ('sandbox', $1, $2) ON CONFLICT DO NOTHING",
              {"whsec_" + crypto::random_token(24), now_text()});
      return tx.query_one("SELECT secret FROM payment_secrets WHERE provider = 'sandbox'")->text("secret");
    });
  }
  return sandbox_secret_;
}

void Payments::register_jobs() {
  queue_.handle("payments.webhook", [this](const jobs::Job& job) {
    process_delivery(job.payload.value("delivery_id", ""), false, job.request_id);
  });
  queue_.handle("payments.payout", [this](const jobs::Job& job) {
    settle_payout(job.payload.value("payout_id", ""), job.request_id);
  });
  // The sandbox's gateway side: its webhook to this server, signed.
  queue_.handle("payments.sandbox_deliver", [this](const jobs::Job& job) {
    std::string body = job.payload.value("event", json::object()).dump();
    int64_t t = std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count();
    HttpRequest r;
    r.url = public_url() + "/api/v1/payments/webhooks/sandbox";
    r.headers = {{"Content-Type", "application/json"}, {"Souq-Signature", sign(body, sandbox_secret(), t)}};
    r.body = body;
    HttpResult res = http_call(r);
    if (res.status >= 200 && res.status < 300) return;
    if (res.status >= 400 && res.status < 500) {
      log::warn("sandbox webhook refused", {{"status", res.status}, {"body", res.body}});
      return;  // refused for good: retrying sends the same thing
    }
    throw std::runtime_error("sandbox webhook: " + (res.error.empty() ? "HTTP " + std::to_string(res.status) : res.error));
  });
}

// ---- accounts ------------------------------------------------------------

ledger::Account Payments::wallet(db::Tx& tx, const std::string& user_id, const std::string& currency) {
  return ledger_.open(tx, {currency, ledger::code::user_wallet, "wallet:" + user_id + ":" + currency, user_id,
                           ledger::kDebitsMustNotExceedCredits});
}

ledger::Account Payments::system_account(db::Tx& tx, const std::string& key, const std::string& code,
                                         const std::string& currency) {
  return ledger_.open(tx, {currency, code, key, std::nullopt, 0});
}

json Payments::wallets(db::Tx& tx, const std::string& user_id) {
  json out = json::array();
  for (const auto& a : ledger_.accounts(tx, std::nullopt, std::string(ledger::code::user_wallet), user_id, std::nullopt, 200)
                           .first) {
    int64_t balance = a["credits_posted"].get<int64_t>() - a["debits_posted"].get<int64_t>();
    int64_t held = a["debits_pending"].get<int64_t>();
    out.push_back({{"currency", a["ledger"]},
                   {"balance", balance},
                   {"held", held},
                   {"available", balance - held},
                   {"incoming", a["credits_pending"]},
                   {"account_id", a["id"]}});
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) { return a["currency"] < b["currency"]; });
  return out;
}

std::pair<json, json> Payments::wallet_history(db::Tx& tx, const std::string& user_id, const std::string& currency,
                                               const std::optional<json>& before, int limit) {
  auto account = ledger_.account_by_key(tx, "wallet:" + user_id + ":" + currency);
  if (!account) return {json::array(), nullptr};
  auto [items, next] = ledger_.history(tx, account->id, before, limit);
  json out = json::array();
  for (const auto& t : items) {
    std::string kind = t["kind"];
    // A void or expiry gives back what its pending transfer held.
    bool credited = t["credit_account_id"] == account->id;
    bool in = (kind == "void" || kind == "expire") ? !credited : credited;
    std::string effect = kind == "pending" ? "held" : kind == "post" ? "settled" : kind == "posted" ? "moved" : "released";
    out.push_back({{"id", t["id"]},
                   {"kind", kind},
                   {"effect", effect},
                   {"direction", in ? "in" : "out"},
                   {"amount", t["amount"]},
                   {"currency", currency},
                   {"code", t["code"]},
                   {"reference", t["reference"]},
                   {"pending_id", t["pending_id"]},
                   {"created_at", t["created_at"]}});
  }
  return {out, next};
}

// ---- payments --------------------------------------------------------------

std::optional<Payment> Payments::load_payment(db::Tx& tx, const std::string& id, bool lock) {
  auto r = tx.query_one(std::string("SELECT ") + kPaymentColumns + " FROM payments WHERE id = $1" +
                            std::string(lock ? tx.for_update() : ""),
                        {id});
  if (!r) return std::nullopt;
  return payment_of(*r);
}

std::optional<Payment> Payments::event_payment(db::Tx& tx, const std::string& provider, const GatewayEvent& ev, bool lock) {
  std::optional<Payment> p;
  if (!ev.payment_id.empty()) {
    p = load_payment(tx, ev.payment_id, lock);
  } else if (!ev.provider_ref.empty()) {
    if (auto r = tx.query_one("SELECT id FROM payments WHERE provider = $1 AND provider_ref = $2", {provider, ev.provider_ref}))
      p = load_payment(tx, r->text("id"), lock);
  }
  if (p && p->provider != provider) return std::nullopt;
  return p;
}

const transactions::Transition* Payments::payable(const transactions::Record& txn) const {
  const auto* process = transactions_.processes().find(txn.process, txn.process_version);
  if (!process) return nullptr;
  for (const auto& t : process->transitions) {
    if (!t.leaves(txn.state) || !t.allows("system")) continue;
    for (const auto& a : t.actions)
      if (a.name == "hold_payment") return &t;
  }
  return nullptr;
}

const transactions::Transition* Payments::resolution(const transactions::Record& txn, const std::string& action) const {
  const auto* process = transactions_.processes().find(txn.process, txn.process_version);
  if (!process) return nullptr;
  for (const auto& t : process->transitions) {
    if (!t.leaves(txn.state) || !t.allows("operator")) continue;
    for (const auto& a : t.actions)
      if (a.name == action) return &t;
  }
  return nullptr;
}

void Payments::publish_payment(db::Tx& tx, const Payment& p, const std::string& request_id) {
  auto now = load_payment(tx, p.id);
  json payload = now->to_json(public_url());
  payload["payment_id"] = p.id;
  payload["payer_id"] = p.payer_id;
  outbox_.emit(tx, "payment." + now->status, payload, p.id, request_id);
}

void Payments::require_provider(const std::string& provider) const {
  if (std::find(options_.providers.begin(), options_.providers.end(), provider) == options_.providers.end())
    throw ApiError::unprocessable("unknown_provider", "Payment provider \"" + provider + "\" is not enabled here.",
                                  {{"providers", options_.providers}});
}

json Payments::pay(const identity::Principal& who, const PayRequest& r, const std::string& request_id) {
  bool wallet_pay = r.provider == "wallet";
  require_provider(r.provider);
  if (wallet_pay && !r.transaction_id)
    throw ApiError::unprocessable("invalid_provider", "A top-up comes from a gateway, not from the wallet itself.");

  Payment p;
  p.id = r.payment_id.value_or(new_id("pay"));
  p.payer_id = who.user_id;
  p.provider = r.provider;
  p.recipient = options_.merchant_id;
  p.return_url = r.return_url;
  auto now = now_text();
  p.created_at = p.updated_at = now;

  json result = db_.write([&](db::Tx& tx) -> json {
    std::optional<transactions::Record> txn;
    if (r.transaction_id) {
      txn = transactions_.load(tx, *r.transaction_id);
      bool party = txn && (txn->buyer_id == who.user_id || txn->seller_id == who.user_id);
      if (!party || (r.order && txn->kind != "order")) throw ApiError::not_found("No such transaction.");
      if (txn->buyer_id != who.user_id) throw ApiError(403, "not_the_buyer", "Only the buyer pays for a transaction.");
      if (wallet_pay) return pay_from_wallet(tx, who.user_id, *txn, request_id);
      if (!payable(*txn))
        throw ApiError::conflict("not_payable", "This transaction does not wait for payment.", {{"state", txn->state}});
      p.purpose = "transaction";
      p.transaction_id = txn->id;
      p.amount = txn->amount;
      p.currency = txn->currency;
      if (p.amount <= 0) throw ApiError::conflict("not_payable", "This transaction has nothing to pay.");
    } else {
      p.purpose = "topup";
      p.amount = *r.topup_amount;
      p.currency = r.currency;
    }
    p.status = "pending";
    insert_payment(tx, p, std::nullopt);
    return load_payment(tx, p.id)->to_json(public_url());
  });
  if (wallet_pay) return result;

  Gateway* g = gateway(p.provider);
  Intent intent;
  try {
    intent = g->create(p);
  } catch (const ApiError& e) {
    db_.write([&](db::Tx& tx) {
      tx.exec("UPDATE payments SET status = 'failed', failure_code = $2, failure_message = $3, updated_at = $4 "
              "WHERE id = $1 AND status = 'pending'",
              {p.id, e.code(), std::string(e.what()), now_text()});
    });
    throw;
  }
  return db_.write([&](db::Tx& tx) {
    tx.exec("UPDATE payments SET provider_ref = $2, client_secret = $3, updated_at = $4 WHERE id = $1",
            {p.id, intent.provider_ref, intent.client_secret.empty() ? db::Value(nullptr) : db::Value(intent.client_secret),
             now_text()});
    return load_payment(tx, p.id)->to_json(public_url());
  });
}

void Payments::insert_payment(db::Tx& tx, const Payment& p, const std::optional<std::string>& funded) {
  tx.exec(std::string("INSERT INTO payments (") + kPaymentColumns +
              ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9, $10, NULL, NULL, NULL, $11, $12, $12, $13)",
          {p.id, p.payer_id, p.purpose, p.transaction_id ? db::Value(*p.transaction_id) : db::Value(nullptr), p.amount,
           p.currency, p.provider, p.status, p.return_url ? db::Value(*p.return_url) : db::Value(nullptr), p.recipient,
           funded ? db::Value(*funded) : db::Value(nullptr), p.created_at,
           p.succeeded_at ? db::Value(*p.succeeded_at) : db::Value(nullptr)});
}

json Payments::pay_from_wallet(db::Tx& tx, const std::string& payer_id, const transactions::Record& txn,
                               const std::string& request_id) {
  const auto* step = payable(txn);
  if (!step) throw ApiError::conflict("not_payable", "This transaction does not wait for payment.", {{"state", txn.state}});
  if (txn.amount <= 0) throw ApiError::conflict("not_payable", "This transaction has nothing to pay.");
  Payment p;
  p.id = new_id("pay");
  p.payer_id = payer_id;
  p.purpose = "transaction";
  p.transaction_id = txn.id;
  p.amount = txn.amount;
  p.currency = txn.currency;
  p.provider = "wallet";
  p.status = "succeeded";
  p.recipient = options_.merchant_id;
  p.created_at = p.updated_at = now_text();
  p.succeeded_at = p.created_at;
  insert_payment(tx, p, txn.id);
  // From the buyer's balance: the payment step holds it in escrow now
  // (409 insufficient_funds, and nothing happens, when it is short).
  transactions_.apply(tx, txn, step->name, {"system", ""}, "", request_id);
  publish_payment(tx, p, request_id);
  return load_payment(tx, p.id)->to_json(public_url());
}

json Payments::payment(db::Tx& tx, const std::string& id, const identity::Principal& who) {
  auto p = load_payment(tx, id);
  if (!p || (p->payer_id != who.user_id && !who.has_role("admin"))) throw ApiError::not_found("No such payment.");
  return p->to_json(public_url());
}

std::pair<json, json> Payments::list_payments(db::Tx& tx, const std::optional<std::string>& status,
                                              const std::optional<std::string>& before, int limit) {
  auto rows = db::newest_first(tx, std::string("SELECT ") + kPaymentColumns + " FROM payments", {{"status", status}},
                               before, limit);
  return db::page_of(rows, limit, [&](const db::Row& r) {
    json out = payment_of(r).to_json(public_url());
    out["payer_id"] = r.text("payer_id");
    return out;
  });
}

json Payments::review_payment(const identity::Principal& admin, const std::string& id, const std::string& decision,
                               const std::string& reason, const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto p = load_payment(tx, id, true);
    if (!p) throw ApiError::not_found("No such payment.");
    if (p->status != "flagged")
      throw ApiError::conflict("payment_not_flagged", "Only a flagged payment is reviewed; this one is " + p->status + ".",
                               {{"status", p->status}});
    std::string now = now_text();
    if (decision == "accept") {
      tx.exec("UPDATE payments SET status = 'succeeded', succeeded_at = $2, updated_at = $2 WHERE id = $1 AND status = 'flagged'",
              {id, now});
      succeed(tx, *p, request_id);
    } else {
      tx.exec("UPDATE payments SET status = 'failed', failure_code = 'rejected_in_review', failure_message = $2, "
              "updated_at = $3 WHERE id = $1 AND status = 'flagged'",
              {id, reason, now});
      publish_payment(tx, *p, request_id);
    }
    audit::record(tx, {admin.user_id, "payment.review", "payment", id, reason,
                       {{"decision", decision}, {"flag_reason", p->flag_reason.value_or("")}}, request_id});
    json out = load_payment(tx, id)->to_json(public_url());
    out["payer_id"] = p->payer_id;
    return out;
  });
}

void Payments::succeed(db::Tx& tx, const Payment& p, const std::string& request_id) {
  auto clearing = system_account(tx, "clearing:" + p.provider + ":" + p.currency, ledger::code::gateway_clearing, p.currency);
  auto w = wallet(tx, p.payer_id, p.currency);
  ledger::TransferSpec capture;
  capture.id = p.id + ":capture";
  capture.debit_account_id = clearing.id;
  capture.credit_account_id = w.id;
  capture.amount = p.amount;
  capture.code = p.purpose == "topup" ? "topup" : "payment";
  capture.reference = p.id;
  ledger_.transfer(tx, capture, request_id);
  if (p.purpose == "transaction" && p.transaction_id) {
    // Fund the transaction if it still waits; otherwise (cancelled, paid by
    // another payment) the money stays in the payer's wallet.
    auto txn = transactions_.load(tx, *p.transaction_id);
    const auto* step = txn ? payable(*txn) : nullptr;
    auto balance = ledger_.account(tx, w.id);
    if (step && balance->available() >= txn->amount && txn->currency == p.currency) {
      transactions_.apply(tx, *txn, step->name, {"system", ""}, "", request_id);
      tx.exec("UPDATE payments SET funded = $2 WHERE id = $1", {p.id, txn->id});
    } else {
      log::info("payment kept in wallet", {{"payment_id", p.id}, {"transaction_id", *p.transaction_id}});
    }
  }
  publish_payment(tx, p, request_id);
}

// ---- webhooks --------------------------------------------------------------

json Payments::receive_webhook(const std::string& provider, const std::map<std::string, std::string>& headers,
                               const std::string& body, const std::string& request_id) {
  Gateway* g = gateway(provider);
  if (!g) throw ApiError(404, "unknown_provider", "No payment provider \"" + provider + "\" is enabled here.");
  std::string id = new_id("whd");
  json header_json = json::object();
  for (const auto& [k, v] : headers) header_json[k] = v;
  // Kept before anything else is done with it: the evidence of what arrived.
  db_.write([&](db::Tx& tx) {
    tx.exec("INSERT INTO payment_webhooks (id, provider, headers, body, received_at, status) VALUES ($1, $2, $3, $4, $5, "
            "'received')",
            {id, provider, header_json.dump(), body, now_text()});
  });
  auto reject = [&](const ApiError& e) {
    db_.write([&](db::Tx& tx) {
      tx.exec("UPDATE payment_webhooks SET status = 'rejected', reason = $2 WHERE id = $1", {id, e.code()});
    });
    log::warn("payment webhook rejected", {{"delivery_id", id}, {"provider", provider}, {"code", e.code()},
                                           {"request_id", request_id}});
  };
  GatewayEvent ev;
  try {
    ev = g->verify(headers, body, true);
  } catch (const ApiError& e) {
    reject(e);
    throw;
  }
  std::optional<ApiError> refusal;
  json out = db_.write([&](db::Tx& tx) -> json {
    refusal.reset();
    auto set = [&](const std::string& status, const std::string& reason, const std::string& payment_id) {
      tx.exec("UPDATE payment_webhooks SET status = $2, reason = $3, event_id = $4, event_type = $5, payment_id = $6 "
              "WHERE id = $1",
              {id, status, reason.empty() ? db::Value(nullptr) : db::Value(reason), ev.id, ev.type,
               payment_id.empty() ? db::Value(nullptr) : db::Value(payment_id)});
      return json{{"id", id}, {"status", status}, {"event_id", ev.id}};
    };
    // Types Souq does not act on, and events about payments made elsewhere
    // on the same gateway account, are acknowledged and left alone.
    if (ev.outcome.empty()) return set("ignored", "unhandled_event_type", "");
    auto p = event_payment(tx, provider, ev, false);
    // Named only by the gateway's reference, and not one of ours: made elsewhere.
    if (!p && ev.payment_id.empty() && !ev.provider_ref.empty()) return set("ignored", "not_a_souq_payment", "");
    if (!p) {
      refusal = ApiError::unprocessable("unknown_payment", "The event names no payment of this provider.");
      return set("rejected", "unknown_payment", "");
    }
    if (tx.exec("INSERT INTO payment_events (provider, event_id, delivery_id, created_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING",
                {provider, ev.id, id, now_text()}) == 0)
      return set("duplicate", "", p->id);
    jobs::EnqueueOptions o;
    o.max_attempts = kWebhookAttempts;
    o.request_id = request_id;
    queue_.enqueue(tx, "payments.webhook", {{"delivery_id", id}}, o);
    return set("accepted", "", p->id);
  });
  if (refusal) throw *refusal;
  return out;
}

void Payments::process_delivery(const std::string& delivery_id, bool replay, const std::string& request_id) {
  auto row = db_.read([&](db::Tx& tx) {
    return tx.query_one("SELECT provider, headers, body FROM payment_webhooks WHERE id = $1", {delivery_id});
  });
  if (!row) return;
  Gateway* g = gateway(row->text("provider"));
  if (!g) throw std::runtime_error("payments: provider " + row->text("provider") + " is no longer enabled");
  std::map<std::string, std::string> headers;
  json stored_headers = row->json("headers");
  for (const auto& [k, v] : stored_headers.items()) headers[k] = v.is_string() ? v.get<std::string>() : "";
  // Signed when it arrived; checked again so a replay cannot skip it.
  GatewayEvent ev = g->verify(headers, row->text("body"), false);
  db_.write([&](db::Tx& tx) {
    auto mark = [&](const std::string& status, const std::string& reason, const std::string& payment_id) {
      tx.exec("UPDATE payment_webhooks SET status = $2, reason = $3, event_id = $4, event_type = $5, payment_id = $6, "
              "processed_at = $7, replays = replays + $8 WHERE id = $1",
              {delivery_id, status, reason.empty() ? db::Value(nullptr) : db::Value(reason), ev.id, ev.type,
               payment_id.empty() ? db::Value(nullptr) : db::Value(payment_id), now_text(), replay ? 1 : 0});
    };
    if (ev.outcome.empty()) return mark("ignored", "unhandled_event_type", "");
    auto p = event_payment(tx, row->text("provider"), ev, true);
    if (!p) return mark("rejected", "unknown_payment", "");
    std::string now = now_text();
    if (ev.outcome == "failed") {
      if (tx.exec("UPDATE payments SET status = 'failed', failure_code = $2, failure_message = $3, updated_at = $4 "
                  "WHERE id = $1 AND status = 'pending'",
                  {p->id, ev.failure_code.empty() ? "payment_failed" : ev.failure_code,
                   ev.failure_message.empty() ? "The gateway reported the payment as failed." : ev.failure_message, now}) == 1)
        publish_payment(tx, *p, request_id);
      return mark("processed", "", p->id);
    }
    // Seed 004's safety checks: the gateway must have collected exactly
    // this amount, in this currency, for this recipient.
    std::vector<std::string> mismatches;
    if (ev.amount != p->amount) mismatches.push_back("amount " + std::to_string(ev.amount) + " ≠ " + std::to_string(p->amount));
    if (ev.currency != p->currency) mismatches.push_back("currency " + ev.currency + " ≠ " + p->currency);
    if (ev.recipient != p->recipient) mismatches.push_back("recipient " + ev.recipient + " ≠ " + p->recipient);
    if (p->provider_ref && !ev.provider_ref.empty() && ev.provider_ref != *p->provider_ref)
      mismatches.push_back("gateway reference " + ev.provider_ref + " ≠ " + *p->provider_ref);
    if (!mismatches.empty()) {
      std::string why;
      for (const auto& m : mismatches) why += (why.empty() ? "" : "; ") + m;
      if (tx.exec("UPDATE payments SET status = 'flagged', flag_reason = $2, updated_at = $3 "
                  "WHERE id = $1 AND status IN ('pending', 'failed')",
                  {p->id, why, now}) == 1) {
        publish_payment(tx, *p, request_id);
        audit::record(tx, {"", "payment.flag", "payment", p->id, why, {{"delivery_id", delivery_id}}, request_id});
      }
      return mark("flagged", why, p->id);
    }
    if (tx.exec("UPDATE payments SET status = 'succeeded', succeeded_at = $2, updated_at = $2, failure_code = NULL, "
                "failure_message = NULL WHERE id = $1 AND status IN ('pending', 'failed')",
                {p->id, now}) == 1)
      succeed(tx, *p, request_id);
    mark(p->status == "flagged" ? "flagged" : "processed", p->status == "flagged" ? "payment_flagged" : "", p->id);
  });
}

json Payments::replay_webhook(const identity::Principal& admin, const std::string& id, const std::string& request_id) {
  auto provider = db_.read([&](db::Tx& tx) {
    auto r = tx.query_one("SELECT provider FROM payment_webhooks WHERE id = $1", {id});
    if (!r) throw ApiError::not_found("No such webhook delivery.");
    return r->text("provider");
  });
  if (!gateway(provider)) throw ApiError::conflict("unknown_provider", "Provider " + provider + " is not enabled here.");
  try {
    process_delivery(id, true, request_id);
  } catch (const ApiError& e) {
    db_.write([&](db::Tx& tx) {
      tx.exec("UPDATE payment_webhooks SET status = 'rejected', reason = $2, replays = replays + 1 WHERE id = $1",
              {id, e.code()});
      audit::record(tx, {admin.user_id, "payment_webhook.replay", "payment_webhook", id, e.code(), json::object(), request_id});
    });
    throw;
  }
  return db_.write([&](db::Tx& tx) {
    audit::record(tx, {admin.user_id, "payment_webhook.replay", "payment_webhook", id, "", json::object(), request_id});
    return webhook_of(*tx.query_one(std::string("SELECT ") + kWebhookColumns + " FROM payment_webhooks WHERE id = $1", {id}));
  });
}

std::pair<json, json> Payments::list_webhooks(db::Tx& tx, const std::optional<std::string>& status,
                                              const std::optional<std::string>& before, int limit) {
  auto rows = db::newest_first(tx, std::string("SELECT ") + kWebhookColumns + " FROM payment_webhooks",
                               {{"status", status}}, before, limit);
  return db::page_of(rows, limit, webhook_of);
}

// ---- the sandbox -------------------------------------------------------------

std::optional<Payment> Payments::sandbox_payment(const std::string& id) {
  return db_.read([&](db::Tx& tx) {
    auto p = load_payment(tx, id);
    if (!p || p->provider != "sandbox") return std::optional<Payment>();
    return p;
  });
}

json Payments::sandbox_complete(const std::string& payment_id, const std::string& outcome, const json& overrides,
                                const std::string& request_id) {
  if (!gateway("sandbox")) throw ApiError::not_found("The sandbox is not enabled here.");
  return db_.write([&](db::Tx& tx) {
    auto p = load_payment(tx, payment_id);
    if (!p || p->provider != "sandbox") throw ApiError::not_found("No such sandbox payment.");
    if (p->status != "pending")
      throw ApiError::conflict("payment_not_pending", "This payment is already " + p->status + ".", {{"status", p->status}});
    json data = {{"payment_id", p->id},
                 {"provider_ref", p->provider_ref.value_or("")},
                 {"amount", p->amount},
                 {"currency", p->currency},
                 {"recipient", p->recipient}};
    for (const char* key : {"amount", "currency", "recipient"})
      if (overrides.contains(key)) data[key] = overrides[key];
    if (outcome == "failed") {
      data["failure_code"] = "card_declined";
      data["failure_message"] = "The sandbox card was declined.";
    }
    json event = {{"id", new_id("evt")},
                  {"type", "payment." + outcome},
                  {"created", std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count()},
                  {"data", data}};
    jobs::EnqueueOptions o;
    o.max_attempts = kSandboxDeliveryAttempts;
    o.request_id = request_id;
    queue_.enqueue(tx, "payments.sandbox_deliver", {{"event", event}}, o);
    return json{{"event_id", event["id"]}, {"payment_id", p->id}, {"outcome", outcome},
                {"return_url", opt(p->return_url)}};
  });
}

}  // namespace souq::payments
