// Migrations: SQL files per module (src/<module>/migrations/NNNN_name.sql,
// with NNNN_name.sqlite.sql / NNNN_name.postgres.sql where the engines need
// different text), embedded in the binary, applied in order and recorded in
// schema_migrations. Each runs in its own transaction under a lock, so several
// processes starting at once apply each migration exactly once.
#pragma once
#include <string>
#include <vector>

#include "db/database.hpp"

namespace souq::db {

struct EmbeddedSql {
  const char* module;
  const char* file;
  const char* sql;
};
// Generated at build time by cmake/embed_migrations.cmake.
const std::vector<EmbeddedSql>& embedded_migrations();

struct Migration {
  std::string module;
  int version;
  std::string name;  // "0001_jobs"
  std::string sql;
  std::string checksum;  // sha256 of sql, hex
};

// The migrations for an engine, in the order they apply: modules in
// `module_order` first (in that order), any others after by name; within a
// module by version. Throws Error for a malformed file name or duplicate.
std::vector<Migration> plan_migrations(Engine engine, const std::vector<EmbeddedSql>& files,
                                       const std::vector<std::string>& module_order);

struct MigrationStatus {
  int applied = 0;
  int pending = 0;
};

class Migrator {
 public:
  Migrator(Database& db, std::vector<Migration> plan) : db_(db), plan_(std::move(plan)) {}
  // Applies what is pending; returns how many were applied. Throws Error when
  // an applied migration's checksum no longer matches its file.
  int migrate();
  MigrationStatus status();
  int total() const { return int(plan_.size()); }

 private:
  void ensure_table();
  Database& db_;
  std::vector<Migration> plan_;
};

// The order modules' migrations apply in (owners of referenced tables first).
const std::vector<std::string>& module_order();

}  // namespace souq::db
