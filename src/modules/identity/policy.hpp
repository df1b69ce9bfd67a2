// The policy layer: "may this actor do this to this object?". Modules
// register a rule per action at start-up; routes ask before acting. A refusal
// is 403 `forbidden`; objects the actor may not see are the caller's to turn
// into 404 (see `visible`).
#pragma once
#include <functional>
#include <map>
#include <string>

#include "core/json.hpp"
#include "modules/identity/module.hpp"

namespace souq::identity {

class Policy {
 public:
  using Rule = std::function<bool(const Principal& actor, const json& object)>;

  // The built-in rules of identity (admin actions, seller applications).
  Policy();
  void allow(const std::string& action, Rule rule) { rules_[action] = std::move(rule); }
  bool permits(const Principal& actor, const std::string& action, const json& object = nullptr) const;
  // Throws 403 `forbidden` unless permitted. An unknown action is never permitted.
  void check(const Principal& actor, const std::string& action, const json& object = nullptr) const;

 private:
  std::map<std::string, Rule> rules_;
};

}  // namespace souq::identity
