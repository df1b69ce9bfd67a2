#include "db/migrations.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "core/crypto.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

namespace souq::db {
namespace {

// An arbitrary constant: the advisory lock key every souq process migrates under.
constexpr int64_t kMigrationLockKey = 0x50f0'0001;

void lock_for_migration(Tx& tx) {
  if (tx.engine() == Engine::postgres) tx.query("SELECT pg_advisory_xact_lock($1)", {kMigrationLockKey});
  // SQLite: the write transaction (BEGIN IMMEDIATE) already excludes every other writer.
}

}  // namespace

const std::vector<std::string>& module_order() {
  static const std::vector<std::string> order = {"db", "jobs", "http", "audit", "identity", "sms", "transactions", "marketplace", "ratings", "reports", "realtime", "chat", "notifications", "ledger", "payments", "catalog", "search", "orders", "app"};
  return order;
}

std::vector<Migration> plan_migrations(Engine engine, const std::vector<EmbeddedSql>& files,
                                       const std::vector<std::string>& order) {
  const std::string this_engine = std::string(".") + engine_name(engine) + ".sql";
  const std::string other_engine = std::string(".") + engine_name(engine == Engine::sqlite ? Engine::postgres
                                                                                           : Engine::sqlite) + ".sql";
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  // (module, version) → (is engine-specific, migration)
  std::map<std::pair<std::string, int>, std::pair<bool, Migration>> chosen;
  for (const auto& f : files) {
    std::string file = f.file;
    if (ends_with(file, other_engine)) continue;
    bool specific = ends_with(file, this_engine);
    std::string stem = file.substr(0, file.size() - (specific ? this_engine.size() : 4));
    if (stem.size() < 6 || !std::all_of(stem.begin(), stem.begin() + 4, ::isdigit) || stem[4] != '_')
      throw Error(std::string("migration file name must look like NNNN_name.sql: ") + f.module + "/" + file);
    Migration m{f.module, std::stoi(stem.substr(0, 4)), stem, f.sql, crypto::sha256_hex(f.sql)};
    auto key = std::make_pair(m.module, m.version);
    auto it = chosen.find(key);
    if (it != chosen.end()) {
      if (it->second.first == specific || it->second.second.name != stem)
        throw Error("two migrations with version " + std::to_string(m.version) + " in module " + m.module);
      if (!specific) continue;  // the engine-specific file wins over the portable one
    }
    chosen[key] = {specific, std::move(m)};
  }
  std::vector<Migration> plan;
  for (auto& [key, value] : chosen) plan.push_back(std::move(value.second));
  auto rank = [&](const std::string& module) {
    auto it = std::find(order.begin(), order.end(), module);
    return it == order.end() ? order.size() : size_t(it - order.begin());
  };
  std::stable_sort(plan.begin(), plan.end(), [&](const Migration& a, const Migration& b) {
    auto ra = rank(a.module), rb = rank(b.module);
    if (ra != rb) return ra < rb;
    if (a.module != b.module) return a.module < b.module;
    return a.version < b.version;
  });
  return plan;
}

void Migrator::ensure_table() {
  db_.write([](Tx& tx) {
    lock_for_migration(tx);
    tx.script(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " module TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
        " checksum TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (module, version))");
  });
}

int Migrator::migrate() {
  ensure_table();
  int applied = 0;
  for (const auto& m : plan_) {
    bool ran = db_.write([&](Tx& tx) {
      lock_for_migration(tx);
      auto row = tx.query_one("SELECT checksum FROM schema_migrations WHERE module = $1 AND version = $2",
                              {m.module, m.version});
      if (row) {
        if (row->text("checksum") != m.checksum)
          throw Error("migration " + m.module + "/" + m.name +
                      " was changed after it was applied; add a new migration instead of editing it");
        return false;
      }
      tx.script(m.sql);
      tx.exec("INSERT INTO schema_migrations (module, version, name, checksum, applied_at) VALUES ($1,$2,$3,$4,$5)",
              {m.module, m.version, m.name, m.checksum, now_text()});
      return true;
    });
    if (ran) {
      ++applied;
      log::info("migration applied", {{"module", m.module}, {"migration", m.name}});
    }
  }
  return applied;
}

MigrationStatus Migrator::status() {
  return db_.read([&](Tx& tx) {
    MigrationStatus s;
    auto exists = tx.engine() == Engine::sqlite
                      ? tx.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'")
                      : tx.query("SELECT 1 FROM pg_tables WHERE tablename='schema_migrations' "
                                 "AND schemaname = current_schema()");
    if (exists.empty()) {
      s.pending = int(plan_.size());
      return s;
    }
    auto rows = tx.query("SELECT module, version FROM schema_migrations");
    std::set<std::pair<std::string, int64_t>> done;
    for (const auto& r : rows) done.emplace(r.text("module"), r.integer("version"));
    for (const auto& m : plan_) (done.count({m.module, m.version}) ? s.applied : s.pending)++;
    return s;
  });
}

}  // namespace souq::db
