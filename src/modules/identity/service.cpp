#include <sodium.h>

#include <algorithm>

#include "core/crypto.hpp"
#include "core/id.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "modules/identity/jwt.hpp"
#include "modules/identity/module.hpp"

namespace souq::identity {
namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
}

ApiError unauthenticated(std::string code, std::string message) { return {401, std::move(code), std::move(message)}; }

json user_json(const db::Row& r, std::vector<std::string> roles) {
  return {{"id", r.text("id")},
          {"display_name", r.text("display_name")},
          {"email", r.nullable_text("email")},
          {"phone", r.nullable_text("phone")},
          {"locale", r.text("locale")},
          {"avatar_url", r.nullable_text("avatar_url")},
          {"status", r.text("status")},
          {"roles", std::move(roles)},
          {"created_at", r.text("created_at")}};
}

constexpr const char* kUserColumns = "id, display_name, email, phone, locale, avatar_url, status, created_at";

}  // namespace

bool Principal::has_role(std::string_view role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

json TokenPair::to_json() const {
  return {{"access_token", access_token},
          {"refresh_token", refresh_token},
          {"token_type", "Bearer"},
          {"expires_in", expires_in}};
}

std::string hash_password(const std::string& password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw std::runtime_error("password hashing ran out of memory");
  return out;
}

bool verify_password(const std::string& password, const std::string& hash) {
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

Identity::Identity(db::Database& db, Options options)
    : db_(db), options_(std::move(options)), cache_(options_.session_cache_size), tokens_(options_.session_cache_size) {}

void Identity::start() {
  if (!options_.jwt_secret.empty()) {
    if (options_.jwt_secret.size() < 32) throw std::invalid_argument("--jwt-secret must be at least 32 characters");
    secret_ = options_.jwt_secret;
    return;
  }
  secret_ = db_.write([&](db::Tx& tx) {
    tx.exec("INSERT INTO identity_keys (id, secret, created_at) VALUES ('jwt-hs256', $1, $2) ON CONFLICT DO NOTHING",
            {crypto::random_token(48), now_text()});
    return tx.query_one("SELECT secret FROM identity_keys WHERE id = 'jwt-hs256'")->text("secret");
  });
}

std::vector<std::string> Identity::roles_of(db::Tx& tx, const std::string& user_id) {
  std::vector<std::string> roles;
  for (const auto& r : tx.query("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role", {user_id}))
    roles.push_back(r.text("role"));
  return roles;
}

TokenPair Identity::issue(db::Tx& tx, const std::string& user_id, const std::string& session_id) {
  auto t = now();
  std::string refresh = crypto::random_token(32);
  tx.exec("INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
          {crypto::sha256_hex(refresh), session_id, format_time(t),
           format_time(t + std::chrono::duration_cast<std::chrono::milliseconds>(options_.refresh_ttl))});
  int64_t iat = unix_now();
  json claims = {{"iss", options_.issuer},
                 {"sub", user_id},
                 {"sid", session_id},
                 {"roles", roles_of(tx, user_id)},
                 {"iat", iat},
                 {"exp", iat + options_.access_ttl.count()}};
  return {sign_hs256(claims, secret_), refresh, options_.access_ttl.count()};
}

TokenPair Identity::start_session(const std::string& user_id, const Client& client) {
  return db_.write([&](db::Tx& tx) {
    auto status = tx.query_one("SELECT status FROM users WHERE id = $1", {user_id});
    if (!status || status->text("status") != "active")
      throw ApiError(403, "account_suspended", "This account is suspended.");
    auto t = now();
    std::string sid = new_id("ses");
    tx.exec("INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip)"
            " VALUES ($1, $2, $3, $3, $4, $5, $6)",
            {sid, user_id, format_time(t),
             format_time(t + std::chrono::duration_cast<std::chrono::milliseconds>(options_.refresh_ttl)),
             client.user_agent.substr(0, 300), client.ip});
    return issue(tx, user_id, sid);
  });
}

std::pair<json, TokenPair> Identity::register_with_password(const std::string& email, const std::string& hash,
                                                            const std::string& display_name,
                                                            const std::string& locale, const Client& client) {
  std::string user_id = new_id("usr");
  try {
    db_.write([&](db::Tx& tx) {
      auto t = now_text();
      tx.exec("INSERT INTO users (id, display_name, email, locale, password_hash, created_at, updated_at)"
              " VALUES ($1, $2, $3, $4, $5, $6, $6)",
              {user_id, display_name, email, locale, hash, t});
      tx.exec("INSERT INTO user_roles (user_id, role, granted_at) VALUES ($1, 'buyer', $2)", {user_id, t});
    });
  } catch (const db::ConstraintError& e) {
    if (e.kind() == db::ConstraintError::Kind::unique)
      throw ApiError::conflict("email_taken", "An account with this email exists. Sign in instead.");
    throw;
  }
  auto tokens = start_session(user_id, client);
  return {me(user_id), tokens};
}

std::optional<std::pair<std::string, std::string>> Identity::password_hash_for(const std::string& email) {
  return db_.read([&](db::Tx& tx) -> std::optional<std::pair<std::string, std::string>> {
    auto row = tx.query_one("SELECT id, password_hash FROM users WHERE email = $1", {email});
    if (!row || row->is_null("password_hash")) return std::nullopt;
    return std::make_pair(row->text("id"), row->text("password_hash"));
  });
}

int64_t Identity::failures(db::Tx& tx, const char* column, const std::string& value, std::chrono::seconds window) {
  return tx.query_one(std::string("SELECT COUNT(*) AS n FROM login_failures WHERE ") + column +
                          " = $1 AND created_at > $2",
                      {value, time_ago(window)})
      ->integer("n");
}

void Identity::record_failure(db::Tx& tx, const std::string& account, const std::string& ip) {
  tx.exec("INSERT INTO login_failures (id, account, ip, created_at) VALUES ($1, $2, $3, $4)",
          {new_id("lgf"), account, ip, now_text()});
  // Kept as long as the longest window that counts them.
  tx.exec("DELETE FROM login_failures WHERE created_at < $1",
          {time_ago(std::max(options_.login_window, options_.otp_failure_window))});
}

void Identity::check_login_throttle(const std::string& email, const std::string& ip) {
  auto [by_email, by_ip] = db_.read([&](db::Tx& tx) {
    return std::make_pair(failures(tx, "account", email, options_.login_window),
                          failures(tx, "ip", ip, options_.login_window));
  });
  if (by_email >= options_.login_failures_per_email || by_ip >= options_.login_failures_per_ip)
    throw ApiError(429, "too_many_attempts", "Too many failed sign-ins. Wait a while, or sign in another way.",
                   {{"retry_after", int(options_.login_window.count())}});
}

void Identity::record_login_failure(const std::string& email, const std::string& ip) {
  db_.write([&](db::Tx& tx) { record_failure(tx, email, ip); });
}

std::optional<std::string> Identity::password_hash_of(const std::string& user_id) {
  return db_.read([&](db::Tx& tx) -> std::optional<std::string> {
    auto row = tx.query_one("SELECT password_hash FROM users WHERE id = $1", {user_id});
    return row ? row->opt_text("password_hash") : std::nullopt;
  });
}

TokenPair Identity::refresh(const std::string& token, const Client& client) {
  enum class Outcome { ok, unknown, expired, reused, suspended };
  Outcome outcome = Outcome::ok;
  TokenPair pair;
  db_.write([&](db::Tx& tx) {
    outcome = Outcome::ok;
    auto t = now();
    auto row = tx.query_one(
        "SELECT rt.session_id, rt.used_at, rt.expires_at, s.user_id, s.revoked_at, s.expires_at AS session_expires_at,"
        " u.status"
        " FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id JOIN users u ON u.id = s.user_id"
        " WHERE rt.token_hash = $1",
        {crypto::sha256_hex(token)});
    if (!row || !row->is_null("revoked_at")) {
      outcome = Outcome::unknown;
      return;
    }
    std::string sid = row->text("session_id"), user_id = row->text("user_id");
    if (row->text("status") != "active") {
      outcome = Outcome::suspended;
      return;
    }
    if (row->text("expires_at") <= format_time(t) || row->text("session_expires_at") <= format_time(t)) {
      outcome = Outcome::expired;
      return;
    }
    // The guard makes the rotation single-use even when two requests race
    // with the same token: the loser is a reuse, and ends the family.
    bool rotated = row->is_null("used_at") &&
                   tx.exec("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
                           {crypto::sha256_hex(token), format_time(t)}) == 1;
    if (!rotated) {
      tx.exec("UPDATE sessions SET revoked_at = $2, revoked_reason = 'refresh_token_reused'"
              " WHERE id = $1 AND revoked_at IS NULL",
              {sid, format_time(t)});
      cache_.record(tx, user_id, sid);
      outcome = Outcome::reused;
      return;
    }
    tx.exec("UPDATE sessions SET last_used_at = $2, user_agent = $3, ip = $4 WHERE id = $1",
            {sid, format_time(t), client.user_agent.substr(0, 300), client.ip});
    pair = issue(tx, user_id, sid);
  });
  switch (outcome) {
    case Outcome::ok: return pair;
    case Outcome::unknown: throw unauthenticated("invalid_refresh_token", "The refresh token is not valid. Sign in again.");
    case Outcome::expired: throw unauthenticated("refresh_token_expired", "The refresh token has expired. Sign in again.");
    case Outcome::suspended: throw ApiError(403, "account_suspended", "This account is suspended.");
    case Outcome::reused:
      log::warn("refresh token reused: session revoked", {{"client_ip", client.ip}});
      throw unauthenticated("refresh_token_reused",
                            "This refresh token was already used. The session has been ended; sign in again.");
  }
  throw std::logic_error("unreachable");
}

void Identity::logout(const Principal& who) {
  db_.write([&](db::Tx& tx) {
    tx.exec("UPDATE sessions SET revoked_at = $2, revoked_reason = 'logout' WHERE id = $1 AND revoked_at IS NULL",
            {who.session_id, now_text()});
    cache_.record(tx, who.user_id, who.session_id);
  });
}

void Identity::logout_all(const std::string& user_id, const std::string& reason) {
  db_.write([&](db::Tx& tx) {
    tx.exec("UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE user_id = $1 AND revoked_at IS NULL",
            {user_id, now_text(), reason});
    cache_.record(tx, user_id);
  });
}

void Identity::change_password(const Principal& who, const std::string& new_hash) {
  db_.write([&](db::Tx& tx) {
    auto t = now_text();
    tx.exec("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1", {who.user_id, new_hash, t});
    tx.exec("UPDATE sessions SET revoked_at = $3, revoked_reason = 'password_changed'"
            " WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
            {who.user_id, who.session_id, t});
    cache_.record(tx, who.user_id);
  });
}

Principal Identity::authenticate(std::string_view header) { return resolve(verify_token(header)); }

Principal Identity::resolve(const Principal& claimed) {
  Principal who = claimed;
  if (from_cache(who)) return who;
  uint64_t generation = cache_.generation();
  return db_.read([&](db::Tx& tx) { return check_session(tx, claimed, generation); });
}

bool Identity::from_cache(Principal& claimed) const {
  auto roles = cache_.find(claimed.session_id, claimed.user_id, unix_now());
  if (roles) claimed.roles = std::move(*roles);
  return bool(roles);
}

Principal Identity::verify_token(std::string_view header) const {
  constexpr std::string_view kScheme = "Bearer ";
  if (header.empty()) throw unauthenticated("unauthenticated", "Sign in: send Authorization: Bearer <access token>.");
  if (header.size() <= kScheme.size() || !std::equal(kScheme.begin(), kScheme.end(), header.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      }))
    throw unauthenticated("invalid_token", "The Authorization header must be: Bearer <access token>.");
  std::string_view token = header.substr(kScheme.size());
  int64_t now_unix = unix_now();
  if (auto seen = tokens_.find(token, now_unix)) return Principal{std::move(seen->user_id), std::move(seen->session_id), {}};
  auto result = verify_hs256(token, secret_, options_.issuer, now_unix);
  if (!result.claims) {
    auto code = result.error == JwtError::expired ? "token_expired" : "invalid_token";
    throw unauthenticated(code, std::string("The access token is not accepted: ") + to_string(result.error) + ".");
  }
  const json& claims = *result.claims;
  if (!claims.contains("sub") || !claims["sub"].is_string() || !claims.contains("sid") || !claims["sid"].is_string())
    throw unauthenticated("invalid_token", "The access token lacks its subject or session.");
  tokens_.remember(token, {claims["sub"], claims["sid"], claims["exp"].get<int64_t>()});
  return Principal{claims["sub"], claims["sid"], {}};
}

Principal Identity::check_session(db::Tx& tx, Principal p, uint64_t cache_generation) {
  auto row = tx.query_one(
      "SELECT s.revoked_at, s.expires_at, u.status FROM sessions s JOIN users u ON u.id = s.user_id"
      " WHERE s.id = $1 AND s.user_id = $2",
      {p.session_id, p.user_id});
  if (!row || !row->is_null("revoked_at") || row->text("expires_at") <= now_text()) throw unauthenticated("session_revoked", "This session has ended. Sign in again.");
  if (row->text("status") != "active") throw ApiError(403, "account_suspended", "This account is suspended.");
  p.roles = roles_of(tx, p.user_id);
  if (auto expires = parse_time(row->text("expires_at")))
    cache_.remember(p.session_id,
                    {p.user_id, p.roles, std::chrono::duration_cast<std::chrono::seconds>(expires->time_since_epoch()).count()},
                    cache_generation);
  return p;
}

json Identity::me(const std::string& user_id) {
  return db_.read([&](db::Tx& tx) { return me(tx, user_id); });
}

json Identity::me(db::Tx& tx, const Principal& who) {
  auto row = tx.query_one(std::string("SELECT ") + kUserColumns + " FROM users WHERE id = $1", {who.user_id});
  if (!row) throw ApiError::not_found("No such user.");
  return user_json(*row, who.roles);
}

json Identity::me(db::Tx& tx, const std::string& user_id) {
  auto row = tx.query_one(std::string("SELECT ") + kUserColumns + " FROM users WHERE id = $1", {user_id});
  if (!row) throw ApiError::not_found("No such user.");
  return user_json(*row, roles_of(tx, user_id));
}

json Identity::update_me(const std::string& user_id, const json& changes) {
  db_.write([&](db::Tx& tx) {
    std::string sets;
    db::Params params = {user_id, now_text()};
    for (const char* field : {"display_name", "locale", "avatar_url"}) {
      if (!changes.contains(field)) continue;
      std::optional<std::string> value;
      if (!changes[field].is_null()) value = changes[field].get<std::string>();
      params.emplace_back(value);
      sets += std::string(", ") + field + " = $" + std::to_string(params.size());
    }
    tx.exec("UPDATE users SET updated_at = $2" + sets + " WHERE id = $1", params);
  });
  return me(user_id);
}

std::map<std::string, json> Identity::summaries(db::Tx& tx, const std::vector<std::string>& user_ids) {
  std::map<std::string, json> out;
  if (user_ids.empty()) return out;
  std::vector<std::string> ids(user_ids);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  db::Params params;
  std::string placeholders = db::bind_list(params, ids);
  for (const auto& r : tx.query("SELECT u.id, u.display_name, u.avatar_url, u.created_at,"
                                " EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id AND ur.role = 'seller')"
                                " AS is_seller FROM users u WHERE u.id IN (" + placeholders + ")",
                                params))
    out[r.text("id")] = {{"id", r.text("id")},
                         {"display_name", r.text("display_name")},
                         {"avatar_url", r.nullable_text("avatar_url")},
                         {"is_seller", r.boolean("is_seller")},
                         {"member_since", r.text("created_at")}};
  for (const auto& extend : extensions_) extend(tx, ids, out);
  return out;
}

std::map<std::string, std::string> Identity::business_names(db::Tx& tx, const std::vector<std::string>& user_ids) {
  std::map<std::string, std::string> out;
  if (user_ids.empty()) return out;
  db::Params params;
  std::string in = db::bind_list(params, user_ids);
  for (const auto& r : tx.query("SELECT user_id, business_name FROM seller_profiles WHERE status = 'approved'"
                                " AND user_id IN (" + in + ")",
                                params))
    out[r.text("user_id")] = r.text("business_name");
  return out;
}

json summary_of(const std::map<std::string, json>& people, const std::string& user_id) {
  auto it = people.find(user_id);
  return it != people.end() ? it->second : json{{"id", user_id}};
}

bool Identity::exists(db::Tx& tx, const std::string& user_id) {
  return bool(tx.query_one("SELECT 1 AS x FROM users WHERE id = $1", {user_id}));
}

bool Identity::is_active(db::Tx& tx, const std::string& user_id) {
  auto row = tx.query_one("SELECT status FROM users WHERE id = $1", {user_id});
  return row && row->text("status") == "active";
}

json Identity::public_profile(db::Tx& tx, const std::string& user_id, const Principal* viewer) {
  bool admin = viewer && viewer->has_role("admin");
  auto row = tx.query_one("SELECT status FROM users WHERE id = $1", {user_id});
  if (!row || (!admin && row->text("status") != "active")) throw ApiError::not_found("No such user.");
  json profile = summaries(tx, {user_id}).at(user_id);
  if (admin) profile["status"] = row->text("status");
  return profile;
}

}  // namespace souq::identity
