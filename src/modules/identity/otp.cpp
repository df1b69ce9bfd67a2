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

}  // namespace

json Identity::request_otp(const std::string& phone, const std::string& ip, const std::string& request_id) {
  if (!sms_) throw ApiError(503, "sms_unavailable", "Phone sign-in is not configured on this server.");
  char code[8];
  std::snprintf(code, sizeof code, "%06u", randombytes_uniform(1000000));
  db_.write([&](db::Tx& tx) {
    auto t = now();
    auto hour_ago = time_ago(std::chrono::hours(1), t);
    // The cool-down per phone and address, as a guarded claim: two racing
    // requests cannot both send.
    tx.exec("DELETE FROM otp_throttle WHERE last_sent_at < $1", {hour_ago});
    tx.exec("INSERT INTO otp_throttle (phone, ip, last_sent_at) VALUES ($1, $2, '1970-01-01T00:00:00.000Z')"
            " ON CONFLICT DO NOTHING",
            {phone, ip});
    if (tx.exec("UPDATE otp_throttle SET last_sent_at = $3 WHERE phone = $1 AND ip = $2 AND last_sent_at <= $4",
                {phone, ip, format_time(t), time_ago(options_.otp_resend_cooldown, t)}) == 0) {
      auto last = parse_time(tx.query_one("SELECT last_sent_at FROM otp_throttle WHERE phone = $1 AND ip = $2",
                                          {phone, ip})->text("last_sent_at"));
      auto wait = std::chrono::duration_cast<std::chrono::seconds>(*last + options_.otp_resend_cooldown - t).count() + 1;
      throw ApiError(429, "otp_cooldown", "Wait before asking for another code.", {{"retry_after", int(wait)}});
    }
    auto count = [&](const std::string& where, const db::Params& params) {
      return tx.query_one("SELECT COUNT(*) AS n FROM otp_codes WHERE " + where, params)->integer("n");
    };
    auto limited = [](const char* message) {
      return ApiError(429, "otp_rate_limited", message, {{"retry_after", 3600}});
    };
    if (count("phone = $1 AND ip = $2 AND created_at > $3", {phone, ip, hour_ago}) >= options_.otp_per_phone_per_hour ||
        count("phone = $1 AND created_at > $2", {phone, hour_ago}) >= options_.otp_per_phone_per_hour_all)
      throw limited("Too many codes for this phone. Try again later.");
    if (count("ip = $1 AND created_at > $2", {ip, hour_ago}) >= options_.otp_per_ip_per_hour)
      throw limited("Too many codes from this address. Try again later.");
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
  enum class Outcome { ok, invalid, wrong, exhausted, suspended, locked } outcome = Outcome::invalid;
  int attempts_left = 0;
  std::string user_id;
  bool created = false;
  const std::string account = "phone:" + phone;
  db_.write([&](db::Tx& tx) {
    outcome = Outcome::invalid;
    created = false;
    attempts_left = 0;
    if (failures(tx, "account", account, options_.otp_failure_window) >= options_.otp_failures_per_phone ||
        failures(tx, "ip", client.ip, options_.login_window) >= options_.login_failures_per_ip) {
      outcome = Outcome::locked;
      return;
    }
    auto t = now();
    auto live = tx.query("SELECT id, code_hash FROM otp_codes WHERE phone = $1 AND consumed_at IS NULL"
                         " AND expires_at > $2 ORDER BY id DESC LIMIT 3",
                         {phone, format_time(t)});
    if (live.empty()) return;
    // Count the attempt on each live code first, with a guard, so racing
    // guesses cannot compare against a code more than three times; RETURNING
    // gives this attempt's number even when others raced.
    std::string matched;
    bool counted_any = false;
    auto hash = code_hash(secret_, phone, code);
    for (const auto& row : live) {
      auto counted = tx.query_one("UPDATE otp_codes SET attempts = attempts + 1 WHERE id = $1 AND attempts < 3"
                                  " AND consumed_at IS NULL RETURNING attempts",
                                  {row.text("id")});
      if (!counted) continue;
      counted_any = true;
      if (crypto::equal_constant_time(hash, row.text("code_hash"))) matched = row.text("id");
      attempts_left = std::max(attempts_left, int(3 - counted->integer("attempts")));
    }
    if (!counted_any) {
      outcome = Outcome::exhausted;
      return;
    }
    if (matched.empty()) {
      record_failure(tx, account, client.ip);
      outcome = attempts_left > 0 ? Outcome::wrong : Outcome::exhausted;
      return;  // commits the counted attempts
    }
    // Signed in: this code and every other live one for the phone are spent.
    tx.exec("UPDATE otp_codes SET consumed_at = $2 WHERE phone = $1 AND consumed_at IS NULL", {phone, format_time(t)});
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
    case Outcome::locked:
      throw ApiError(429, "too_many_attempts",
                     "Too many wrong codes for this phone or from this address. Wait a while, or sign in another way.",
                     {{"retry_after", int(options_.login_window.count())}});
    case Outcome::ok: break;
  }
  json data = start_session(user_id, client).to_json();
  data["user"] = me(user_id);
  data["new_user"] = created;
  return data;
}

}  // namespace souq::identity
