// Admin actions on people and seller applications, each with its audit entry
// in the same transaction.
#include "core/id.hpp"
#include "core/time.hpp"
#include "jobs/queue.hpp"
#include "modules/audit/module.hpp"
#include "modules/identity/module.hpp"

namespace souq::identity {
namespace {

json seller_profile_json(const db::Row& r) {
  return {{"id", r.text("id")},
          {"user_id", r.text("user_id")},
          {"business_name", r.text("business_name")},
          {"description", r.text("description")},
          {"city", r.text("city")},
          {"documents", r.json("documents")},
          {"status", r.text("status")},
          {"rejection_reason", r.nullable_text("rejection_reason")},
          {"decided_at", r.nullable_text("decided_at")},
          {"created_at", r.text("created_at")},
          {"updated_at", r.text("updated_at")}};
}

constexpr const char* kProfileColumns =
    "id, user_id, business_name, description, city, documents, status, rejection_reason, decided_at, created_at,"
    " updated_at";

void require_user_exists(db::Tx& tx, const std::string& user_id) {
  if (!Identity::exists(tx, user_id)) throw ApiError::not_found("No such user.");
}

}  // namespace

json Identity::warn(const Principal& admin, const std::string& user_id, const std::string& reason,
                    const std::string& request_id) {
  return db_.write([&](db::Tx& tx) { return warn(tx, admin, user_id, reason, request_id); });
}

json Identity::warn(db::Tx& tx, const Principal& admin, const std::string& user_id, const std::string& reason,
                    const std::string& request_id) {
  require_user_exists(tx, user_id);
  std::string id = new_id("wrn");
  auto t = now_text();
  tx.exec("INSERT INTO user_warnings (id, user_id, admin_id, reason, created_at) VALUES ($1, $2, $3, $4, $5)",
          {id, user_id, admin.user_id, reason, t});
  audit::record(tx, {admin.user_id, "user.warn", "user", user_id, reason, {{"warning_id", id}}, request_id});
  return json{{"id", id}, {"user_id", user_id}, {"reason", reason}, {"created_at", t}};
}

// The one guarded status change behind suspend and unsuspend.
void Identity::change_status(db::Tx& tx, const Principal& admin, const std::string& user_id, const char* from,
                             const char* to, const char* action, const std::string& reason,
                             const std::string& request_id) {
  require_user_exists(tx, user_id);
  if (tx.exec("UPDATE users SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2",
              {user_id, from, to, now_text()}) == 0)
    throw std::string(to) == "suspended"
        ? ApiError::conflict("already_suspended", "This account is already suspended.")
        : ApiError::conflict("not_suspended", "This account is not suspended.");
  cache_.record(tx, user_id);
  audit::record(tx, {admin.user_id, action, "user", user_id, reason, json::object(), request_id});
  // A suspended seller is no longer shown as one.
  if (auto profile = tx.query_one("SELECT id FROM seller_profiles WHERE user_id = $1", {user_id}))
    seller_profile_event(tx, "updated", profile->text("id"), request_id);
}

void Identity::seller_profile_event(db::Tx& tx, const std::string& what, const std::string& profile_id,
                                    const std::string& request_id) {
  if (!outbox_) return;
  auto row = tx.query_one("SELECT user_id, status FROM seller_profiles WHERE id = $1", {profile_id});
  if (!row) return;
  outbox_->emit(tx, "seller_profile." + what,
                {{"profile_id", profile_id}, {"user_id", row->text("user_id")}, {"status", row->text("status")}},
                profile_id, request_id);
}

void Identity::suspend(db::Tx& tx, const Principal& admin, const std::string& user_id, const std::string& reason,
                       const std::string& request_id) {
  if (admin.user_id == user_id)
    throw ApiError::unprocessable("cannot_suspend_self", "An admin cannot suspend their own account.");
  change_status(tx, admin, user_id, "active", "suspended", "user.suspend", reason, request_id);
}

json Identity::suspend(const Principal& admin, const std::string& user_id, const std::string& reason,
                       const std::string& request_id) {
  db_.write([&](db::Tx& tx) { suspend(tx, admin, user_id, reason, request_id); });
  return me(user_id);
}

json Identity::unsuspend(const Principal& admin, const std::string& user_id, const std::string& reason,
                         const std::string& request_id) {
  db_.write([&](db::Tx& tx) {
    change_status(tx, admin, user_id, "suspended", "active", "user.unsuspend", reason, request_id);
  });
  return me(user_id);
}

json Identity::apply_to_sell(const Principal& who, const json& f) {
  return db_.write([&](db::Tx& tx) {
    auto t = now_text();
    auto existing = tx.query_one("SELECT id, status FROM seller_profiles WHERE user_id = $1", {who.user_id});
    std::string id;
    if (!existing) {
      id = new_id("slr");
      try {
        tx.exec("INSERT INTO seller_profiles (id, user_id, business_name, description, city, documents, status,"
              " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)",
              {id, who.user_id, f["business_name"].get<std::string>(), f["description"].get<std::string>(),
                 f["city"].get<std::string>(), f["documents"].dump(), t});
      } catch (const db::ConstraintError&) {
        throw db::RetryableError("seller application created concurrently");  // the rerun answers 409
      }
    } else {
      id = existing->text("id");
      // Only a rejected application may be sent again; the guard makes a
      // concurrent second submission a conflict rather than a double update.
      if (tx.exec("UPDATE seller_profiles SET business_name = $2, description = $3, city = $4, documents = $5,"
                  " status = 'pending', rejection_reason = NULL, decided_by = NULL, decided_at = NULL,"
                  " updated_at = $6 WHERE id = $1 AND status = 'rejected'",
                  {id, f["business_name"].get<std::string>(), f["description"].get<std::string>(),
                   f["city"].get<std::string>(), f["documents"].dump(), t}) == 0)
        throw ApiError::conflict("seller_profile_exists",
                                 "You already have a seller application that is " + existing->text("status") + ".",
                                 {{"status", existing->text("status")}});
    }
    seller_profile_event(tx, "submitted", id, "");
    return seller_profile_json(
        *tx.query_one(std::string("SELECT ") + kProfileColumns + " FROM seller_profiles WHERE id = $1", {id}));
  });
}

json Identity::my_seller_profile(const std::string& user_id) {
  return db_.read([&](db::Tx& tx) {
    auto row = tx.query_one(std::string("SELECT ") + kProfileColumns + " FROM seller_profiles WHERE user_id = $1",
                            {user_id});
    if (!row) throw ApiError::not_found("You have not applied to sell.");
    return seller_profile_json(*row);
  });
}

std::pair<json, json> Identity::seller_profiles(const std::string& status, const std::optional<std::string>& before,
                                                int limit) {
  return db_.read([&](db::Tx& tx) {
    auto rows = tx.query(std::string("SELECT ") + kProfileColumns +
                             " FROM seller_profiles WHERE status = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC"
                             " LIMIT $3",
                         {status, before.value_or(""), limit + 1});
    return db::page_of(rows, limit, seller_profile_json);
  });
}

json Identity::decide_seller_profile(const Principal& admin, const std::string& profile_id, bool approve,
                                     const std::string& reason, const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    auto row = tx.query_one("SELECT user_id, status FROM seller_profiles WHERE id = $1", {profile_id});
    if (!row) throw ApiError::not_found("No such seller application.");
    auto t = now_text();
    if (tx.exec("UPDATE seller_profiles SET status = $2, rejection_reason = $3, decided_by = $4, decided_at = $5,"
                " updated_at = $5 WHERE id = $1 AND status = 'pending'",
                {profile_id, approve ? "approved" : "rejected",
                 approve ? std::optional<std::string>() : std::optional(reason), admin.user_id, t}) == 0)
      throw ApiError::conflict("invalid_state", "This application was already decided: it is " +
                                                    row->text("status") + ".", {{"status", row->text("status")}});
    std::string user_id = row->text("user_id");
    if (approve) {
      tx.exec("INSERT INTO user_roles (user_id, role, granted_at) VALUES ($1, 'seller', $2) ON CONFLICT DO NOTHING",
              {user_id, t});
      cache_.record(tx, user_id);  // sessions pick up the new role
    }
    audit::record(tx, {admin.user_id, approve ? "seller_profile.approve" : "seller_profile.reject", "seller_profile",
                       profile_id, reason, {{"user_id", user_id}}, request_id});
    seller_profile_event(tx, approve ? "approved" : "rejected", profile_id, request_id);
    return seller_profile_json(
        *tx.query_one(std::string("SELECT ") + kProfileColumns + " FROM seller_profiles WHERE id = $1", {profile_id}));
  });
}

