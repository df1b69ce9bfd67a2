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
  return db_.write([&](db::Tx& tx) {
    auto t = now_text();
    tx.exec("INSERT INTO devices (device_id, user_id, platform, push_token, app_version, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id,"
            " platform = excluded.platform, push_token = excluded.push_token, app_version = excluded.app_version,"
            " updated_at = excluded.updated_at",
            {device_id, user_id, platform, push_token, app_version, t});
    return device_json(*tx.query_one("SELECT " SOUQ_DEVICE_COLUMNS " FROM devices WHERE device_id = $1",
                                     {device_id}));
  });
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
    return tx.exec("DELETE FROM devices WHERE device_id = $1 AND user_id = $2", {device_id, user_id}) == 1;
  });
  if (!removed) throw ApiError::not_found("No such device on your account.");
}

}  // namespace souq::identity
