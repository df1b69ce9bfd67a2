// Phone sign-in with one-time codes (seed 000 "Authentication Service").
#include <sodium.h>

#include <cstdio>

#include "core/crypto.hpp"
#include "core/id.hpp"
#include "core/time.hpp"
#include "modules/identity/module.hpp"

namespace souq::identity {
namespace {

std::string code_hash(const std::string& secret, const std::string& phone, const std::string& code) {
  return crypto::base64url_encode(crypto::hmac_sha256(secret, phone + ":" + code));
}

std::string ago(TimePoint t, std::chrono::seconds d) {
  return format_time(t - std::chrono::duration_cast<std::chrono::milliseconds>(d));
}

}  // namespace

json Identity::request_otp(const std::string& phone, const std::string& ip, const std::string& request_id) {
  if (!sms_) throw ApiError(503, "sms_unavailable", "Phone sign-in is not configured on this server.");
  char code[8];
  std::snprintf(code, sizeof code, "%06u", randombytes_uniform(1000000));
  db_.write([&](db::Tx& tx) {
    auto t = now();
    tx.exec("INSERT INTO otp_throttle (phone, last_sent_at) VALUES ($1, '1970-01-01T00:00:00.000Z')"
            " ON CONFLICT DO NOTHING",
            {phone});
    if (tx.exec("UPDATE otp_throttle SET last_sent_at = $2 WHERE phone = $1 AND last_sent_at <= $3",
                {phone, format_time(t), ago(t, options_.otp_resend_cooldown)}) == 0) {
      auto last = parse_time(tx.query_one("SELECT last_sent_at FROM otp_throttle WHERE phone = $1", {phone})
                                 ->text("last_sent_at"));
      auto wait = std::chrono::duration_cast<std::chrono::seconds>(*last + options_.otp_resend_cooldown - t).count() + 1;
      throw ApiError(429, "otp_cooldown", "Wait before asking for another code.", {{"retry_after", int(wait)}});
    }
    auto hour_ago = ago(t, std::chrono::hours(1));
    if (tx.query_one("SELECT COUNT(*) AS n FROM otp_codes WHERE phone = $1 AND created_at > $2", {phone, hour_ago})
            ->integer("n") >= options_.otp_per_phone_per_hour)
      throw ApiError(429, "otp_rate_limited", "Too many codes for this phone. Try again later.",
                     {{"retry_after", 3600}});
    if (tx.query_one("SELECT COUNT(*) AS n FROM otp_codes WHERE ip = $1 AND created_at > $2", {ip, hour_ago})
            ->integer("n") >= options_.otp_per_ip_per_hour)
      throw ApiError(429, "otp_rate_limited", "Too many codes from this address. Try again later.",
                     {{"retry_after", 3600}});
    tx.exec("UPDATE otp_codes SET consumed_at = $2 WHERE phone = $1 AND consumed_at IS NULL", {phone, format_time(t)});
    tx.exec("INSERT INTO otp_codes (id, phone, code_hash, expires_at, ip, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            {new_id("otp"), phone, code_hash(secret_, phone, code),
             format_time(t + std::chrono::duration_cast<std::chrono::milliseconds>(options_.otp_ttl)), ip,
             format_time(t)});
    sms_->send(tx, phone,
               std::string("Your verification code is ") + code + ". It expires in " +
                   std::to_string(options_.otp_ttl.count() / 60) + " minutes. Never share it.",
               "otp", request_id);
  });
  sodium_memzero(code, sizeof code);
  return {{"sent", true},
          {"expires_in", options_.otp_ttl.count()},
          {"resend_after", options_.otp_resend_cooldown.count()}};
}

json Identity::verify_otp(const std::string& phone, const std::string& code, const std::string& display_name,
                          const Client& client) {
  enum class Outcome { ok, invalid, wrong, exhausted, suspended } outcome = Outcome::invalid;
  int attempts_left = 0;
  std::string user_id;
  bool created = false;
  db_.write([&](db::Tx& tx) {
    outcome = Outcome::invalid;
    created = false;
    auto t = now();
    auto row = tx.query_one("SELECT id, code_hash, attempts FROM otp_codes WHERE phone = $1 AND consumed_at IS NULL"
                            " AND expires_at > $2 ORDER BY id DESC LIMIT 1",
                            {phone, format_time(t)});
    if (!row) return;
    std::string otp_id = row->text("id");
    // Count the attempt first, with a guard, so racing guesses cannot exceed
    // three; RETURNING gives this attempt's number even when others raced.
    auto counted = tx.query_one("UPDATE otp_codes SET attempts = attempts + 1 WHERE id = $1 AND attempts < 3"
                                " RETURNING attempts",
                                {otp_id});
    if (!counted) {
      outcome = Outcome::exhausted;
      return;
    }
    if (!crypto::equal_constant_time(code_hash(secret_, phone, code), row->text("code_hash"))) {
      attempts_left = int(3 - counted->integer("attempts"));
      outcome = attempts_left > 0 ? Outcome::wrong : Outcome::exhausted;
      return;  // commits the counted attempt
    }
    if (tx.exec("UPDATE otp_codes SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL",
                {otp_id, format_time(t)}) == 0)
      return;  // another request used it a moment ago
    if (auto user = tx.query_one("SELECT id, status FROM users WHERE phone = $1", {phone})) {
      user_id = user->text("id");
      if (user->text("status") != "active") {
        outcome = Outcome::suspended;
        return;
      }
    } else {
      user_id = new_id("usr");
      created = true;
      auto stamp = format_time(t);
      tx.exec("INSERT INTO users (id, display_name, phone, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
              {user_id, display_name.empty() ? "User " + new_id("x").substr(22) : display_name, phone, stamp});
      tx.exec("INSERT INTO user_roles (user_id, role, granted_at) VALUES ($1, 'buyer', $2)", {user_id, stamp});
    }
    outcome = Outcome::ok;
  });
  switch (outcome) {
    case Outcome::invalid:
      throw ApiError(401, "otp_invalid", "The code is not valid. Ask for a new one.");
    case Outcome::wrong:
      throw ApiError(401, "otp_invalid", "The code is not right.", {{"attempts_left", attempts_left}});
    case Outcome::exhausted:
      throw ApiError(401, "otp_attempts_exceeded", "Too many wrong attempts. Ask for a new code.");
    case Outcome::suspended:
      throw ApiError(403, "account_suspended", "This account is suspended.");
    case Outcome::ok: break;
  }
  json data = start_session(user_id, client).to_json();
  data["user"] = me(user_id);
  data["new_user"] = created;
  return data;
}

}  // namespace souq::identity
