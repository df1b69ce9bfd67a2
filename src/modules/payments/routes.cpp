#include <cctype>

#include "core/money.hpp"
#include "core/validation.hpp"
#include "http/paging.hpp"
#include "http/response.hpp"
#include "modules/payments/module.hpp"

namespace souq::payments {
namespace {

void require_admin(const identity::Principal& who) {
  if (!who.has_role("admin")) throw ApiError(403, "forbidden", "Only admins do this.");
}

std::string currency_param(const api::Request& req) {
  std::string c = req.param("currency");
  if (!Currency::find(c)) throw ApiError::validation({{"currency", "must be an ISO 4217 code such as EGP"}});
  return c;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

template <class F>
auto admin_page(api::Request& req, identity::Identity& identity, BlockingPool& blocking, F list) {
  int limit = api::page_limit(req);
  auto before = api::page_cursor(req);
  auto status = req.query_param("status");
  auto read = [list, status, before, limit](db::Tx& tx, const identity::Principal& who) {
    require_admin(who);
    return list(tx, status, before, limit);
  };
  return identity::authed_read(req, identity, blocking, read);
}

}  // namespace

void register_routes(api::Router& router, Payments& payments, identity::Identity& identity, api::Idempotency& idempotency,
                     BlockingPool& blocking) {
  // ---- wallets
  router.get("/api/v1/wallets", [&](api::Request& req) -> awaitable<api::Response> {
    auto read = [&](db::Tx& tx, const identity::Principal& who) { return payments.wallets(tx, who.user_id); };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.get("/api/v1/wallets/{currency}/transactions", [&](api::Request& req) -> awaitable<api::Response> {
    std::string currency = currency_param(req);
    int limit = api::page_limit(req);
    auto before = api::page_cursor_json(req);
    auto read = [&](db::Tx& tx, const identity::Principal& who) {
      return payments.wallet_history(tx, who.user_id, currency, before, limit);
    };
    auto [items, next] = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  // ---- payments
  router.post("/api/v1/payments", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"transaction_id", "order_id", "topup", "provider", "return_url"});
    Payments::PayRequest r;
    r.provider = v.text("provider", 1, 40).value_or("");
    r.return_url = v.url("return_url", false);
    auto txn = v.text("transaction_id", 1, 64, false);
    auto order = v.text("order_id", 1, 64, false);
    const json& body = req.body;
    int named = int(bool(txn)) + int(bool(order)) + int(body.contains("topup"));
    if (named != 1) v.fail("transaction_id", "name exactly one of transaction_id, order_id or topup");
    if (body.contains("topup")) {
      if (!body["topup"].is_object()) {
        v.fail("topup", "must be an object {amount, currency}");
      } else {
        Validator t(body["topup"]);
        t.only({"amount", "currency"});
        r.topup_amount = t.amount("amount", 1);
        r.currency = t.currency("currency").value_or("");
        try {
          t.done();
        } catch (const ApiError& e) {
          for (const auto& [k, why] : e.details()["fields"].items()) v.fail("topup." + k, why);
        }
      }
    }
    v.done();
    r.transaction_id = txn ? txn : order;
    r.order = bool(order);
    co_return co_await idempotency.run(req, who.user_id, blocking, [&]() -> awaitable<api::Response> {
      json out = co_await blocking.run([&] { return payments.pay(who, r, req.request_id); });
      co_return api::ok(req, std::move(out), http::status::created);
    });
  });

  router.get("/api/v1/payments/{id:id}", [&](api::Request& req) -> awaitable<api::Response> {
    auto read = [&](db::Tx& tx, const identity::Principal& who) { return payments.payment(tx, req.param("id"), who); };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  // A gateway's signed event. The raw body is what was signed: no JSON parsing before the check.
  router.post(
      "/api/v1/payments/webhooks/{provider}",
      [&](api::Request& req) -> awaitable<api::Response> {
        std::string provider = req.param("provider");
        std::map<std::string, std::string> headers;
        for (const auto& field : req.message) {
          std::string name(field.name_string());
          for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
          headers[name] = std::string(field.value());
        }
        std::string body = req.message.body();
        json out = co_await blocking.run([&] { return payments.receive_webhook(provider, headers, body, req.request_id); });
        co_return api::ok(req, std::move(out));
      },
      {.raw_body = true, .max_body = 256 * 1024});

  router.get("/api/v1/admin/payments", [&](api::Request& req) -> awaitable<api::Response> {
    auto [items, next] = co_await admin_page(req, identity, blocking, [&](db::Tx& tx, auto status, auto before, int limit) {
      return payments.list_payments(tx, status, before, limit);
    });
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  router.post("/api/v1/admin/payments/{id:id}/review", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    require_admin(who);
    Validator v(req.json_object());
    v.only({"decision", "reason"});
    auto decision = v.one_of("decision", {"accept", "reject"});
    auto reason = v.multiline("reason", 1, 2000);
    v.done();
    co_return api::ok(req, co_await blocking.run([&] {
      return payments.review_payment(who, req.param("id"), *decision, *reason, req.request_id);
    }));
  });

  router.get("/api/v1/admin/payments/webhooks", [&](api::Request& req) -> awaitable<api::Response> {
    auto [items, next] = co_await admin_page(req, identity, blocking, [&](db::Tx& tx, auto status, auto before, int limit) {
      return payments.list_webhooks(tx, status, before, limit);
    });
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  router.post("/api/v1/admin/payments/webhooks/{id:id}/replay", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    require_admin(who);
    co_return api::ok(req, co_await blocking.run([&] { return payments.replay_webhook(who, req.param("id"), req.request_id); }));
  });

  // ---- payouts
  router.post("/api/v1/payouts", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"amount", "currency", "reference", "destination", "provider"});
    auto amount = v.amount("amount", 1);
    auto currency = v.currency("currency");
    auto reference = v.text("reference", 1, 120);
    auto destination = v.text("destination", 1, 200);
    auto provider = v.text("provider", 1, 40, false);
    v.done();
    co_return co_await idempotency.run(req, who.user_id, blocking, [&]() -> awaitable<api::Response> {
      json out = co_await blocking.run([&] {
        return payments.request_payout(who, *amount, *currency, *reference, *destination,
                                       provider.value_or(payments.default_payout_provider()), req.request_id);
      });
      co_return api::ok(req, std::move(out), http::status::created);
    });
  });

  router.get("/api/v1/payouts", [&](api::Request& req) -> awaitable<api::Response> {
    int limit = api::page_limit(req);
    auto before = api::page_cursor(req);
    auto read = [&](db::Tx& tx, const identity::Principal& who) { return payments.list_payouts(tx, who.user_id, before, limit); };
    auto [items, next] = co_await identity::authed_read(req, identity, blocking, read);
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  router.get("/api/v1/payouts/{id:id}", [&](api::Request& req) -> awaitable<api::Response> {
    auto read = [&](db::Tx& tx, const identity::Principal& who) { return payments.payout(tx, req.param("id"), who); };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  // ---- disputes
  router.get("/api/v1/transactions/{id:id}/disputes", [&](api::Request& req) -> awaitable<api::Response> {
    auto read = [&](db::Tx& tx, const identity::Principal& who) {
      return payments.transaction_disputes(tx, req.param("id"), who);
    };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.get("/api/v1/disputes/{id:id}", [&](api::Request& req) -> awaitable<api::Response> {
    auto read = [&](db::Tx& tx, const identity::Principal& who) { return payments.dispute(tx, req.param("id"), who); };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.post("/api/v1/disputes/{id:id}/evidence", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    Validator v(req.json_object());
    v.only({"text"});
    auto text = v.multiline("text", 1, 5000);
    v.done();
    co_return api::ok(req, co_await blocking.run([&] {
      return payments.add_evidence(who, req.param("id"), *text, req.request_id);
    }), http::status::created);
  });

  router.get("/api/v1/admin/disputes", [&](api::Request& req) -> awaitable<api::Response> {
    auto [items, next] = co_await admin_page(req, identity, blocking, [&](db::Tx& tx, auto status, auto before, int limit) {
      return payments.list_disputes(tx, status, before, limit);
    });
    co_return api::ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
  });

  router.post("/api/v1/admin/disputes/{id:id}/resolve", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    require_admin(who);
    Validator v(req.json_object());
    v.only({"outcome", "buyer_amount", "reason"});
    auto outcome = v.one_of("outcome", {"release", "refund", "split"});
    auto buyer_amount = v.amount("buyer_amount", 1, outcome && *outcome == "split");
    auto reason = v.multiline("reason", 1, 2000);
    if (outcome && *outcome != "split" && buyer_amount) v.fail("buyer_amount", "only a split names the buyer's part");
    v.done();
    auto resolve = [&]() -> awaitable<api::Response> {
      json out = co_await blocking.run([&] {
        return payments.resolve_dispute(who, req.param("id"), *outcome, buyer_amount, *reason, req.request_id);
      });
      co_return api::ok(req, std::move(out));
    };
    if (!req.header("Idempotency-Key").empty()) co_return co_await idempotency.run(req, who.user_id, blocking, resolve);
    co_return co_await resolve();
  });

  // ---- commission
  router.get("/api/v1/admin/commission-rules", [&](api::Request& req) -> awaitable<api::Response> {
    auto read = [&](db::Tx& tx, const identity::Principal& who) {
      require_admin(who);
      return payments.commission_rules(tx);
    };
    co_return api::ok(req, co_await identity::authed_read(req, identity, blocking, read));
  });

  router.put("/api/v1/admin/commission-rules/{category}", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    require_admin(who);
    CommissionRule rule;
    rule.category = req.param("category");
    Validator v(req.json_object());
    v.only({"basis_points", "minimums"});
    if (rule.category != "*" && (rule.category.empty() || rule.category.size() > 60))
      v.fail("category", "must be a category slug or *");
    rule.basis_points = int(v.integer("basis_points", 0, 10000).value_or(0));
    const json& body = req.body;
    if (body.contains("minimums")) {
      if (!body["minimums"].is_object()) v.fail("minimums", "must be an object {currency: minor units}");
      else
        for (const auto& [cur, amount] : body["minimums"].items()) {
          if (!Currency::find(cur)) v.fail("minimums." + cur, "unknown currency");
          else if (!amount.is_number_integer() || amount.get<int64_t>() < 0 || amount.get<int64_t>() > 1'000'000'000'000'000LL)
            v.fail("minimums." + cur, "must be a whole number of minor units, 0 or more");
          else rule.minimums[cur] = amount;
        }
    }
    v.done();
    co_return api::ok(req, co_await blocking.run([&] { return payments.put_commission_rule(who, rule, req.request_id); }));
  });

  router.del("/api/v1/admin/commission-rules/{category}", [&](api::Request& req) -> awaitable<api::Response> {
    auto who = co_await identity::require_user(req, identity, blocking);
    require_admin(who);
    co_await blocking.run([&] { payments.delete_commission_rule(who, req.param("category"), req.request_id); });
    co_return api::ok(req, json{{"deleted", true}});
  });

  // ---- the sandbox's hosted page (a stand-in for a gateway's checkout)
  router.get("/sandbox/checkout/{id:id}", [&](api::Request& req) -> awaitable<api::Response> {
    std::string id = req.param("id");
    auto p = co_await blocking.run([&] { return payments.sandbox_payment(id); });
    if (!p) throw ApiError::not_found("No such sandbox payment.");
    std::string amount = Money(p->amount, p->currency).to_string();
    std::string page =
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Souq sandbox checkout</title>"
        "<meta name=\"viewport\" content=\"width=device-width\"></head><body style=\"font-family:sans-serif;max-width:28em;"
        "margin:3em auto\"><h1>Sandbox checkout</h1><p>No real money moves here.</p><p>Payment <code>" +
        html_escape(p->id) + "</code>: <strong>" + html_escape(amount) + "</strong> (" + html_escape(p->status) +
        ")</p>";
    if (p->status == "pending")
      page += "<form method=\"post\" action=\"/sandbox/checkout/" + html_escape(p->id) +
              "/complete\"><button name=\"outcome\" value=\"succeeded\">Pay</button> "
              "<button name=\"outcome\" value=\"failed\">Decline</button></form>";
    page += "</body></html>";
    co_return api::text_response(req, http::status::ok, "text/html; charset=utf-8", page);
  });

  router.post(
      "/sandbox/checkout/{id:id}/complete",
      [&](api::Request& req) -> awaitable<api::Response> {
        std::string id = req.param("id");
        std::string content_type(req.header(http::field::content_type));
        json fields = json::object();
        if (content_type.rfind("application/json", 0) == 0) {
          fields = json::parse(req.message.body(), nullptr, false);
          if (!fields.is_object()) throw ApiError::bad_request("invalid_body", "The body is not a JSON object.");
        } else {
          for (const auto& [k, val] : api::parse_form(req.message.body())) fields[k] = val;
        }
        std::string outcome = "succeeded";
        if (fields.contains("outcome")) outcome = fields["outcome"].is_string() ? fields["outcome"].get<std::string>() : "";
        if (outcome != "succeeded" && outcome != "failed")
          throw ApiError::validation({{"outcome", "must be succeeded or failed"}});
        json overrides = json::object();
        for (const char* key : {"amount", "currency", "recipient"})
          if (fields.contains(key)) overrides[key] = fields[key];
        json out = co_await blocking.run([&] { return payments.sandbox_complete(id, outcome, overrides, req.request_id); });
        bool browser = content_type.rfind("application/x-www-form-urlencoded", 0) == 0;
        if (browser && out["return_url"].is_string()) {
          api::Response res{http::status::see_other, req.message.version()};
          res.set(http::field::location, out["return_url"].get<std::string>());
          res.prepare_payload();
          co_return res;
        }
        if (browser)
          co_return api::text_response(req, http::status::ok, "text/html; charset=utf-8",
                                       "<!doctype html><html><body style=\"font-family:sans-serif\"><p>Done: the payment " +
                                           std::string(outcome == "succeeded" ? "went through" : "was declined") +
                                           ". You may close this page.</p></body></html>");
        co_return api::ok(req, std::move(out), http::status::accepted);
      },
      {.raw_body = true});
}

}  // namespace souq::payments
