// The business modules and how they are wired to one another: the same graph
// for `souq serve` (routes and workers) and `souq worker` (workers only: timed
// transitions run actions of every module).
#pragma once
#include <memory>

#include "app/config.hpp"
#include "core/blocking.hpp"
#include "http/router.hpp"
#include "jobs/queue.hpp"
#include "modules/catalog/module.hpp"
#include "modules/chat/module.hpp"
#include "modules/identity/module.hpp"
#include "modules/identity/policy.hpp"
#include "modules/ledger/module.hpp"
#include "modules/payments/module.hpp"
#include "modules/marketplace/module.hpp"
#include "modules/notifications/module.hpp"
#include "modules/orders/module.hpp"
#include "modules/ratings/module.hpp"
#include "modules/realtime/module.hpp"
#include "modules/reports/module.hpp"
#include "modules/search/module.hpp"
#include "modules/sms/module.hpp"
#include "modules/transactions/module.hpp"

namespace souq::app {

identity::Options identity_options(const Config& config);
realtime::Options realtime_options(const Config& config);
notifications::Options notifications_options(const Config& config);
payments::Options payments_options(const Config& config);
catalog::Options catalog_options(const Config& config);

class Modules {
 public:
  // Builds every module, registers actions, policies and job kinds, and loads
  // the processes (built-in, --processes, stored): a fault stops here.
  Modules(const Config& config, db::Database& db, jobs::Queue& queue, jobs::Outbox& outbox, sms::Sms& sms);
  void register_routes(api::Router& router, BlockingPool& blocking, BlockingPool& cpu);
  // Before the database closes.
  void stop() { identity.stop(); }

  identity::Identity identity;
  identity::Policy policy;
  transactions::Actions actions;
  transactions::Processes processes;
  transactions::Transactions transactions;
  marketplace::Marketplace marketplace;
  ratings::Ratings ratings;
  reports::Reports reports;
  realtime::Realtime realtime;
  std::unique_ptr<storage::Storage> files;
  chat::Chat chat;
  std::unique_ptr<notifications::PushProvider> push;
  std::unique_ptr<notifications::EmailProvider> email;
  notifications::Notifications notifications;
  ledger::Ledger ledger;
  payments::Payments payments;
  catalog::Catalog catalog;
  orders::Orders orders;
  search::Search search;
  api::Idempotency idempotency;

 private:
  void route_to_user_channels(jobs::Outbox& outbox);
  void tell_people(jobs::Outbox& outbox);
  void open_conversations_about_subjects();
  sms::Sms& sms_;
};

// The actions every module registers. Without `payments` (loading processes
// without a database: `souq processes check`), the payment actions are
// known by name only.
void register_all_actions(transactions::Actions& actions, payments::Payments* payments = nullptr,
                          orders::Orders* orders = nullptr);

}  // namespace souq::app
