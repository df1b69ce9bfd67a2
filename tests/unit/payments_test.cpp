// Webhook signatures (Stripe's scheme, shared by the sandbox) and the
// ledger's hash chain.
#include <gtest/gtest.h>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/time.hpp"
#include "modules/ledger/module.hpp"
#include "modules/payments/module.hpp"

namespace souq {
namespace {

int64_t unix_now() { return std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count(); }

std::string code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    return e.code();
  }
  return "";
}

TEST(WebhookSignature, AcceptsItsOwnSignatureAndAnyMatchingV1) {
  const std::string body = R"({"id":"evt_1","type":"payment_intent.succeeded"})";
  std::string header = payments::sign(body, "whsec_test", unix_now());
  EXPECT_EQ(code_of([&] { payments::verify_signature(header, body, "whsec_test", std::chrono::seconds(300), true); }), "");
  // Stripe sends several v1 signatures while a secret is rolled: one match is enough.
  std::string t = header.substr(2, header.find(',') - 2);
  std::string rolled = "t=" + t + ",v1=" + std::string(64, 'a') + "," + header.substr(header.find("v1="));
  EXPECT_EQ(code_of([&] { payments::verify_signature(rolled, body, "whsec_test", std::chrono::seconds(300), true); }), "");
}

TEST(WebhookSignature, RefusesAnotherSecretAChangedBodyAndMalformedHeaders) {
  const std::string body = R"({"id":"evt_1"})";
  std::string header = payments::sign(body, "whsec_test", unix_now());
  auto check = [&](const std::string& h, const std::string& b, const std::string& secret) {
    return code_of([&] { payments::verify_signature(h, b, secret, std::chrono::seconds(300), true); });
  };
  EXPECT_EQ(check(header, body, "whsec_other"), "invalid_signature");
  EXPECT_EQ(check(header, body + " ", "whsec_test"), "invalid_signature");
  EXPECT_EQ(check("", body, "whsec_test"), "invalid_signature");
  EXPECT_EQ(check("v1=abc", body, "whsec_test"), "invalid_signature");
  EXPECT_EQ(check("t=abc,v1=abc", body, "whsec_test"), "invalid_signature");
  EXPECT_EQ(check("t=" + std::to_string(unix_now()), body, "whsec_test"), "invalid_signature");
}

TEST(WebhookSignature, StaleTimestampsAreRefusedExceptOnReplay) {
  const std::string body = R"({"id":"evt_2"})";
  std::string old = payments::sign(body, "s", unix_now() - 301);
  EXPECT_EQ(code_of([&] { payments::verify_signature(old, body, "s", std::chrono::seconds(300), true); }), "stale_signature");
  EXPECT_EQ(code_of([&] { payments::verify_signature(old, body, "s", std::chrono::seconds(300), false); }), "");
  std::string future = payments::sign(body, "s", unix_now() + 3600);
  EXPECT_EQ(code_of([&] { payments::verify_signature(future, body, "s", std::chrono::seconds(300), true); }),
            "stale_signature");
}

TEST(LedgerChain, EveryFieldIsCoveredByTheHash) {
  ledger::Transfer t;
  t.id = "tr_1";
  t.ledger = "EGP";
  t.seq = 1;
  t.kind = "posted";
  t.debit_account_id = "acct_a";
  t.credit_account_id = "acct_b";
  t.amount = 100;
  t.code = "topup";
  t.batch_id = "batch_1";
  t.created_at = "2026-11-23T00:00:00.000Z";
  const std::string genesis(64, '0');
  std::string h = ledger::chain_hash(genesis, t);
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(h, ledger::chain_hash(genesis, t));
  EXPECT_NE(h, ledger::chain_hash(std::string(64, '1'), t));
  auto differs = [&](auto change) {
    ledger::Transfer u = t;
    change(u);
    return ledger::chain_hash(genesis, u) != h;
  };
  EXPECT_TRUE(differs([](auto& u) { u.amount = 101; }));
  EXPECT_TRUE(differs([](auto& u) { u.debit_account_id = "acct_c"; }));
  EXPECT_TRUE(differs([](auto& u) { u.credit_account_id = "acct_c"; }));
  EXPECT_TRUE(differs([](auto& u) { u.kind = "pending"; }));
  EXPECT_TRUE(differs([](auto& u) { u.seq = 2; }));
  EXPECT_TRUE(differs([](auto& u) { u.pending_id = "tr_0"; }));
  EXPECT_TRUE(differs([](auto& u) { u.reference = "pay_1"; }));
  EXPECT_TRUE(differs([](auto& u) { u.created_at = "2026-11-23T00:00:00.001Z"; }));
  // Fields do not run into each other: moving a character between two changes the hash.
  EXPECT_TRUE(differs([](auto& u) {
    u.code = "topu";
    u.reference = "p";
  }));
}

}  // namespace
}  // namespace souq
