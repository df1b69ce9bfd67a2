#include "app/app.hpp"

#include <unistd.h>

#include <csignal>
#include <future>
#include <iostream>
#include <thread>

#include "core/id.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "http/middleware.hpp"
#include "http/server.hpp"
#include "app/modules.hpp"

namespace souq::app {
namespace {

std::pair<std::string, uint16_t> split_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("--listen must be HOST:PORT, got " + listen);
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  int port = std::stoi(listen.substr(colon + 1));
  if (port < 0 || port > 65535) throw std::invalid_argument("--listen port out of range: " + listen);
  return {host, uint16_t(port)};
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    auto item = text.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

// Unique per process even where every container is pid 1 on a reused
// hostname: the job guards (locked_by) must tell two nodes apart.
std::string worker_prefix() {
  char host[256] = "host";
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + new_id("w").substr(2 + 10, 6);
}

// Blocks until SIGINT or SIGTERM; a second signal while shutting down exits at once.
class SignalWaiter {
 public:
  explicit SignalWaiter(asio::io_context& ioc) : signals_(ioc, SIGINT, SIGTERM) {
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      promise_.set_value(sig);
      signals_.async_wait([](const boost::system::error_code& ec2, int) {
        if (ec2) return;
        log::warn("second signal: exiting without finishing");
        log::flush();
        std::_Exit(1);
      });
    });
  }
  int wait() { return promise_.get_future().get(); }
  void cancel() {
    boost::system::error_code ec;
    signals_.cancel(ec);
  }

 private:
  asio::signal_set signals_;
  std::promise<int> promise_;
};

}  // namespace

App::App(Config config) : config_(std::move(config)) {
  log::Level level;
  if (!log::parse_level(config_.log_level, level))
    throw std::invalid_argument("--log-level must be debug, info, warn, error or off");
  log::init(level);
}

App::~App() = default;

void App::open_database() {
  db::Options options;
  options.pool_size = std::max(1, config_.db_threads);
  db_ = db::open_database(config_.database, options);
  migrator_ = std::make_unique<db::Migrator>(
      *db_, db::plan_migrations(db_->engine(), db::embedded_migrations(), db::module_order()));
  int applied = migrator_->migrate();
  log::info("database ready", {{"engine", db::engine_name(db_->engine())}, {"migrations_applied", applied},
                               {"migrations_total", migrator_->total()}});
  queue_ = std::make_unique<jobs::Queue>(*db_);
  outbox_ = std::make_unique<jobs::Outbox>(*queue_);
}

// Every job kind this node runs; serve and worker alike, before workers start.
void App::register_job_kinds() {
  sms::Options sms_options{config_.sms_provider, config_.twilio_base_url, config_.twilio_account_sid,
                           config_.twilio_auth_token, config_.twilio_from};
  sms_provider_ = sms::make_provider(sms_options);
  sms_ = std::make_unique<sms::Sms>(*db_, *queue_, *sms_provider_);
  sms_->register_jobs();
  if (config_.dev) register_dev_jobs(*queue_, *db_);
}

