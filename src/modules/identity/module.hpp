// The identity module's public face: accounts, sign-in, sessions and tokens,
// and the Principal every other module asks for ("who is calling?").
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/blocking.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "db/database.hpp"
#include "http/request.hpp"
#include "http/router.hpp"
#include "modules/identity/oidc.hpp"
#include "modules/identity/session_cache.hpp"
#include "modules/sms/module.hpp"

namespace souq::jobs {
class Outbox;
}

namespace souq::identity {

struct Options {
  std::string jwt_secret;  // empty: made once and kept in the database
  std::string issuer = "souq";
  std::chrono::seconds access_ttl{24 * 3600};        // seed 000: 24 h
  std::chrono::seconds refresh_ttl{30 * 24 * 3600};  // 30 days
  // Phone OTP (seed 000): codes live 10 minutes and allow 3 attempts.
  std::chrono::seconds otp_ttl{600};
  std::chrono::seconds otp_resend_cooldown{60};
  // Codes a phone may get in an hour when asked from one client address, and
  // from all addresses together (so that somebody else asking cannot use up
  // the owner's allowance unless they use several addresses).
  int otp_per_phone_per_hour = 5;
  int otp_per_phone_per_hour_all = 15;
  int otp_per_ip_per_hour = 20;
  // Wrong codes a phone may see in `otp_failure_window` before code sign-in
  // is closed for it (429): bounds guessing over days, not only per code.
  int otp_failures_per_phone = 20;
  std::chrono::seconds otp_failure_window{24 * 3600};
  // Password guessing: failed sign-ins allowed per email and per address in
  // the window before 429 (checked before any hashing, so it also bounds CPU).
  std::chrono::seconds login_window{15 * 60};
  int login_failures_per_email = 10;
  int login_failures_per_ip = 50;
  // Live sessions kept in memory (0: read every request's session from the
  // database), and how often a node reads the feed of sessions others ended.
  size_t session_cache_size = 100000;
  std::chrono::milliseconds session_feed_interval{200};
};

// Who is calling: a revoked session or a suspended account stops working on
// its next request (on this node at once; on others within one feed interval).
struct Principal {
  std::string user_id;
  std::string session_id;
  std::vector<std::string> roles;
  bool has_role(std::string_view role) const;
};

struct TokenPair {
  std::string access_token;
  std::string refresh_token;
  int64_t expires_in = 0;  // seconds until the access token expires
  json to_json() const;
};

// Where a sign-in comes from, kept on its session.
struct Client {
  std::string user_agent;
  std::string ip;
};

class Identity {
 public:
  Identity(db::Database& db, Options options);
  // Where OTP text messages go. Without it, OTP sign-in is unavailable (503).
  void use_sms(sms::Sms& sms) { sms_ = &sms; }
  // OpenID Connect providers. Without any, /auth/oidc is unavailable (503).
  void use_oidc(OidcVerifier verifier) { oidc_ = std::move(verifier); }
  // Where seller_profile.* events go (submitted, approved, rejected, and
  // updated when the account is suspended or restored), so that other
  // modules (search) follow sellers. Without it, no event is recorded.
  void use_outbox(jobs::Outbox& outbox) { outbox_ = &outbox; }

  // Signs in with a provider's ID token: the account linked to (issuer,
  // subject), else the account with the same email when the provider says it
  // is verified, else a new account. Returns {user, tokens…, new_user}.
  json sign_in_oidc(const std::string& id_token, const std::string& nonce, const Client& client);

  // Phone OTP. request_otp sends a code (202 whatever the phone's history: it
  // never reveals whether an account exists) or throws 429 with retry_after.
  json request_otp(const std::string& phone, const std::string& ip, const std::string& request_id);
  // Checks a code against the phone's live codes (the newest three: asking
  // again does not void a code already on its way); the first success for a
  // phone creates the account. Returns {user, tokens…, new_user}.
  json verify_otp(const std::string& phone, const std::string& code, const std::string& display_name,
                  const Client& client);

  // Loads or creates the signing secret. Call once at start-up.
  void start();

  // Blocking calls: run them on the blocking pool.
  // Creates an account with an already-hashed password and signs it in.
  std::pair<json, TokenPair> register_with_password(const std::string& email, const std::string& password_hash,
                                                    const std::string& display_name, const std::string& locale,
                                                    const Client& client);
  // The stored hash for an email, or nullopt (unknown email, or no password).
  std::optional<std::pair<std::string, std::string>> password_hash_for(const std::string& email);
  // 429 `too_many_attempts` when this email or address has failed too often lately.
  void check_login_throttle(const std::string& email, const std::string& ip);
  void record_login_failure(const std::string& email, const std::string& ip);
  TokenPair start_session(const std::string& user_id, const Client& client);
  TokenPair refresh(const std::string& refresh_token, const Client& client);
  void logout(const Principal& who);
  void logout_all(const std::string& user_id, const std::string& reason);
  std::optional<std::string> password_hash_of(const std::string& user_id);
  // Sets a new password hash and ends every other session of the user.
  void change_password(const Principal& who, const std::string& new_hash);

