#include "db/sqlite/sqlite_database.hpp"

#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <unordered_map>

#include "db/sqlite/fts_rank.hpp"

namespace souq::db {
namespace {

[[noreturn]] void raise(sqlite3* db, int rc, std::string_view context) {
  std::string message = std::string(context) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) throw RetryableError(message);
  if (primary == SQLITE_CONSTRAINT) {
    using K = ConstraintError::Kind;
    K kind = K::other;
    switch (rc) {
      case SQLITE_CONSTRAINT_UNIQUE:
      case SQLITE_CONSTRAINT_PRIMARYKEY: kind = K::unique; break;
      case SQLITE_CONSTRAINT_FOREIGNKEY: kind = K::foreign_key; break;
      case SQLITE_CONSTRAINT_CHECK: kind = K::check; break;
      case SQLITE_CONSTRAINT_NOTNULL: kind = K::not_null; break;
    }
    throw ConstraintError(kind, message);
  }
  throw Error(message);
}

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

// A prepared statement and, for each of our parameters $1, $2 …, the slot
// SQLite gave it (0: not used). SQLite treats $n as named parameters, and
// looking a name up is linear in their number: done per execution, a
// 4,000-parameter insert spent 80 % of its time there.
struct Prepared {
  Stmt stmt;
  std::vector<int> slots;
};

// souq_distance_km(lat1, lng1, lat2, lng2): great-circle kilometres, NULL if
// any input is NULL. PostgreSQL has the same function (db migration 0001).
void distance_km(sqlite3_context* ctx, int, sqlite3_value** argv) {
  double v[4];
  for (int i = 0; i < 4; ++i) {
    if (sqlite3_value_type(argv[i]) == SQLITE_NULL) {
      sqlite3_result_null(ctx);
      return;
    }
    v[i] = sqlite3_value_double(argv[i]);
  }
  sqlite3_result_double(ctx, great_circle_km(v[0], v[1], v[2], v[3]));
}

// SQLite keeps memory statistics under one process-wide mutex that every
// allocation of every connection takes; Souq reads none of them, and with a
// pool of readers that mutex was a tenth of a list route's time. Set before
// SQLite starts (the first connection), once.
void configure_sqlite() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

}  // namespace

// One sqlite3 handle with its prepared-statement cache. Used by one thread at a time.
class SqliteConnection final : public Tx {
 public:
  SqliteConnection(const std::string& path, bool read_only, int busy_timeout_ms) {
    configure_sqlite();
    int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string message = "cannot open SQLite database '" + path + "': " +
                            (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
      sqlite3_close_v2(db_);
      throw Error(message);
    }
    sqlite3_busy_timeout(db_, busy_timeout_ms);
    sqlite3_extended_result_codes(db_, 1);
    if (!read_only) {
      script("PRAGMA journal_mode=WAL");
      script("PRAGMA synchronous=NORMAL");
    }
    script("PRAGMA foreign_keys=ON");
    sqlite3_create_function_v2(db_, "souq_distance_km", 4, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                               distance_km, nullptr, nullptr, nullptr);
    if (!register_weighted_rank(db_)) throw Error("this SQLite has no FTS5 (search needs it)");
  }
  ~SqliteConnection() override {
    cache_.clear();
    sqlite3_close_v2(db_);
  }

  Engine engine() const override { return Engine::sqlite; }

  // A statement failed in this transaction. PostgreSQL then refuses to commit
  // anything; SQLite would commit the rest, so we refuse too: both engines
  // behave alike for code that catches a statement's error and goes on.
  bool failed = false;

  Rows query(std::string_view sql, const Params& params) override {
    try {
      return query_unguarded(sql, params);
    } catch (...) {
      failed = true;
      throw;
    }
  }

  int64_t exec(std::string_view sql, const Params& params) override {
    try {
      return exec_unguarded(sql, params);
    } catch (...) {
      failed = true;
      throw;
    }
  }