std::optional<json> Identity::seller_profile(db::Tx& tx, const std::string& profile_id) {
  auto row = tx.query_one(std::string("SELECT ") + kProfileColumns + " FROM seller_profiles WHERE id = $1", {profile_id});
  if (!row) return std::nullopt;
  json out = seller_profile_json(*row);
  auto user = tx.query_one("SELECT status FROM users WHERE id = $1", {row->text("user_id")});
  out["user_status"] = user ? user->text("status") : "suspended";
  return out;
}

std::vector<std::string> Identity::seller_profile_ids(db::Tx& tx, const std::string& after, int limit) {
  std::vector<std::string> out;
  for (const auto& r : tx.query("SELECT id FROM seller_profiles WHERE id > $1 ORDER BY id LIMIT $2", {after, int64_t(limit)}))
    out.push_back(r.text("id"));
  return out;
}

std::string Identity::create_admin(const std::string& email, const std::string& hash, const std::string& display_name,
                                   const std::optional<std::string>& phone, bool promote_existing) {
  return db_.write([&](db::Tx& tx) {
    auto t = now_text();
    std::string user_id;
    if (auto row = tx.query_one("SELECT id FROM users WHERE email = $1", {email})) {
      user_id = row->text("id");
      if (!promote_existing)
        throw std::invalid_argument("an account with " + email +
                                    " exists; pass --promote-existing to make it an admin (its sessions and linked"
                                    " providers are ended first)");
      tx.exec("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1", {user_id, hash, t});
      tx.exec("UPDATE sessions SET revoked_at = $2, revoked_reason = 'promoted_to_admin'"
              " WHERE user_id = $1 AND revoked_at IS NULL",
              {user_id, t});
      tx.exec("DELETE FROM user_identities WHERE user_id = $1", {user_id});
    } else {
      user_id = new_id("usr");
      tx.exec("INSERT INTO users (id, display_name, email, password_hash, created_at, updated_at)"
              " VALUES ($1, $2, $3, $4, $5, $5)",
              {user_id, display_name, email, hash, t});
      tx.exec("INSERT INTO user_roles (user_id, role, granted_at) VALUES ($1, 'buyer', $2)", {user_id, t});
    }
    if (phone) {
      try {
        tx.exec("UPDATE users SET phone = $2 WHERE id = $1", {user_id, *phone});
      } catch (const db::ConstraintError&) {
        throw std::invalid_argument("another account already has the phone " + *phone);
      }
    }
    tx.exec("INSERT INTO user_roles (user_id, role, granted_at) VALUES ($1, 'admin', $2) ON CONFLICT DO NOTHING",
            {user_id, t});
    cache_.record(tx, user_id);
    audit::record(tx, {"", "user.make_admin", "user", user_id, "souq admin create", json::object(), ""});
    return user_id;
  });
}

