// SQLite: WAL, synchronous=NORMAL, foreign keys, one writer connection that
// serialises writes (BEGIN IMMEDIATE), and a pool of read-only connections.
#pragma once
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "db/database.hpp"

struct sqlite3;

namespace souq::db {

class SqliteConnection;

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(std::string path, Options options);
  ~SqliteDatabase() override;

  Engine engine() const override { return Engine::sqlite; }
  PoolStats pool_stats() const override;
  void maintain() override;

 protected:
  void run(Kind kind, const std::function<void(Tx&)>& fn) override;

 private:
  std::unique_ptr<SqliteConnection> open(bool read_only);
  std::unique_ptr<SqliteConnection> take_reader();
  void give_back(std::unique_ptr<SqliteConnection> c);

  std::string path_;
  Options options_;
  std::mutex writer_mutex_;
  std::unique_ptr<SqliteConnection> writer_;
  bool writer_busy_ = false;
  int maintain_rounds_ = 0;

  mutable std::mutex readers_mutex_;
  std::condition_variable readers_cv_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_readers_;
  int open_readers_ = 0;
  int readers_in_use_ = 0;
};

}  // namespace souq::db
