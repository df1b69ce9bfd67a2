// The Database seen from a coroutine: the same write/read, run on the blocking
// pool so that an I/O thread never waits on SQLite or PostgreSQL.
#pragma once
#include "core/blocking.hpp"
#include "db/database.hpp"

namespace souq::db {

class AsyncDatabase {
 public:
  AsyncDatabase(Database& db, BlockingPool& pool) : db_(db), pool_(pool) {}

  Database& sync() { return db_; }
  Engine engine() const { return db_.engine(); }

  template <class F>
  auto write(F fn) {
    return pool_.run([this, fn = std::move(fn)]() mutable { return db_.write(fn); });
  }
  template <class F>
  auto read(F fn) {
    return pool_.run([this, fn = std::move(fn)]() mutable { return db_.read(fn); });
  }

 private:
  Database& db_;
  BlockingPool& pool_;
};

}  // namespace souq::db
