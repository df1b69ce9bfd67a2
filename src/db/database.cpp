#include "db/database.hpp"

#include <chrono>
#include <random>
#include <thread>

#include "db/postgres/postgres_database.hpp"
#include "db/sqlite/sqlite_database.hpp"

namespace souq::db {

const char* engine_name(Engine e) { return e == Engine::sqlite ? "sqlite" : "postgres"; }

void Database::run_with_retry(const Options& options, const std::function<void()>& attempt) {
  thread_local std::minstd_rand jitter{std::random_device{}()};
  for (int n = 1;; ++n) {
    try {
      attempt();
      return;
    } catch (const RetryableError&) {
      if (n >= options.max_attempts) throw;
      // Back off 2, 4, 8 … ms (capped) with jitter so racing writers spread out.
      int cap = std::min(200, 1 << std::min(n, 7));
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + jitter() % cap));
    }
  }
}

std::unique_ptr<Database> open_database(const std::string& url, const Options& options) {
  if (url.rfind("sqlite:", 0) == 0) return std::make_unique<SqliteDatabase>(url.substr(7), options);
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0)
    return std::make_unique<PostgresDatabase>(url, options);
  throw Error("unsupported database URL (use sqlite:PATH or postgres://…): " + url);
}

}  // namespace souq::db