 private:
  Rows query_unguarded(std::string_view sql, const Params& params) {
    sqlite3_stmt* stmt = prepare(sql, params);
    int columns = sqlite3_column_count(stmt);
    auto names = std::make_shared<std::vector<std::string>>();
    for (int i = 0; i < columns; ++i) names->emplace_back(sqlite3_column_name(stmt, i));
    Rows rows(names);
    for (;;) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        raise(db_, rc, "query failed");
      }
      std::vector<Value> values;
      values.reserve(columns);
      for (int i = 0; i < columns; ++i) {
        switch (sqlite3_column_type(stmt, i)) {
          case SQLITE_INTEGER: values.emplace_back(int64_t(sqlite3_column_int64(stmt, i))); break;
          case SQLITE_FLOAT: values.emplace_back(sqlite3_column_double(stmt, i)); break;
          case SQLITE_NULL: values.emplace_back(); break;
          default: {
            auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
            values.emplace_back(std::string(text, sqlite3_column_bytes(stmt, i)));
          }
        }
      }
      rows.push(std::move(values));
    }
    sqlite3_reset(stmt);
    return rows;
  }

  int64_t exec_unguarded(std::string_view sql, const Params& params) {
    sqlite3_stmt* stmt = prepare(sql, params);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) raise(db_, rc, "statement failed");
    return sqlite3_changes64(db_);
  }

 public:
  void script(std::string_view sql) override {
    char* error = nullptr;
    std::string text(sql);
    int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
    if (rc != SQLITE_OK) {
      std::string message = error ? error : sqlite3_errstr(rc);
      sqlite3_free(error);
      raise(nullptr, rc, "script failed: " + message);
    }
  }

  // Ends whatever transaction is open, ignoring errors (after a failure).
  void rollback_quietly() {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  sqlite3* handle() { return db_; }

 private:
  sqlite3_stmt* prepare(std::string_view sql, const Params& params) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      // Dynamic SQL could grow the cache without bound; start afresh past a size.
      if (cache_.size() >= 512) cache_.clear();
      sqlite3_stmt* raw = nullptr;
      int rc = sqlite3_prepare_v3(db_, sql.data(), int(sql.size()), SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
      if (rc != SQLITE_OK) raise(db_, rc, "cannot prepare `" + std::string(sql.substr(0, 200)) + "`");
      Prepared p{Stmt(raw), {}};
      // Each distinct $n has one slot, so a parameter may appear more than once.
      for (int slot = 1, count = sqlite3_bind_parameter_count(raw); slot <= count; ++slot) {
        const char* name = sqlite3_bind_parameter_name(raw, slot);
        if (!name || name[0] != '$') continue;
        size_t n = size_t(std::strtoul(name + 1, nullptr, 10));
        if (n == 0) continue;
        if (p.slots.size() < n) p.slots.resize(n, 0);
        p.slots[n - 1] = slot;
      }
      it = cache_.emplace(std::string(sql), std::move(p)).first;
    }
    sqlite3_stmt* stmt = it->second.stmt.get();
    const auto& slots = it->second.slots;
    sqlite3_clear_bindings(stmt);
    for (size_t i = 0; i < params.size(); ++i) {
      int index = i < slots.size() ? slots[i] : 0;
      if (index == 0) continue;  // parameter not used by this statement
      const auto& v = params[i].storage();
      int rc = SQLITE_OK;
      if (std::holds_alternative<std::monostate>(v)) rc = sqlite3_bind_null(stmt, index);
      else if (auto* n = std::get_if<int64_t>(&v)) rc = sqlite3_bind_int64(stmt, index, *n);
      else if (auto* d = std::get_if<double>(&v)) rc = sqlite3_bind_double(stmt, index, *d);
      else {
        const auto& s = std::get<std::string>(v);
        rc = sqlite3_bind_text64(stmt, index, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) raise(db_, rc, "cannot bind parameter $" + std::to_string(i + 1));
    }
    return stmt;
  }

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, Prepared, Hash, std::equal_to<>> cache_;
};