  // Checks the bearer token's form, signature and expiry: CPU only, cheap
  // enough for an I/O thread. Throws 401. The result is not yet a Principal:
  // check_session decides that, against the database.
  Principal verify_token(std::string_view authorization_header) const;
  // Fills in the claimed session's roles from memory and returns true, or
  // returns false: then check_session must read it.
  bool from_cache(Principal& claimed) const;
  // In the caller's transaction: the session is live and the account active
  // (401 session_revoked / 403 account_suspended); fills in the current roles
  // and remembers the session. `cache_generation` is session_cache().generation()
  // taken before the transaction began.
  Principal check_session(db::Tx& tx, Principal claimed, uint64_t cache_generation);
  // A verified claim made a Principal: from memory, else check_session in a
  // read transaction of its own.
  Principal resolve(const Principal& claimed);
  // verify_token, then resolve.
  Principal authenticate(std::string_view authorization_header);
  SessionCache& session_cache() { return cache_; }
  // Starts reading the feed of sessions other nodes ended (serve only).
  void follow_session_changes() { cache_.follow(db_, options_.session_feed_interval); }
  // Stops what start() and follow_session_changes() began; before the database closes.
  void stop() { cache_.stop(); }

  json me(const std::string& user_id);
  json me(db::Tx& tx, const std::string& user_id);
  // The caller's own account, reusing the roles check_session just read.
  json me(db::Tx& tx, const Principal& who);
  json update_me(const std::string& user_id, const json& changes);
  // Other modules add to public profiles (a seller's rating) without identity
  // knowing them: fn(tx, user ids, profiles by id) fills in what it owns, for
  // a whole page of users in one go.
  using ProfileExtension =
      std::function<void(db::Tx& tx, const std::vector<std::string>& user_ids, std::map<std::string, json>& profiles)>;
  void extend_profiles(ProfileExtension fn) { extensions_.push_back(std::move(fn)); }
  // Public summaries {id, display_name, avatar_url, is_seller, + extensions}
  // of these users (unknown ids are left out), for embedding in other
  // modules' documents without a call per user.
  std::map<std::string, json> summaries(db::Tx& tx, const std::vector<std::string>& user_ids);
  // True when the account exists and is not suspended.
  bool is_active(db::Tx& tx, const std::string& user_id);
  // True when the account exists (suspended or not).
  static bool exists(db::Tx& tx, const std::string& user_id);

  // 404 when there is no such active user. An admin viewer also sees
  // suspended accounts, with their status.
  json public_profile(db::Tx& tx, const std::string& user_id, const Principal* viewer);
  // Approved sellers' business names (their seller profiles), by user id.
  std::map<std::string, std::string> business_names(db::Tx& tx, const std::vector<std::string>& user_ids);

  // Push devices: one row per device id; registering again updates it (and
  // moves it to this user if another account had it).
  json register_device(const std::string& user_id, const std::string& device_id, const std::string& platform,
                       const std::string& push_token, const std::optional<std::string>& app_version);
  json devices(db::Tx& tx, const std::string& user_id);
  // 404 unless the device is the caller's.
  void remove_device(const std::string& user_id, const std::string& device_id);
  // A push provider said this token reaches no installation any more.
  bool forget_push_token(const std::string& push_token);

  // Moderation of people (admins). Each action is audited in its transaction.
  // `request_id` ties the audit entry to the request that made it.
  json warn(const Principal& admin, const std::string& user_id, const std::string& reason, const std::string& request_id);
  json suspend(const Principal& admin, const std::string& user_id, const std::string& reason,
               const std::string& request_id);
  json unsuspend(const Principal& admin, const std::string& user_id, const std::string& reason,
                 const std::string& request_id);
  // The same, in the caller's transaction (a report decided with its action).
  json warn(db::Tx& tx, const Principal& admin, const std::string& user_id, const std::string& reason,
            const std::string& request_id);
  void suspend(db::Tx& tx, const Principal& admin, const std::string& user_id, const std::string& reason,
               const std::string& request_id);

  // Seller applications.
  json apply_to_sell(const Principal& who, const json& fields);
  json my_seller_profile(const std::string& user_id);
  std::pair<json, json> seller_profiles(const std::string& status, const std::optional<std::string>& before, int limit);
  json decide_seller_profile(const Principal& admin, const std::string& profile_id, bool approve,
                             const std::string& reason, const std::string& request_id);
  // A seller profile by id, with its account's status (`user_status`:
  // active or suspended); nullopt when there is none.
  std::optional<json> seller_profile(db::Tx& tx, const std::string& profile_id);
  // Ids of every seller profile, in id order after `after` (reindexing).
  std::vector<std::string> seller_profile_ids(db::Tx& tx, const std::string& after, int limit);

