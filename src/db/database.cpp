#include "db/database.hpp"

#include <algorithm>
#include <cmath>
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

namespace souq::db {
double great_circle_km(double lat1, double lng1, double lat2, double lng2) {
  constexpr double kEarthKm = 6371.0088, kRad = 3.14159265358979323846 / 180.0;
  double dlat = (lat2 - lat1) * kRad, dlng = (lng2 - lng1) * kRad;
  double a = std::sin(dlat / 2) * std::sin(dlat / 2) +
             std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * std::sin(dlng / 2) * std::sin(dlng / 2);
  return 2 * kEarthKm * std::asin(std::min(1.0, std::sqrt(a)));
}
}  // namespace souq::db
