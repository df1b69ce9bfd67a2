// The ledger's admin routes: what an operator inspects, manual adjustments as
// linked batches (audited), and the verification of chains and balances.
#include <algorithm>

#include "core/id.hpp"
#include "core/validation.hpp"
#include "http/paging.hpp"
#include "http/response.hpp"
#include "modules/audit/module.hpp"
#include "modules/ledger/module.hpp"

namespace souq::ledger {
namespace {

void require_admin(const identity::Principal& who) {
  if (!who.has_role("admin")) throw ApiError(403, "forbidden", "Only admins see and move the ledger.");
}

// An account's or a transfer's code: the ledger's own vocabulary has
// underscores (user_wallet, escrow_hold, payout_failed), so an operator's
// may too: 1 to 60 lower-case letters, digits, '_' and '-', beginning and
// ending with a letter or digit.
std::optional<std::string> ledger_code(Validator& v, bool required) {
  auto code = v.text("code", 1, 60, required);
  if (!code) return std::nullopt;
  auto inner = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; };
  auto edge = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!edge(code->front()) || !edge(code->back()) || !std::all_of(code->begin(), code->end(), inner)) {
    v.fail("code", "must be 1 to 60 lower-case letters, digits, '_' and '-', beginning and ending with a letter or digit");
    return std::nullopt;
  }
  return code;
}

// An id Souq makes for its own transfers: "<souq id>:<step>".
bool souq_owned(const std::string& id) {
  auto colon = id.find(':');
  return colon != std::string::npos && is_id(std::string_view(id).substr(0, colon));
}

// One transfer of a POSTed batch.
TransferSpec transfer_spec(const json& body, const std::string& where) {
  if (!body.is_object()) throw ApiError::validation({{where, "must be an object"}});
  Validator v(body);
  v.only({"id", "kind", "debit_account_id", "credit_account_id", "amount", "pending_id", "timeout_seconds", "code",
          "reference"});
  TransferSpec s;
  s.id = v.text("id", 1, 200).value_or("");
  s.kind = v.one_of("kind", {"posted", "pending", "post", "void"}, false).value_or("posted");
  bool resolves = s.kind == "post" || s.kind == "void";
  s.debit_account_id = v.text("debit_account_id", 1, 64, !resolves).value_or("");
  s.credit_account_id = v.text("credit_account_id", 1, 64, !resolves).value_or("");
  // Zero, negative, fractional and overflowing amounts are refused here
  // (post may omit it: the whole pending amount).
  if (s.kind != "void") s.amount = v.amount("amount", 1, s.kind != "post").value_or(0);
  s.pending_id = v.text("pending_id", 1, 200, resolves).value_or("");
  if (auto t = v.integer("timeout_seconds", 1, 365LL * 24 * 3600, false)) s.timeout = std::chrono::seconds(*t);
  s.code = ledger_code(v, false).value_or("adjustment");
  s.reference = v.text("reference", 1, 200, false).value_or("");
  try {
    v.done();
  } catch (const ApiError& e) {
    json fields = json::object();
    for (const auto& [k, why] : e.details()["fields"].items()) fields[where + "." + k] = why;
    throw ApiError::validation(fields);
  }
  return s;
}

}  // namespace

