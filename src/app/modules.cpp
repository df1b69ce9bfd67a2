#include "app/modules.hpp"

#include <fstream>
#include <sstream>

namespace souq::app {

identity::Options identity_options(const Config& c) {
  identity::Options o;
  o.jwt_secret = c.jwt_secret;
  o.issuer = c.jwt_issuer;
  o.access_ttl = std::chrono::seconds(c.access_token_ttl);
  o.refresh_ttl = std::chrono::seconds(c.refresh_token_ttl);
  o.otp_resend_cooldown = std::chrono::seconds(c.otp_resend_cooldown);
  o.otp_per_ip_per_hour = c.otp_per_ip_per_hour;
  o.otp_per_phone_per_hour = c.otp_per_phone_per_hour;
  o.otp_per_phone_per_hour_all = 3 * c.otp_per_phone_per_hour;
  o.otp_failures_per_phone = c.otp_failures_per_phone;
  o.otp_ttl = std::chrono::seconds(c.otp_ttl);
  o.login_failures_per_email = c.login_failures_per_email;
  o.login_failures_per_ip = 5 * c.login_failures_per_email;
  o.session_cache_size = size_t(c.session_cache_size);
  o.session_feed_interval = std::chrono::milliseconds(c.session_feed_ms);
  return o;
}

void register_all_actions(transactions::Actions& actions) {
  transactions::register_actions(actions);
  marketplace::Marketplace::register_actions(actions);
  ratings::Ratings::register_actions(actions);
}

namespace {
marketplace::Options marketplace_options(const Config& c) {
  marketplace::Options o;
  o.deal_process = c.deal_process;
  o.list_cache_ttl = std::chrono::milliseconds(c.list_cache_ms);
  return o;
}
}  // namespace

Modules::Modules(const Config& config, db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, sms::Sms& sms)
    : identity(db, identity_options(config)),
      transactions(db, queue, outbox, identity, processes, actions),
      marketplace(db, queue, outbox, identity, transactions, marketplace_options(config)),
      ratings(db, outbox, identity, transactions),
      reports(db, outbox, identity),
      sms_(sms) {
  identity.start();
  identity.use_sms(sms_);
  if (!config.oidc_config.empty()) {
    std::ifstream file(config.oidc_config);
    std::stringstream text;
    text << file.rdbuf();
    auto parsed = json::parse(text.str(), nullptr, false);
    if (parsed.is_discarded()) throw std::invalid_argument("--oidc-config is not valid JSON: " + config.oidc_config);
    identity.use_oidc(identity::OidcVerifier::from_config(parsed));
  }
  register_all_actions(actions);
  processes.load(db, actions, config.processes_dir);
  if (!processes.latest(config.deal_process))
    throw transactions::ProcessError("--deal-process: no process named \"" + config.deal_process + "\" is loaded");
  transactions.register_jobs();
  marketplace.register_jobs();
  ratings.extend_profiles();
  marketplace::register_policies(policy);
  reports::register_policies(policy);
  reports.add_target("user", [](db::Tx& tx, const std::string& id) -> std::optional<std::string> {
    if (!identity::Identity::exists(tx, id)) return std::nullopt;
    return id;
  });
  for (const char* type : {"request", "offer"})
    reports.add_target(type, [this, type](db::Tx& tx, const std::string& id) { return marketplace.owner_of(tx, type, id); });
}

void Modules::register_routes(api::Router& router, BlockingPool& blocking, BlockingPool& cpu) {
  identity::register_routes(router, identity, blocking, cpu);
  identity::register_moderation_routes(router, identity, policy, blocking, &sms_);
  transactions::register_routes(router, transactions, identity, blocking);
  marketplace::register_routes(router, marketplace, identity, policy, blocking);
  ratings::register_routes(router, ratings, identity, blocking);
  reports::register_routes(router, reports, identity, policy, blocking);
}

}  // namespace souq::app
