// PostgreSQL through libpq: a pool of connections, READ COMMITTED
// transactions, prepared statements cached per connection, and retries on
// serialization failure, deadlock and a connection lost before commit.
#pragma once
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "db/database.hpp"

namespace souq::db {

class PgConnection;

class PostgresDatabase final : public Database {
 public:
  PostgresDatabase(std::string url, Options options);
  ~PostgresDatabase() override;

  Engine engine() const override { return Engine::postgres; }
  PoolStats pool_stats() const override;
  void after_bulk_load() override;

 protected:
  void run(Kind kind, const std::function<void(Tx&)>& fn) override;

 private:
  std::unique_ptr<PgConnection> take();
  void give_back(std::unique_ptr<PgConnection> c);

  std::string url_;
  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  int open_ = 0;
  int in_use_ = 0;
};

}  // namespace souq::db