  // The first admin, from the command line: creates the account, or makes an
  // existing account with this email an admin. Returns the user id.
  // With a phone (E.164), the admin can also sign in by OTP.
  // An existing account is promoted only with `promote_existing`; then every
  // session it has and every provider linked to it are ended first, so that
  // someone who registered the email before the operator keeps nothing.
  std::string create_admin(const std::string& email, const std::string& password_hash, const std::string& display_name,
                           const std::optional<std::string>& phone = std::nullopt, bool promote_existing = false);

  // Accounts for a seeded (demo or benchmark) marketplace: no password, no
  // phone; sellers come approved. Returns their ids.
  std::vector<std::string> seed_accounts(db::Tx& tx, int count, bool sellers, const std::string& name_prefix);

  const Options& options() const { return options_; }
  db::Database& db() { return db_; }

 private:
  void change_status(db::Tx& tx, const Principal& admin, const std::string& user_id, const char* from, const char* to,
                     const char* action, const std::string& reason, const std::string& request_id);
  // seller_profile.<what> {profile_id, user_id, status}, when there is an outbox.
  void seller_profile_event(db::Tx& tx, const std::string& what, const std::string& profile_id,
                            const std::string& request_id);
  TokenPair issue(db::Tx& tx, const std::string& user_id, const std::string& session_id);
  std::vector<std::string> roles_of(db::Tx& tx, const std::string& user_id);
  // Failed sign-ins (passwords and codes) where `column` ("account" or "ip")
  // is `value`, in the last `window`.
  int64_t failures(db::Tx& tx, const char* column, const std::string& value, std::chrono::seconds window);
  void record_failure(db::Tx& tx, const std::string& account, const std::string& ip);

  db::Database& db_;
  Options options_;
  std::string secret_;
  sms::Sms* sms_ = nullptr;
  jobs::Outbox* outbox_ = nullptr;
  OidcVerifier oidc_;
  SessionCache cache_;
  mutable VerifiedTokens tokens_;
  std::vector<ProfileExtension> extensions_;
};

// Argon2id (libsodium, interactive limits). Slow on purpose: call on a pool.
std::string hash_password(const std::string& password);
bool verify_password(const std::string& password, const std::string& hash);

// One user's entry in a summaries() result, or just {"id": …} when the
// account is not there.
json summary_of(const std::map<std::string, json>& people, const std::string& user_id);

class Policy;

// Routes under /api/v1/auth and /api/v1/users. `blocking` runs database work;
// `cpu` runs password hashing, so slow hashes never queue database calls.
void register_routes(api::Router& router, Identity& identity, BlockingPool& blocking, BlockingPool& cpu);
// Seller applications and admin moderation of people, and the audit log.
// (and, with `sms`, the list of text messages sent).
void register_moderation_routes(api::Router& router, Identity& identity, const Policy& policy, BlockingPool& blocking,
                                sms::Sms* sms);

// For other modules' routes: the caller, or 401/403.
awaitable<Principal> require_user(api::Request& req, Identity& identity, BlockingPool& blocking);

// A read in one trip to the blocking pool and one transaction, as `claimed`
// (a token already verified on the I/O thread) or as nobody: a session in
// memory needs no check; otherwise the session check shares fn's read
// transaction. fn(tx, const Principal* who), who null for nobody. (Two trips
// cost 40 % of an authenticated read's throughput; see docs/benchmarks.md.)
template <class F>
auto read_as(std::optional<Principal> claimed, Identity& identity, BlockingPool& blocking, F fn) {
  bool known = claimed && identity.from_cache(*claimed);
  return blocking.run([&identity, claimed = std::move(claimed), known, fn = std::move(fn)]() mutable {
    if (!claimed || known) return identity.db().read([&](db::Tx& tx) { return fn(tx, claimed ? &*claimed : nullptr); });
    uint64_t generation = identity.session_cache().generation();
    return identity.db().read([&](db::Tx& tx) {
      Principal who = identity.check_session(tx, *claimed, generation);
      return fn(tx, &who);
    });
  });
}

// An authenticated read: 401/403 unless the caller is signed in.
// fn(tx, const Principal& who).
template <class F>
auto authed_read(api::Request& req, Identity& identity, BlockingPool& blocking, F fn) {
  return read_as(identity.verify_token(req.header(http::field::authorization)), identity, blocking,
                 [fn = std::move(fn)](db::Tx& tx, const Principal* who) mutable { return fn(tx, *who); });
}

// A read open to everyone that also knows a signed-in caller: without an
// Authorization header fn(tx, nullptr); with one, the token must be good
// (401/403 as for authed_read). fn(tx, const Principal* viewer).
template <class F>
auto viewer_read(api::Request& req, Identity& identity, BlockingPool& blocking, F fn) {
  auto header = req.header(http::field::authorization);
  std::optional<Principal> claimed;
  if (!header.empty()) claimed = identity.verify_token(header);
  return read_as(std::move(claimed), identity, blocking, std::move(fn));
}

}  // namespace souq::identity