std::vector<std::string> Identity::seed_accounts(db::Tx& tx, int count, bool sellers, const std::string& name_prefix) {
  std::vector<std::string> ids;
  std::vector<db::Value> users, roles, profiles;
  auto t = now_text();
  for (int i = 0; i < count; ++i) {
    std::string id = new_id("usr");
    std::string name = name_prefix + " " + std::to_string(i + 1);
    ids.push_back(id);
    for (db::Value v : {db::Value(id), db::Value(name), db::Value(t), db::Value(t)}) users.push_back(std::move(v));
    for (db::Value v : {db::Value(id), db::Value("buyer"), db::Value(t)}) roles.push_back(std::move(v));
    if (sellers) {
      for (db::Value v : {db::Value(id), db::Value("seller"), db::Value(t)}) roles.push_back(std::move(v));
      for (db::Value v : {db::Value(new_id("slr")), db::Value(id), db::Value(name + " trading"), db::Value("Cairo"),
                          db::Value("approved"), db::Value(t), db::Value(t), db::Value(t)})
        profiles.push_back(std::move(v));
    }
  }
  db::bulk_insert(tx, "users (id, display_name, created_at, updated_at)", 4, users);
  db::bulk_insert(tx, "user_roles (user_id, role, granted_at)", 3, roles);
  if (sellers)
    db::bulk_insert(tx, "seller_profiles (id, user_id, business_name, city, status, decided_at, created_at, updated_at)", 8,
                    profiles);
  return ids;
}

}  // namespace souq::identity
