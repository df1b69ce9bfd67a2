#include "db/postgres/postgres_database.hpp"

#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <unordered_map>

namespace souq::db {
namespace {

// A connect timeout unless the URL sets one: an unreachable server must not
// hold a pool thread for the kernel's TCP timeout. URL settings win.
PGconn* connect(const std::string& url) {
  const char* keywords[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"10", url.c_str(), nullptr};
  return PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// Type OIDs from pg_type.h, for turning text results into typed values.
constexpr Oid kBool = 16, kInt8 = 20, kInt2 = 21, kInt4 = 23, kOid = 26, kFloat4 = 700, kFloat8 = 701;

}  // namespace

class PgConnection final : public Tx {
 public:
  explicit PgConnection(const std::string& url) : conn_(connect(url)) {
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      std::string message = conn_ ? PQerrorMessage(conn_) : "out of memory";
      PQfinish(conn_);
      while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
      throw UnavailableError("cannot connect to PostgreSQL: " + message);
    }
    // Keep PostgreSQL's NOTICEs (e.g. "table exists, skipping") out of stderr.
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
    try {
      script("SET TIME ZONE 'UTC'");
    } catch (...) {
      PQfinish(conn_);
      throw;
    }
  }
  ~PgConnection() override { PQfinish(conn_); }

  Engine engine() const override { return Engine::postgres; }
  // True when a statement failed and the transaction can only roll back.
  bool aborted() const { return PQtransactionStatus(conn_) == PQTRANS_INERROR; }
  bool healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

  Rows query(std::string_view sql, const Params& params) override {
    Result res = execute(sql, params);
    int columns = PQnfields(res.get()), count = PQntuples(res.get());
    auto names = std::make_shared<std::vector<std::string>>();
    std::vector<Oid> types;
    for (int c = 0; c < columns; ++c) {
      names->emplace_back(PQfname(res.get(), c));
      types.push_back(PQftype(res.get(), c));
    }
    Rows rows(names);
    for (int r = 0; r < count; ++r) {
      std::vector<Value> values;
      values.reserve(columns);
      for (int c = 0; c < columns; ++c) {
        if (PQgetisnull(res.get(), r, c)) {
          values.emplace_back();
          continue;
        }
        const char* text = PQgetvalue(res.get(), r, c);
        switch (types[c]) {
          case kBool: values.emplace_back(text[0] == 't'); break;
          case kInt2:
          case kInt4:
          case kInt8:
          case kOid: values.emplace_back(int64_t(std::strtoll(text, nullptr, 10))); break;
          case kFloat4:
          case kFloat8: values.emplace_back(std::strtod(text, nullptr)); break;
          default: values.emplace_back(std::string(text, PQgetlength(res.get(), r, c)));
        }
      }
      rows.push(std::move(values));
    }
    return rows;
  }

  int64_t exec(std::string_view sql, const Params& params) override {
    Result res = execute(sql, params);
    const char* n = PQcmdTuples(res.get());
    return n && *n ? std::strtoll(n, nullptr, 10) : 0;
  }

  void script(std::string_view sql) override {
    std::string text(sql);
    Result res(PQexec(conn_, text.c_str()));
    check(res.get(), "script failed");
  }

  void rollback_quietly() {
    if (healthy() && PQtransactionStatus(conn_) != PQTRANS_IDLE) PQclear(PQexec(conn_, "ROLLBACK"));
  }