int App::serve() {
  auto [host, port] = split_listen(config_.listen);
  open_database();
  register_job_kinds();
  int threads = config_.threads > 0 ? config_.threads : int(std::max(1u, std::thread::hardware_concurrency()));

  BlockingPool blocking(std::max(1, config_.db_threads));
  // Password hashing is slow on purpose; it gets threads of its own so that it
  // never queues database work behind it.
  BlockingPool cpu(threads, config_.hash_queue);
  // SQLite keeps no planner statistics until asked (maintain() refreshes them hourly).
  if (db_->engine() == db::Engine::sqlite) db_->analyze();
  Modules modules(config_, *db_, *queue_, *outbox_, *sms_);
  modules.identity.follow_session_changes();
  api::Metrics metrics;
  api::Router router;
  api::Server* server_ptr = nullptr;
  Services services{config_,   *db_,     db::AsyncDatabase(*db_, blocking),
                    blocking,  *migrator_, *queue_,
                    *outbox_,  metrics,  *sms_, [&server_ptr] { return server_ptr && server_ptr->draining(); },
                    now_text()};
  register_system_routes(router, services);
  modules.register_routes(router, blocking, cpu);
  if (config_.dev) register_dev_routes(router, services);

  api::RateLimiter limiter(config_.rate_limit, config_.rate_burst);
  std::vector<api::Middleware> layers = {
      api::middleware::request_id(),       api::middleware::access_log(),
      api::middleware::metrics(metrics),   api::middleware::security_headers(),
      api::middleware::cors({split_list(config_.cors_origins)}), api::middleware::recover()};
  if (config_.rate_limit > 0)
    // The Pusher HTTP API is signed with the app secret: the operator's own back end.
    layers.push_back(api::middleware::rate_limit(limiter, {"/healthz", "/readyz", "/metrics", "/apps/"}));
  layers.push_back(api::middleware::json_body());
  api::Pipeline pipeline(std::move(layers), api::dispatch());

  api::ServerOptions options;
  options.host = host;
  options.port = port;
  options.threads = threads;
  options.max_body = config_.max_body;
  options.header_timeout = std::chrono::seconds(config_.header_timeout);
  options.body_timeout = std::chrono::seconds(config_.body_timeout);
  options.trust_proxy = config_.trust_proxy;
  api::Server server(options, router, pipeline);
  server.on_upgrade("/app/", modules.realtime.upgrade_handler());
  server_ptr = &server;
  SignalWaiter signals(server.main_context());
  uint16_t bound = server.start();
  if (config_.public_url.empty()) {
    bool any = host == "0.0.0.0" || host == "::" || host.empty();
    modules.payments.use_public_url("http://" + (any ? std::string("127.0.0.1") : host) + ":" + std::to_string(bound));
  }
  modules.catalog.use_media_base(modules.payments.public_url() + "/media");
  log::info("listening", {{"host", host},
                          {"port", bound},
                          {"database", db::engine_name(db_->engine())},
                          {"threads", threads},
                          {"workers", config_.workers},
                          {"dev", config_.dev},
                          {"version", SOUQ_VERSION}});
  log::flush();  // whoever waits for this line (a supervisor, the test harness) sees it now

  std::unique_ptr<jobs::Workers> workers;
  if (config_.workers > 0) workers = std::make_unique<jobs::Workers>(*queue_, config_.workers, worker_prefix());

  // Housekeeping once a minute (SQLite WAL checkpoint), on the blocking pool.
  asio::steady_timer maintenance(server.main_context());
  std::function<void()> schedule = [&] {
    maintenance.expires_after(std::chrono::minutes(1));
    maintenance.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      asio::post(blocking.executor(), [&] {
        try {
          db_->maintain();
        } catch (const std::exception& e) {
          log::warn("database maintenance failed", {{"error", e.what()}});
        }
      });
      schedule();
    });
  };
  schedule();

  int sig = signals.wait();
  log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
                              {"in_flight", server.in_flight()}});
  // Sockets are told to reconnect at once (4200): to another node.
  modules.realtime.shutdown();
  server.begin_shutdown();
  if (!server.wait_idle(std::chrono::seconds(config_.shutdown_timeout)))
    log::warn("shutdown timeout: abandoning requests in flight", {{"in_flight", server.in_flight()}});
  // The sockets' close frames go out before the I/O threads stop.
  if (!modules.realtime.wait_closed(std::chrono::seconds(3)))
    log::warn("shutdown: sockets still closing", {{"sockets", modules.realtime.connection_count()}});
  workers.reset();  // joins the worker threads before the queue goes
  asio::post(server.main_context(), [&] {
    maintenance.cancel();
    signals.cancel();
  });
  server.stop();
  modules.realtime.release();
  blocking.stop();
  cpu.stop();
  modules.stop();
  queue_.reset();
  db_.reset();
  log::info("stopped");
  log::shutdown();
  return 0;
}

int App::worker() {
  open_database();
  register_job_kinds();
  Modules modules(config_, *db_, *queue_, *outbox_, *sms_);
  asio::io_context ioc;
  SignalWaiter signals(ioc);
  std::thread signal_thread([&] { ioc.run(); });
  int count = std::max(1, config_.workers);
  jobs::Workers workers(*queue_, count, worker_prefix());
  log::info("workers running", {{"workers", count}, {"database", db::engine_name(db_->engine())}});
  int sig = signals.wait();
  log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  workers.stop();
  ioc.stop();
  signal_thread.join();
  modules.stop();
  db_.reset();
  log::info("stopped");
  log::shutdown();
  return 0;
}

int App::admin_create(const std::string& email, const std::string& password, const std::string& display_name,
                      const std::optional<std::string>& phone, bool promote_existing) {
  open_database();
  identity::Identity identity(*db_, {});
  std::string id = identity.create_admin(email, identity::hash_password(password), display_name, phone, promote_existing);
  std::cout << "admin: " << id << " <" << email << ">\n";
  log::shutdown();
  return 0;
}

