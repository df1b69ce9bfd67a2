#include <thread>

#include "db/migrations.hpp"
#include "test_db.hpp"

using namespace souq;
using souq::test::EngineTest;

namespace {
const std::vector<db::EmbeddedSql> kFiles = {
    {"shop", "0001_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"},
    {"shop", "0002_search.sqlite.sql", "CREATE TABLE search_engine (name TEXT); INSERT INTO search_engine VALUES ('fts5');"},
    {"shop", "0002_search.postgres.sql", "CREATE TABLE search_engine (name TEXT); INSERT INTO search_engine VALUES ('tsvector');"},
    {"core", "0001_base.sql", "CREATE TABLE base (id INTEGER PRIMARY KEY);"},
};
}  // namespace

TEST(MigrationPlan, OrdersByModuleThenVersionAndPicksTheEngineVariant) {
  auto plan = db::plan_migrations(db::Engine::sqlite, kFiles, {"core", "shop"});
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].module + "/" + plan[0].name, "core/0001_base");
  EXPECT_EQ(plan[1].name, "0001_items");
  EXPECT_EQ(plan[2].name, "0002_search");
  EXPECT_NE(plan[2].sql.find("fts5"), std::string::npos);
  auto pg = db::plan_migrations(db::Engine::postgres, kFiles, {"core", "shop"});
  EXPECT_NE(pg[2].sql.find("tsvector"), std::string::npos);
  EXPECT_EQ(plan[0].checksum.size(), 64u);
}

TEST(MigrationPlan, RefusesBadNamesAndDuplicates) {
  EXPECT_THROW(db::plan_migrations(db::Engine::sqlite, {{"m", "items.sql", ""}}, {}), db::Error);
  EXPECT_THROW(db::plan_migrations(db::Engine::sqlite, {{"m", "0001_a.sql", ""}, {"m", "0001_b.sql", ""}}, {}),
               db::Error);
}

TEST(MigrationPlan, EmbedsTheProjectsMigrations) {
  auto plan = db::plan_migrations(db::Engine::sqlite, db::embedded_migrations(), db::module_order());
  bool has_jobs = false;
  for (auto& m : plan) has_jobs |= m.module == "jobs" && m.name == "0001_jobs";
  EXPECT_TRUE(has_jobs);
}

class MigratorTest : public EngineTest {};

TEST_P(MigratorTest, AppliesOnceAndRecordsEachMigration) {
  auto db = database_.open();
  auto engine = db->engine();
  db::Migrator migrator(*db, db::plan_migrations(engine, kFiles, {"core", "shop"}));
  EXPECT_EQ(migrator.status().pending, 3);
  EXPECT_EQ(migrator.migrate(), 3);
  EXPECT_EQ(migrator.migrate(), 0);
  auto status = migrator.status();
  EXPECT_EQ(status.applied, 3);
  EXPECT_EQ(status.pending, 0);
  auto engine_row = db->read([](db::Tx& tx) { return tx.query_one("SELECT name FROM search_engine"); });
  EXPECT_EQ(engine_row->text("name"), engine == db::Engine::sqlite ? "fts5" : "tsvector");
}

TEST_P(MigratorTest, RefusesAMigrationEditedAfterItWasApplied) {
  auto db = database_.open();
  db::Migrator first(*db, db::plan_migrations(db->engine(), kFiles, {"core", "shop"}));
  first.migrate();
  auto edited = kFiles;
  edited[0].sql = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);";
  db::Migrator second(*db, db::plan_migrations(db->engine(), edited, {"core", "shop"}));
  EXPECT_THROW(second.migrate(), db::Error);
}

TEST_P(MigratorTest, AFailingMigrationLeavesNothingBehind) {
  auto db = database_.open();
  std::vector<db::EmbeddedSql> files = {{"m", "0001_ok.sql", "CREATE TABLE ok (id INTEGER);"},
                                        {"m", "0002_bad.sql", "CREATE TABLE half (id INTEGER); CREATE TABLE ok (id INTEGER);"}};
  db::Migrator migrator(*db, db::plan_migrations(db->engine(), files, {}));
  EXPECT_THROW(migrator.migrate(), db::Error);
  auto status = migrator.status();
  EXPECT_EQ(status.applied, 1);
  EXPECT_EQ(status.pending, 1);
  // `half` was created by the failed migration and must have rolled back with it.
  EXPECT_THROW(db->read([](db::Tx& tx) { tx.query("SELECT * FROM half"); }), db::Error);
}

TEST_P(MigratorTest, ProcessesStartingTogetherApplyEachMigrationOnce) {
  auto plan = db::plan_migrations(database_.open()->engine(), db::embedded_migrations(), db::module_order());
  std::atomic<int> applied{0}, failures{0};
  std::vector<std::thread> starters;
  for (int i = 0; i < 6; ++i)
    starters.emplace_back([&] {
      try {
        auto db = database_.open({.pool_size = 2});
        db::Migrator m(*db, plan);
        applied += m.migrate();
      } catch (const std::exception& e) {
        ++failures;
        ADD_FAILURE() << e.what();
      }
    });
  for (auto& t : starters) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(applied.load(), int(plan.size()));
  auto db = database_.open();
  EXPECT_EQ(db->read([](db::Tx& tx) { return tx.query_one("SELECT COUNT(*) AS n FROM schema_migrations")->integer("n"); }),
            int64_t(plan.size()));
}

SOUQ_ENGINES(MigratorTest);