SqliteDatabase::SqliteDatabase(std::string path, Options options) : path_(std::move(path)), options_(options) {
  if (path_.empty()) throw Error("sqlite: URL needs a path, e.g. sqlite:./var/souq.db");
  auto parent = std::filesystem::path(path_).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) throw Error("cannot create folder " + parent.string() + ": " + ec.message());
  writer_ = open(false);
}

SqliteDatabase::~SqliteDatabase() = default;

std::unique_ptr<SqliteConnection> SqliteDatabase::open(bool read_only) {
  return std::make_unique<SqliteConnection>(path_, read_only, options_.busy_timeout_ms);
}

PoolStats SqliteDatabase::pool_stats() const {
  std::lock_guard lock(readers_mutex_);
  PoolStats s;
  s.size = options_.pool_size + 1;
  s.in_use = readers_in_use_ + (writer_busy_ ? 1 : 0);
  s.idle = int(idle_readers_.size()) + (writer_busy_ ? 0 : 1);
  return s;
}

std::unique_ptr<SqliteConnection> SqliteDatabase::take_reader() {
  std::unique_lock lock(readers_mutex_);
  for (;;) {
    if (!idle_readers_.empty()) {
      auto c = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      ++readers_in_use_;
      return c;
    }
    if (open_readers_ < options_.pool_size) {
      ++open_readers_;
      ++readers_in_use_;
      lock.unlock();
      try {
        return open(true);
      } catch (...) {
        lock.lock();
        --open_readers_;
        --readers_in_use_;
        throw;
      }
    }
    readers_cv_.wait(lock);
  }
}

void SqliteDatabase::give_back(std::unique_ptr<SqliteConnection> c) {
  {
    std::lock_guard lock(readers_mutex_);
    --readers_in_use_;
    if (c) idle_readers_.push_back(std::move(c));
    else --open_readers_;
  }
  readers_cv_.notify_one();
}

void SqliteDatabase::run(Kind kind, const std::function<void(Tx&)>& fn) {
  std::vector<std::function<void()>> after;
  if (kind == Kind::write) {
    std::lock_guard lock(writer_mutex_);
    {
      std::lock_guard stats(readers_mutex_);
      writer_busy_ = true;
    }
    struct Idle {
      SqliteDatabase* self;
      ~Idle() {
        std::lock_guard stats(self->readers_mutex_);
        self->writer_busy_ = false;
      }
    } idle{this};
    run_with_retry(options_, [&] {
      writer_->take_after_commit();
      try {
        // IMMEDIATE takes the write lock now, so another process's writer makes
        // us wait in the busy handler instead of failing later.
        writer_->script("BEGIN IMMEDIATE");
        writer_->failed = false;
        fn(*writer_);
        if (writer_->failed) throw Error("transaction aborted by an earlier failed statement; nothing was written");
        writer_->script("COMMIT");
      } catch (...) {
        writer_->rollback_quietly();
        throw;
      }
      after = writer_->take_after_commit();
    });
  } else {
    auto reader = take_reader();
    try {
      run_with_retry(options_, [&] {
        reader->take_after_commit();  // drop hooks of a failed attempt
        try {
          reader->script("BEGIN");
          fn(*reader);
          reader->script("COMMIT");
        } catch (...) {
          reader->rollback_quietly();
          throw;
        }
      });
    } catch (...) {
      give_back(std::move(reader));
      throw;
    }
    after = reader->take_after_commit();
    give_back(std::move(reader));
  }
  for (auto& f : after) f();
}

void SqliteDatabase::maintain() {
  {
    std::lock_guard lock(writer_mutex_);
    // Readers that never pause keep the WAL from being reset; truncate it now
    // and then so that it cannot grow without bound. Writers wait meanwhile, so
    // give up quickly when readers are busy: the next round will try again.
    sqlite3_busy_timeout(writer_->handle(), 100);
    sqlite3_wal_checkpoint_v2(writer_->handle(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    sqlite3_busy_timeout(writer_->handle(), options_.busy_timeout_ms);
  }
  // Tables grow: the planner's statistics follow, once an hour (maintain runs each minute).
  if (++maintain_rounds_ % 60 == 0) analyze();
}

}  // namespace souq::db
