// Push-notification device tokens (seed 000 DeviceTokenService).
#include "core/time.hpp"
#include "modules/identity/module.hpp"

namespace souq::identity {
namespace {
json device_json(const db::Row& r) {
  return {{"device_id", r.text("device_id")},
          {"platform", r.text("platform")},
          {"push_token", r.text("push_token")},
          {"app_version", r.nullable_text("app_version")},
          {"created_at", r.text("created_at")},
          {"updated_at", r.text("updated_at")}};
}
// Joined with the literals around it at compile time.
#define SOUQ_DEVICE_COLUMNS "device_id, platform, push_token, app_version, created_at, updated_at"
}  // namespace

json Identity::register_device(const std::string& user_id, const std::string& device_id, const std::string& platform,
                               const std::string& push_token, const std::optional<std::string>& app_version) {
  // A new device's row is inserted with ON CONFLICT on push_token, so accounts
  // racing to register one token queue on its row and the last one takes it,
  // instead of failing. A write that still meets a row another transaction
  // just made (a token taken while this one moved it) runs again.
  for (int attempt = 1;; ++attempt) {
    try {
      return db_.write([&](db::Tx& tx) {
        auto t = now_text();
        // Take the token from whoever else holds it (the phone changed hands).
        tx.exec("DELETE FROM devices WHERE push_token = $1 AND NOT (user_id = $2 AND device_id = $3)",
                {push_token, user_id, device_id});
        // A device already known keeps its row (and when it was registered).
        if (tx.exec("UPDATE devices SET push_token = $3, platform = $4, app_version = $5, updated_at = $6"
                    " WHERE user_id = $1 AND device_id = $2",
                    {user_id, device_id, push_token, platform, app_version, t}) == 0)
          tx.exec("INSERT INTO devices (user_id, device_id, platform, push_token, app_version, created_at, updated_at)"
                  " VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (push_token) DO UPDATE SET user_id = excluded.user_id,"
                  " device_id = excluded.device_id, platform = excluded.platform, app_version = excluded.app_version,"
                  " created_at = excluded.created_at, updated_at = excluded.updated_at",
                  {user_id, device_id, platform, push_token, app_version, t});
        return device_json(*tx.query_one("SELECT " SOUQ_DEVICE_COLUMNS " FROM devices WHERE user_id = $1 AND device_id = $2",
                                         {user_id, device_id}));
      });
    } catch (const db::ConstraintError& e) {
      if (e.kind() != db::ConstraintError::Kind::unique || attempt == 5) throw;
    }
  }
}

json Identity::devices(db::Tx& tx, const std::string& user_id) {
  {
    json out = json::array();
    for (const auto& r : tx.query("SELECT " SOUQ_DEVICE_COLUMNS " FROM devices WHERE user_id = $1 ORDER BY updated_at DESC",
                                  {user_id}))
      out.push_back(device_json(r));
    return out;
  }
}

void Identity::remove_device(const std::string& user_id, const std::string& device_id) {
  bool removed = db_.write([&](db::Tx& tx) {
    return tx.exec("DELETE FROM devices WHERE user_id = $1 AND device_id = $2", {user_id, device_id}) == 1;
  });
  if (!removed) throw ApiError::not_found("No such device on your account.");
}

bool Identity::forget_push_token(const std::string& push_token) {
  return db_.write([&](db::Tx& tx) { return tx.exec("DELETE FROM devices WHERE push_token = $1", {push_token}) > 0; });
}

}  // namespace souq::identity
