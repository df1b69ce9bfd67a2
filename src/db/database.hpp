// The Database interface: transactions over SQLite or PostgreSQL with the same
// SQL text ($1, $2 … placeholders on both engines). Calls block; run them on
// the blocking pool (see db/async.hpp), never on an I/O thread.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "db/errors.hpp"
#include "db/rows.hpp"
#include "db/value.hpp"

namespace souq::db {

enum class Engine { sqlite, postgres };

// Great-circle distance in kilometres (haversine). In SQL on both engines:
// souq_distance_km(lat1, lng1, lat2, lng2).
double great_circle_km(double lat1, double lng1, double lat2, double lng2);
const char* engine_name(Engine e);

using Params = std::vector<Value>;

// One open transaction on one connection. Valid only inside Database::write/read.
class Tx {
 public:
  virtual ~Tx() = default;
  virtual Engine engine() const = 0;
  virtual Rows query(std::string_view sql, const Params& params = {}) = 0;
  // Returns the number of rows changed.
  virtual int64_t exec(std::string_view sql, const Params& params = {}) = 0;
  // Several statements without parameters (migrations).
  virtual void script(std::string_view sql) = 0;

  std::optional<Row> query_one(std::string_view sql, const Params& params = {}) { return query(sql, params).first(); }

  // " FOR UPDATE" on PostgreSQL; nothing on SQLite, whose single writer
  // already serialises writers. Locks a row first so that writers touching
  // the same rows take their locks in one order.
  std::string_view for_update() const { return engine() == Engine::postgres ? " FOR UPDATE" : ""; }

  // " FOR SHARE" on PostgreSQL: the row cannot change or go until the
  // transaction ends, and a change committed meanwhile is seen; nothing on SQLite.
  std::string_view for_share() const { return engine() == Engine::postgres ? " FOR SHARE" : ""; }

  // " FOR UPDATE SKIP LOCKED" on PostgreSQL; nothing on SQLite, whose single
  // writer already serialises the claim.
  std::string_view for_update_skip_locked() const {
    return engine() == Engine::postgres ? " FOR UPDATE SKIP LOCKED" : "";
  }

  // Runs after the transaction commits (never if it rolls back or retries).
  void after_commit(std::function<void()> fn) { after_commit_.push_back(std::move(fn)); }
  std::vector<std::function<void()>> take_after_commit() { return std::exchange(after_commit_, {}); }

 private:
  std::vector<std::function<void()>> after_commit_;
};

// Appends `values` to `params` and returns their placeholders, "$4, $5, $6",
// for an IN (…) list.
std::string bind_list(Params& params, const std::vector<std::string>& values);
std::string bind_list(Params& params, const std::vector<int64_t>& values);

// Serialises, until `tx` ends, the transactions that lock any of the same
// keys ("product:prod_…"): a transaction-scoped advisory lock on
// PostgreSQL; nothing on SQLite, whose single writer serialises writers.
void lock_keys(Tx& tx, std::vector<std::string> keys);

// One page of a list ordered by id, newest first: `select` is "SELECT … FROM
// table"; each filter with a value adds "column = value"; `before` (a
// cursor) adds "id < before". Fetches limit + 1 rows, for page_of().
Rows newest_first(Tx& tx, const std::string& select,
                  const std::vector<std::pair<std::string, std::optional<std::string>>>& filters,
                  const std::optional<std::string>& before, int limit);

// Inserts rows of `columns` values each (`values` row after row) with
// multi-row INSERTs of a few hundred rows: for loading, seeding and
// indexing, where one statement per row would take minutes. `into` is
// "table (col, col, …)"; `suffix` ends each statement (ON CONFLICT …,
// RETURNING …), and the rows RETURNING gives are returned.
std::vector<Row> bulk_insert(Tx& tx, std::string_view into, size_t columns, const std::vector<Value>& values,
                             std::string_view suffix = {});

struct PoolStats {
  int size = 0;    // connections the pool may hold
  int in_use = 0;  // checked out right now
  int idle = 0;    // open and free
};

struct Options {
  int pool_size = 8;     // PostgreSQL connections; SQLite reader connections
  int max_attempts = 8;  // a transaction is tried this often on retryable errors
  int busy_timeout_ms = 5000;
};

class Database {
 public:
  virtual ~Database() = default;
  virtual Engine engine() const = 0;
  virtual PoolStats pool_stats() const = 0;
  // Housekeeping a timer calls now and then (SQLite: checkpoint the WAL,
  // and refresh the planner's statistics hourly).
  virtual void maintain() {}
  // Refreshes the query planner's statistics. SQLite has none until asked,
  // and without them it sorts every open request to show twenty; it samples
  // (analysis_limit), so this takes milliseconds. PostgreSQL's autovacuum
  // keeps its own; call it after a bulk load.
  void analyze();
  // After loading or rebuilding much at once (souq seed, souq search
  // reindex): analyze(), and on PostgreSQL a VACUUM first, which marks the
  // new rows visible to every transaction. Until autovacuum gets there, an
  // index-only scan reads each row's table page as well (the counts of a
  // search over a freshly seeded million products took seconds).
  virtual void after_bulk_load() { analyze(); }

  // Runs fn(tx) in a read-write transaction and commits. On a retryable error
  // the whole of fn runs again, so fn must have no effect outside tx.
  template <class F>
  auto write(F&& fn) {
    return run_typed(Kind::write, std::forward<F>(fn));
  }
  // Runs fn(tx) in a read-only transaction (a consistent snapshot).
  template <class F>
  auto read(F&& fn) {
    return run_typed(Kind::read, std::forward<F>(fn));
  }

 protected:
  enum class Kind { read, write };
  virtual void run(Kind kind, const std::function<void(Tx&)>& fn) = 0;
  // The shared retry loop both engines use around one attempt.
  void run_with_retry(const Options& options, const std::function<void()>& attempt);

 private:
  template <class F>
  auto run_typed(Kind kind, F&& fn) {
    using R = std::invoke_result_t<F&, Tx&>;
    if constexpr (std::is_void_v<R>) {
      run(kind, [&](Tx& tx) { fn(tx); });
    } else {
      std::optional<R> out;
      run(kind, [&](Tx& tx) { out.emplace(fn(tx)); });
      return std::move(*out);
    }
  }
};

// "sqlite:PATH" or "postgres://…" / "postgresql://…". Throws Error with a
// clear message for anything else or when the database cannot be opened.
std::unique_ptr<Database> open_database(const std::string& url, const Options& options = {});

}  // namespace souq::db
