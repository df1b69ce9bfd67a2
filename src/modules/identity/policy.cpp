#include "modules/identity/policy.hpp"

namespace souq::identity {

Policy::Policy() {
  auto admin = [](const Principal& p, const json&) { return p.has_role("admin"); };
  allow("users.moderate", admin);
  allow("seller_profiles.review", admin);
  allow("audit.read", admin);
  allow("sms.read", admin);
  // Anyone signed in may apply to sell, unless they already sell.
  allow("seller_profiles.apply", [](const Principal& p, const json&) { return !p.has_role("seller"); });
}

bool Policy::permits(const Principal& actor, const std::string& action, const json& object) const {
  auto it = rules_.find(action);
  return it != rules_.end() && it->second(actor, object);
}

void Policy::check(const Principal& actor, const std::string& action, const json& object) const {
  if (!permits(actor, action, object)) throw ApiError(403, "forbidden", "You may not do this.", {{"action", action}});
}

}  // namespace souq::identity
