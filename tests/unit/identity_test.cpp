#include <gtest/gtest.h>

#include "core/crypto.hpp"
#include "core/validation.hpp"
#include "modules/identity/jwt.hpp"
#include "modules/identity/module.hpp"

using namespace souq;
using namespace souq::identity;

namespace {
const std::string kSecret = "0123456789abcdef0123456789abcdef";
json claims(int64_t exp) { return {{"iss", "souq"}, {"sub", "usr_1"}, {"sid", "ses_1"}, {"exp", exp}}; }
}  // namespace

TEST(Jwt, SignsAndVerifies) {
  auto token = sign_hs256(claims(2000), kSecret);
  auto r = verify_hs256(token, kSecret, "souq", 1000);
  ASSERT_TRUE(r.claims);
  EXPECT_EQ((*r.claims)["sub"], "usr_1");
}

TEST(Jwt, RefusesExpiredForeignForgedAndAlgNone) {
  auto token = sign_hs256(claims(2000), kSecret);
  EXPECT_EQ(verify_hs256(token, kSecret, "souq", 2000).error, JwtError::expired);
  EXPECT_EQ(verify_hs256(token, kSecret, "other", 1000).error, JwtError::wrong_issuer);
  EXPECT_EQ(verify_hs256(token, "another secret of enough length!!", "souq", 1000).error, JwtError::bad_signature);
  auto dot = token.find('.');
  std::string none = crypto::base64url_encode(R"({"alg":"none"})") + token.substr(dot, token.rfind('.') - dot) + ".";
  EXPECT_EQ(verify_hs256(none, kSecret, "souq", 1000).error, JwtError::bad_algorithm);
  std::string rs = crypto::base64url_encode(R"({"alg":"RS256"})") + token.substr(dot);
  EXPECT_EQ(verify_hs256(rs, kSecret, "souq", 1000).error, JwtError::bad_algorithm);
  for (const std::string& bad : std::vector<std::string>{"", "a.b", "a.b.c.d", "!!.??.##", token + "x"})
    EXPECT_FALSE(verify_hs256(bad, kSecret, "souq", 1000).claims) << bad;
}

TEST(Jwt, NotBeforeIsHonoured) {
  auto c = claims(5000);
  c["nbf"] = 3000;
  auto token = sign_hs256(c, kSecret);
  EXPECT_EQ(verify_hs256(token, kSecret, "souq", 1000).error, JwtError::not_yet_valid);
  EXPECT_TRUE(verify_hs256(token, kSecret, "souq", 3000).claims);
}

TEST(Crypto, Base64UrlRoundTripsAndRejectsJunk) {
  std::string bytes("\x00\xff\xfe binary", 10);
  auto text = crypto::base64url_encode(bytes);
  EXPECT_EQ(text.find_first_of("+/="), std::string::npos);
  EXPECT_EQ(crypto::base64url_decode(text), bytes);
  EXPECT_FALSE(crypto::base64url_decode("abc$"));
  EXPECT_EQ(crypto::random_token(32).size(), 43u);
  EXPECT_NE(crypto::random_token(), crypto::random_token());
}

TEST(Passwords, Argon2idHashesVerifyAndDiffer) {
  auto a = hash_password("correct horse");
  auto b = hash_password("correct horse");
  EXPECT_EQ(a.rfind("$argon2id$", 0), 0u);
  EXPECT_NE(a, b) << "salted";
  EXPECT_TRUE(verify_password("correct horse", a));
  EXPECT_FALSE(verify_password("correct horsE", a));
  EXPECT_FALSE(verify_password("correct horse", "not a hash"));
}

TEST(Validator, CollectsEveryProblem) {
  json body = {{"email", "A@Example.COM"}, {"name", "  Ok  "}, {"locale", "english"}, {"extra", 1}, {"roles", {"admin"}}};
  Validator v(body);
  EXPECT_EQ(v.email("email"), "a@example.com");
  EXPECT_EQ(v.text("name", 1, 10), "Ok");
  EXPECT_FALSE(v.locale("locale"));
  EXPECT_FALSE(v.text("missing", 1, 10));
  v.forbid({"roles"}, "cannot be changed here");
  v.only({"email", "name", "locale", "roles"});
  try {
    v.done();
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 422);
    auto fields = e.details()["fields"];
    EXPECT_EQ(fields.size(), 4u) << fields.dump();
    EXPECT_EQ(fields["roles"], "cannot be changed here");
    EXPECT_EQ(fields["extra"], "is not a field of this request");
    EXPECT_TRUE(fields.contains("locale"));
    EXPECT_TRUE(fields.contains("missing"));
  }
}

TEST(Validator, EmailsAndUrls) {
  for (std::string good : {"a@b.co", "first.last+tag@sub.example.org"}) {
    json body = {{"e", good}};
    Validator v(body);
    EXPECT_TRUE(v.email("e")) << good;
  }
  for (std::string bad : {"", "a", "@b.co", "a@b", "a@.b.co", "a@b..co", "a b@c.co", "a@b@c.co", "a@b.co."}) {
    json body = {{"e", bad}};
    Validator v(body);
    EXPECT_FALSE(v.email("e")) << bad;
  }
  json urls = {{"u", "javascript:alert(1)"}, {"w", "https://x.example/a.png"}};
  Validator v(urls);
  EXPECT_FALSE(v.url("u"));
  EXPECT_TRUE(v.url("w"));
}

#include "db/migrations.hpp"
#include "modules/audit/module.hpp"
#include "test_db.hpp"

class AuditTest : public souq::test::EngineTest {};