 private:
  Result execute(std::string_view sql, const Params& params) {
    auto it = prepared_.find(sql);
    if (it == prepared_.end()) {
      if (prepared_.size() >= 512) {  // dynamic SQL: bound the cache
        PQclear(PQexec(conn_, "DEALLOCATE ALL"));
        prepared_.clear();
      }
      std::string name = "s" + std::to_string(next_statement_++);
      std::string text(sql);
      Result prep(PQprepare(conn_, name.c_str(), text.c_str(), 0, nullptr));
      check(prep.get(), "cannot prepare `" + text.substr(0, 200) + "`");
      it = prepared_.emplace(std::move(text), std::move(name)).first;
    }
    std::vector<std::string> storage(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (size_t i = 0; i < params.size(); ++i) {
      if (params[i].is_null()) continue;
      storage[i] = params[i].as_string();
      values[i] = storage[i].c_str();
    }
    Result res(PQexecPrepared(conn_, it->second.c_str(), int(values.size()), values.data(), nullptr, nullptr, 0));
    check(res.get(), "query failed");
    return res;
  }

  void check(PGresult* res, const std::string& context) {
    auto status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
    std::string message = context + ": " + (res ? PQresultErrorMessage(res) : PQerrorMessage(conn_));
    while (!message.empty() && message.back() == '\n') message.pop_back();
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    std::string code = state ? state : "";
    if (!healthy()) throw ConnectionLostError(message + " (connection lost)");
    if (code == "40001" || code == "40P01") throw RetryableError(message);
    using K = ConstraintError::Kind;
    if (code == "23505") throw ConstraintError(K::unique, message);
    if (code == "23503") throw ConstraintError(K::foreign_key, message);
    if (code == "23514") throw ConstraintError(K::check, message);
    if (code == "23502") throw ConstraintError(K::not_null, message);
    if (code.rfind("23", 0) == 0) throw ConstraintError(K::other, message);
    throw Error(message);
  }

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  PGconn* conn_;
  std::unordered_map<std::string, std::string, Hash, std::equal_to<>> prepared_;
  int next_statement_ = 0;
};

PostgresDatabase::PostgresDatabase(std::string url, Options options) : url_(std::move(url)), options_(options) {
  give_back(take());  // fail at start-up, with libpq's message, when the server cannot be reached
}

PostgresDatabase::~PostgresDatabase() = default;

PoolStats PostgresDatabase::pool_stats() const {
  std::lock_guard lock(mutex_);
  return PoolStats{options_.pool_size, in_use_, int(idle_.size())};
}

std::unique_ptr<PgConnection> PostgresDatabase::take() {
  std::unique_lock lock(mutex_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.busy_timeout_ms);
  for (;;) {
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      ++in_use_;
      return c;
    }
    if (open_ < options_.pool_size) {
      ++open_;
      ++in_use_;
      lock.unlock();
      try {
        return std::make_unique<PgConnection>(url_);
      } catch (...) {
        lock.lock();
        --open_;
        --in_use_;
        throw;
      }
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() && open_ >= options_.pool_size)
      throw UnavailableError("no PostgreSQL connection free within " + std::to_string(options_.busy_timeout_ms) +
                             " ms (pool size " + std::to_string(options_.pool_size) + ")");
  }
}

void PostgresDatabase::give_back(std::unique_ptr<PgConnection> c) {
  {
    std::lock_guard lock(mutex_);
    --in_use_;
    if (c && c->healthy()) idle_.push_back(std::move(c));
    else --open_;  // a broken connection is dropped; the next take opens a new one
  }
  cv_.notify_one();
}

void PostgresDatabase::after_bulk_load() {
  auto conn = take();
  try {
    conn->script("VACUUM (ANALYZE)");  // never inside a transaction
  } catch (...) {
    give_back(std::move(conn));
    throw;
  }
  give_back(std::move(conn));
}

void PostgresDatabase::run(Kind kind, const std::function<void(Tx&)>& fn) {
  std::vector<std::function<void()>> after;
  run_with_retry(options_, [&] {
    auto conn = take();
    conn->take_after_commit();
    bool committing = false;
    try {
      // Reads get one snapshot for all their statements (a list and its count
      // agree); read-only REPEATABLE READ never fails to serialize.
      conn->script(kind == Kind::write ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      fn(*conn);
      // fn caught a statement's error and returned: PostgreSQL would answer
      // COMMIT by rolling back, and the caller would think it committed.
      if (conn->aborted()) throw Error("transaction aborted by an earlier failed statement; nothing was written");
      committing = true;
      conn->script("COMMIT");
    } catch (const RetryableError& e) {
      conn->rollback_quietly();
      give_back(conn->healthy() ? std::move(conn) : nullptr);
      // A connection lost during COMMIT leaves the outcome unknown: not safe to repeat.
      if (committing && dynamic_cast<const ConnectionLostError*>(&e)) throw Error(std::string("outcome unknown: ") + e.what());
      throw;
    } catch (...) {
      conn->rollback_quietly();
      give_back(std::move(conn));
      throw;
    }
    after = conn->take_after_commit();
    give_back(std::move(conn));
  });
  for (auto& f : after) f();
}

}  // namespace souq::db
