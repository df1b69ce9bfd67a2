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
std::vector<Row> bulk_insert(Tx& tx, std::string_view into, size_t columns, const std::vector<Value>& values,
                             std::string_view suffix) {
  std::vector<Row> returned;
  if (columns == 0 || values.size() % columns != 0) throw std::invalid_argument("bulk_insert: values do not fill rows");
  const size_t per_statement = std::max<size_t>(1, 4000 / columns);
  size_t rows = values.size() / columns;
  for (size_t first = 0; first < rows; first += per_statement) {
    size_t count = std::min(per_statement, rows - first);
    std::string sql = "INSERT INTO " + std::string(into) + " VALUES ";
    Params params;
    params.reserve(count * columns);
    for (size_t r = 0; r < count; ++r) {
      sql += r ? ", (" : "(";
      for (size_t c = 0; c < columns; ++c) {
        params.push_back(values[(first + r) * columns + c]);
        sql += (c ? ", $" : "$") + std::to_string(params.size());
      }
      sql += ")";
    }
    if (!suffix.empty()) sql += " " + std::string(suffix);
    for (auto& row : tx.query(sql, params)) returned.push_back(row);
  }
  return returned;
}

void Database::analyze() {
  write([this](Tx& tx) {
    if (engine() == Engine::sqlite) tx.script("PRAGMA analysis_limit=1000");
    tx.script("ANALYZE");
  });
}

Rows newest_first(Tx& tx, const std::string& select,
                  const std::vector<std::pair<std::string, std::optional<std::string>>>& filters,
                  const std::optional<std::string>& before, int limit) {
  Params params{limit + 1};
  std::string sql = select + " WHERE true";
  auto add = [&](const std::string& condition, const std::string& value) {
    params.push_back(value);
    sql += " AND " + condition + " $" + std::to_string(params.size());
  };
  for (const auto& [column, value] : filters)
    if (value) add(column + " =", *value);
  if (before) add("id <", *before);
  return tx.query(sql + " ORDER BY id DESC LIMIT $1", params);
}

namespace {
template <class T>
std::string bind_all(Params& params, const std::vector<T>& values) {
  std::string out;
  for (const auto& v : values) {
    params.emplace_back(v);
    out += (out.empty() ? "$" : ", $") + std::to_string(params.size());
  }
  return out;
}
}  // namespace

std::string bind_list(Params& params, const std::vector<std::string>& values) { return bind_all(params, values); }
std::string bind_list(Params& params, const std::vector<int64_t>& values) { return bind_all(params, values); }

void lock_keys(Tx& tx, std::vector<std::string> keys) {
  if (tx.engine() != Engine::postgres || keys.empty()) return;
  // (class, key) locks never meet the single-key ones (migrations). Taken
  // in the order of their hashes, each hash once: two transactions locking
  // overlapping sets never wait on each other in a circle.
  Params params;
  std::string values;
  for (auto& k : keys) {
    params.emplace_back(std::move(k));
    values += (values.empty() ? "($" : ", ($") + std::to_string(params.size()) + ")";
  }
  tx.query("SELECT pg_advisory_xact_lock(21317, h) FROM (SELECT DISTINCT hashtext(k) AS h FROM (VALUES " + values +
               ") AS v (k) ORDER BY h) AS o",
           params);
}

}  // namespace souq::db