TEST_P(AuditTest, TheDatabaseRefusesToChangeOrDeleteEntries) {
  auto db = database_.open();
  db::Migrator(*db, db::plan_migrations(db->engine(), db::embedded_migrations(), db::module_order())).migrate();
  auto id = db->write([](db::Tx& tx) {
    return audit::record(tx, {"usr_admin", "user.suspend", "user", "usr_1", "spam", {{"k", 1}}, "rid_1"});
  });
  EXPECT_THROW(db->write([&](db::Tx& tx) { tx.exec("UPDATE audit_log SET reason = 'edited' WHERE id = $1", {id}); }),
               db::Error);
  EXPECT_THROW(db->write([&](db::Tx& tx) { tx.exec("DELETE FROM audit_log WHERE id = $1", {id}); }), db::Error);
  auto [entries, next] = db->read([](db::Tx& tx) { return audit::list(tx, {}); });
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["reason"], "spam");
  EXPECT_EQ(entries[0]["details"]["k"], 1);
  EXPECT_TRUE(next.is_null());
}

SOUQ_ENGINES(AuditTest);

#include <future>

#include "modules/identity/session_cache.hpp"

class SessionCacheTest : public souq::test::EngineTest {};

namespace {
identity::CachedSession live(const std::string& user) { return {user, {"buyer"}, 4'000'000'000}; }
}  // namespace

TEST_P(SessionCacheTest, AReadThatRacedAForgetIsNotRemembered) {
  identity::SessionCache cache(10);
  auto before = cache.generation();
  cache.forget("usr_1", "ses_1");  // a logout committed while the read was under way
  cache.remember("ses_1", live("usr_1"), before);
  EXPECT_FALSE(cache.find("ses_1", "usr_1", 1));
  cache.remember("ses_1", live("usr_1"), cache.generation());
  EXPECT_TRUE(cache.find("ses_1", "usr_1", 1));
  EXPECT_FALSE(cache.find("ses_1", "usr_2", 1)) << "a session is only its own user's";
  EXPECT_FALSE(cache.find("ses_1", "usr_1", 4'000'000'000)) << "expired";
  cache.remember("ses_2", live("usr_1"), cache.generation());
  cache.remember("ses_3", live("usr_9"), cache.generation());
  cache.forget("usr_1", "");
  EXPECT_FALSE(cache.find("ses_1", "usr_1", 1));
  EXPECT_FALSE(cache.find("ses_2", "usr_1", 1));
  EXPECT_TRUE(cache.find("ses_3", "usr_9", 1)) << "other users keep theirs";
}

TEST_P(SessionCacheTest, ChangesReachOtherNodesThroughTheFeedAndAreForgottenAtCommitLocally) {
  auto db = database_.open();
  db::Migrator(*db, db::plan_migrations(db->engine(), db::embedded_migrations(), db::module_order())).migrate();
  identity::SessionCache here(100), there(100);
  EXPECT_EQ(there.poll(*db), 0);
  for (auto* c : {&here, &there}) {
    c->remember("ses_1", live("usr_1"), c->generation());
    c->remember("ses_2", live("usr_2"), c->generation());
  }
  EXPECT_THROW(db->write([&](db::Tx& tx) {
                 here.record(tx, "usr_1", "ses_1");
                 throw std::runtime_error("rolled back");
               }),
               std::runtime_error);
  EXPECT_TRUE(here.find("ses_1", "usr_1", 1)) << "a change that rolled back forgets nothing";
  EXPECT_EQ(there.poll(*db), 0);
  db->write([&](db::Tx& tx) { here.record(tx, "usr_1", "ses_1"); });
  EXPECT_FALSE(here.find("ses_1", "usr_1", 1)) << "forgotten at commit on the node that made the change";
  EXPECT_TRUE(there.find("ses_1", "usr_1", 1));
  EXPECT_EQ(there.poll(*db), 1);
  EXPECT_FALSE(there.find("ses_1", "usr_1", 1));
  EXPECT_TRUE(there.find("ses_2", "usr_2", 1));
  EXPECT_EQ(there.poll(*db), 0) << "each change is applied once";
  EXPECT_EQ(here.poll(*db), 0) << "a node skips its own changes";
}

// PostgreSQL numbers rows before commit, so a later number can become visible
// first; the feed must still deliver the earlier one when it commits.
TEST_P(SessionCacheTest, AChangeCommittedAfterALaterOneIsNotMissed) {
  if (GetParam() != "postgres") GTEST_SKIP() << "SQLite has one writer: numbers commit in order";
  auto db = database_.open();
  db::Migrator(*db, db::plan_migrations(db->engine(), db::embedded_migrations(), db::module_order())).migrate();
  identity::SessionCache writer(100), reader(100);
  reader.poll(*db);
  reader.remember("ses_slow", live("usr_slow"), reader.generation());
  reader.remember("ses_fast", live("usr_fast"), reader.generation());
  std::promise<void> inserted, go;
  auto slow = std::async(std::launch::async, [&] {
    db->write([&](db::Tx& tx) {
      writer.record(tx, "usr_slow", "ses_slow");
      inserted.set_value();
      go.get_future().wait();
    });
  });
  inserted.get_future().wait();
  db->write([&](db::Tx& tx) { writer.record(tx, "usr_fast", "ses_fast"); });
  EXPECT_EQ(reader.poll(*db), 1);
  EXPECT_FALSE(reader.find("ses_fast", "usr_fast", 1));
  EXPECT_TRUE(reader.find("ses_slow", "usr_slow", 1));
  go.set_value();
  slow.get();
  EXPECT_EQ(reader.poll(*db), 1);
  EXPECT_FALSE(reader.find("ses_slow", "usr_slow", 1));
  EXPECT_EQ(reader.poll(*db), 0);
}

SOUQ_ENGINES(SessionCacheTest);
