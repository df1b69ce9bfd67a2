// The composition root: builds the object graph from a Config and runs it.
#pragma once
#include <memory>

#include "app/config.hpp"
#include "core/blocking.hpp"
#include "db/async.hpp"
#include "db/database.hpp"
#include "db/migrations.hpp"
#include "http/metrics.hpp"
#include "http/router.hpp"
#include "jobs/queue.hpp"
#include "modules/catalog/module.hpp"
#include "modules/marketplace/module.hpp"
#include "modules/sms/module.hpp"

namespace souq::app {

// What routes may use. Built once; outlives the server.
struct Services {
  const Config& config;
  db::Database& db;
  db::AsyncDatabase async_db;
  BlockingPool& blocking;
  db::Migrator& migrator;
  jobs::Queue& queue;
  jobs::Outbox& outbox;
  api::Metrics& metrics;
  sms::Sms& sms;
  std::function<bool()> draining;
  std::string started_at;
};

void register_system_routes(api::Router& router, Services& services);
// Routes and job kinds that exist only with --dev (tests and local development).
void register_dev_routes(api::Router& router, Services& services);
void register_dev_jobs(jobs::Queue& queue, db::Database& db);

class App {
 public:
  explicit App(Config config);
  ~App();
  int serve();    // HTTP server and workers until SIGINT/SIGTERM
  int worker();   // workers only, until SIGINT/SIGTERM
  int migrate();  // applies pending migrations and exits
  int admin_create(const std::string& email, const std::string& password, const std::string& display_name,
                   const std::optional<std::string>& phone, bool promote_existing);
  int jobs_list(const std::string& status, int limit);
  int jobs_retry(const std::string& id);
  int processes_check();
  int ledger_verify();    // prints the report; 0 when every check passes  // validates process definitions without a database
  int seed(const marketplace::SeedOptions& options, const catalog::SeedOptions& catalog);
  // Rebuilds the search index (souq search reindex), with a progress bar on stderr.
  int search_reindex(bool fresh, int batch);

 private:
  void open_database();
  void register_job_kinds();
  Config config_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<db::Migrator> migrator_;
  std::unique_ptr<jobs::Queue> queue_;
  std::unique_ptr<jobs::Outbox> outbox_;
  std::unique_ptr<sms::Provider> sms_provider_;
  std::unique_ptr<sms::Sms> sms_;
};

}  // namespace souq::app