int App::migrate() {
  open_database();
  auto status = migrator_->status();
  std::cout << "migrations applied: " << status.applied << ", pending: " << status.pending << "\n";
  log::shutdown();
  return status.pending == 0 ? 0 : 1;
}

int App::jobs_list(const std::string& status, int limit) {
  open_database();
  for (const auto& job : queue_->list(status, limit)) std::cout << job.dump() << "\n";
  log::shutdown();
  return 0;
}

int App::jobs_retry(const std::string& id) {
  open_database();
  bool ok = queue_->retry(id);
  std::cout << (ok ? "queued again: " : "no dead job with id: ") << id << "\n";
  log::shutdown();
  return ok ? 0 : 1;
}

int App::processes_check() {
  transactions::Actions actions;
  register_all_actions(actions);
  transactions::Processes processes;
  processes.load_files(actions, config_.processes_dir);
  for (const auto* p : processes.all_latest())
    for (const auto* v : processes.versions(p->name))
      std::cout << v->name << " version " << v->version << " (" << v->states.size() << " states, "
                << v->transitions.size() << " transitions) from " << v->origin << "\n";
  std::cout << "actions: ";
  for (const auto& name : actions.names()) std::cout << name << " ";
  std::cout << "\n";
  log::shutdown();
  return 0;
}

namespace {
// A progress bar on stderr: "<what> [#####     ] done/total <unit>, N s".
void progress_bar(const char* what, int64_t done, int64_t total, const std::string& unit,
                  std::chrono::steady_clock::time_point started, const std::string& extra = {}) {
  const int width = 40;
  int filled = total > 0 ? int(width * done / total) : width;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cerr << "\r" << what << " [" << std::string(size_t(filled), '#') << std::string(size_t(width - filled), ' ') << "] "
            << done << "/" << total << " " << unit << extra << ", " << int(seconds) << " s" << std::flush;
}
}  // namespace

int App::seed(const marketplace::SeedOptions& options, const catalog::SeedOptions& catalog) {
  open_database();
  register_job_kinds();
  Modules modules(config_, *db_, *queue_, *outbox_, *sms_);
  auto started = std::chrono::steady_clock::now();
  if (options.requests > 0) {
    modules.marketplace.seed(options, [&](int64_t requests, int64_t offers) {
      progress_bar("seeding", requests, options.requests, "requests", started, ", " + std::to_string(offers) + " offers");
    });
    std::cerr << "\n";
    std::cout << "seeded " << options.requests << " requests and about " << options.offers << " offers from "
              << options.buyers << " buyers and " << options.sellers << " sellers\n";
  }
  if (catalog.products > 0) {
    auto at = std::chrono::steady_clock::now();
    modules.catalog.seed(catalog, [&](int64_t done) { progress_bar("seeding", done, catalog.products, "products", at); });
    std::cerr << "\n";
    db_->after_bulk_load();
    at = std::chrono::steady_clock::now();
    modules.search.reindex({false, 1000}, [&](int64_t done, int64_t total) {
      progress_bar("indexing", done, total, "documents", at);
    });
    std::cerr << "\n";
    std::cout << "seeded " << catalog.products << " products with " << catalog.skus_per_product << " SKUs each from "
              << catalog.sellers << " shops, and indexed them\n";
  }
  db_->after_bulk_load();
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "done in " << int(seconds) << " s\n";
  modules.stop();
  log::shutdown();
  return 0;
}

int App::search_reindex(bool fresh, int batch) {
  open_database();
  register_job_kinds();
  Modules modules(config_, *db_, *queue_, *outbox_, *sms_);
  auto started = std::chrono::steady_clock::now();
  int64_t indexed = 0;
  modules.search.reindex({fresh, batch}, [&](int64_t done, int64_t total) {
    progress_bar("indexing", done, total, "documents", started);
    indexed = done;
  });
  std::cerr << "\n";
  db_->after_bulk_load();  // the planner's statistics of the rebuilt index, its rows visible
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "indexed " << indexed << " documents (products and sellers) in " << int(seconds) << " s\n";
  modules.stop();
  log::shutdown();
  return 0;
}

int App::ledger_verify() {
  open_database();
  register_job_kinds();
  ledger::Ledger ledger(*db_, *queue_, *outbox_);
  auto report = ledger.verify();
  std::cout << report.to_json().dump(2) << "\n";
  if (!report.ok) std::cerr << "souq: ledger verify found " << report.faults.size() << " fault(s); first: "
                            << report.faults.front().message << "\n";
  log::shutdown();
  return report.ok ? 0 : 1;
}

}  // namespace souq::app
