// A fresh database per test, on either engine. PostgreSQL tests use the
// cluster at SOUQ_TEST_PG_URL (scripts/test starts one) and create a database
// of their own in it; without the variable they are skipped, unless
// SOUQ_REQUIRE_PG=1 (as scripts/test sets), when they fail.
#pragma once
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "db/database.hpp"

namespace souq::test {

inline std::string random_suffix() {
  std::random_device rd;
  return std::to_string(rd()) + std::to_string(rd() % 100000);
}

class TestDatabase {
 public:
  // Returns false (with `why`) when the engine is not available here.
  bool create(const std::string& engine, std::string& why) {
    engine_ = engine;
    if (engine == "sqlite") {
      dir_ = std::filesystem::temp_directory_path() / ("souq-unit-" + random_suffix());
      std::filesystem::create_directories(dir_);
      url_ = "sqlite:" + (dir_ / "test.db").string();
      return true;
    }
    const char* admin = std::getenv("SOUQ_TEST_PG_URL");
    if (!admin || !*admin) {
      why = "SOUQ_TEST_PG_URL is not set";
      return false;
    }
    admin_ = admin;
    name_ = "souq_u_" + random_suffix();
    admin_exec("CREATE DATABASE " + name_);
    auto slash = admin_.rfind('/');
    url_ = admin_.substr(0, slash + 1) + name_;
    return true;
  }
  ~TestDatabase() {
    if (engine_ == "sqlite" && !dir_.empty()) std::filesystem::remove_all(dir_);
    if (engine_ == "postgres" && !name_.empty()) admin_exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  const std::string& url() const { return url_; }
  std::unique_ptr<db::Database> open(db::Options options = {}) const { return db::open_database(url_, options); }

 private:
  void admin_exec(const std::string& sql) {
    PGconn* c = PQconnectdb(admin_.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      std::string message = PQerrorMessage(c);
      PQfinish(c);
      throw std::runtime_error("cannot reach test cluster: " + message);
    }
    PGresult* r = PQexec(c, sql.c_str());
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string message = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    if (!ok) throw std::runtime_error(sql + ": " + message);
  }
  std::string engine_, url_, admin_, name_;
  std::filesystem::path dir_;
};

// Base for tests parameterised by engine name ("sqlite", "postgres").
class EngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    if (!database_.create(GetParam(), why)) {
      const char* require = std::getenv("SOUQ_REQUIRE_PG");
      if (require && std::string(require) == "1") FAIL() << why;
      GTEST_SKIP() << why;
    }
  }
  TestDatabase database_;
};

#define SOUQ_ENGINES(Suite) \
  INSTANTIATE_TEST_SUITE_P(Engines, Suite, ::testing::Values("sqlite", "postgres"), \
                           [](const auto& info) { return info.param; })

}  // namespace souq::test