void register_routes(api::Router& router, Ledger& ledger, identity::Identity& identity, BlockingPool& blocking) {
  router.get("/api/v1/admin/ledger/accounts", [&](api::Request& req) -> awaitable<api::Response> {
    int limit = api::page_limit(req);
    auto before = api::page_cursor(req);
    auto l = req.query_param("ledger"), code = req.query_param("code"), owner = req.query_param("owner_id");
    auto read = [&](db::Tx& tx, const identity::Principal& who) {
      require_admin(who);
      return ledger.accounts(tx, l, code, owner, before, limit);
    };
    auto [items, next] = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  router.get("/api/v1/admin/ledger/accounts/{id:id}", [&](api::Request& req) -> awaitable<api::Response> {
    auto read = [&](db::Tx& tx, const identity::Principal& who) {
      require_admin(who);
      auto a = ledger.account(tx, req.param("id"));
      if (!a) throw ApiError::not_found("No such account.");
      return a->to_json();
    };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  // A manual account (an operator's own: a bank, a correction account).
  router.post("/api/v1/admin/ledger/accounts", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    require_admin(who);
    Validator v(req.json_object());
    v.only({"ledger", "code", "key", "flags"});
    AccountSpec spec;
    spec.ledger = v.currency("ledger").value_or("");
    spec.code = ledger_code(v, true).value_or("");
    auto key = v.text("key", 1, 200, false);
    auto flags = v.strings("flags", 2, 1, 40, false).value_or(std::vector<std::string>{});
    for (const auto& f : flags) {
      if (f == "debits_must_not_exceed_credits") spec.flags |= kDebitsMustNotExceedCredits;
      else if (f == "credits_must_not_exceed_debits") spec.flags |= kCreditsMustNotExceedDebits;
      else v.fail("flags", "unknown flag " + f);
    }
    v.done();
    spec.key = key ? "manual:" + *key : "manual:" + new_id("key");
    co_return api::ok(req, co_await blocking.run([&] {
      return ledger.db().write([&](db::Tx& tx) {
        Account a = ledger.open(tx, spec);
        audit::record(tx, {who.user_id, "ledger.account.open", "ledger_account", a.id, "", {{"key", a.key}}, req.request_id});
        return a.to_json();
      });
    }), http::status::created);
  });

  router.get("/api/v1/admin/ledger/transfers", [&](api::Request& req) -> awaitable<api::Response> {
    int limit = api::page_limit(req);
    auto before = api::page_cursor_json(req);  // opaque: transfer ids are the callers'
    auto account = req.query_param("account_id"), reference = req.query_param("reference");
    auto read = [&](db::Tx& tx, const identity::Principal& who) {
      require_admin(who);
      return ledger.transfers(tx, account, reference, before, limit);
    };
    auto [items, next] = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  // A linked batch of transfers: every one is made or none is. Each
  // transfer's id is its idempotency key. Audited with the reason.
  router.post("/api/v1/admin/ledger/transfers", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    require_admin(who);
    const json& body = req.json_object();
    Validator v(body);
    v.only({"transfers", "reason"});
    auto reason = v.text("reason", 1, 500, false);
    if (!body.contains("transfers") || !body["transfers"].is_array() || body["transfers"].empty() ||
        body["transfers"].size() > 100)
      v.fail("transfers", "must be a list of 1 to 100 transfers");
    v.done();
    std::vector<TransferSpec> batch;
    for (size_t i = 0; i < body["transfers"].size(); ++i)
      batch.push_back(transfer_spec(body["transfers"][i], "transfers[" + std::to_string(i) + "]"));
    // Souq names its own transfers after what they are about ("pay_…:capture",
    // "deal_…:escrow", "po_…:hold"); an operator may neither take such an id
    // (Souq's step would then fail for good) nor post or void such a hold
    // (a payout or escrow would then be settled twice).
    for (size_t i = 0; i < batch.size(); ++i) {
      for (const auto* id : {&batch[i].id, &batch[i].pending_id})
        if (souq_owned(*id))
          throw ApiError::unprocessable("reserved_transfer_id",
                                        "Transfer " + *id + " belongs to Souq's own flows; use the payment, payout or "
                                        "dispute routes instead.",
                                        {{"index", i}, {"transfer_id", *id}});
    }
    co_return api::ok(req, co_await blocking.run([&] {
      return ledger.db().write([&](db::Tx& tx) {
        auto made = ledger.transfer(tx, batch, req.request_id);
        json out = json::array(), ids = json::array();
        for (const auto& t : made) {
          out.push_back(t.to_json());
          ids.push_back(t.id);
        }
        audit::record(tx, {who.user_id, "ledger.transfer", "ledger_batch", made.front().batch_id, reason.value_or(""),
                           {{"transfers", ids}}, req.request_id});
        return json{{"transfers", out}};
      });
    }), http::status::created);
  });

  router.get("/api/v1/admin/ledger/verify", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    require_admin(who);
    co_return api::ok(req, co_await blocking.run([&] { return ledger.verify().to_json(); }));
  });
}

}  // namespace souq::ledger
