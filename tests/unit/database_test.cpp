#include <atomic>
#include <thread>

#include "db/database.hpp"
#include "test_db.hpp"

using namespace souq;
using souq::test::EngineTest;

class DatabaseTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    db = database_.open();
    db->write([](db::Tx& tx) {
      tx.script("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty BIGINT NOT NULL,"
                " price REAL, note TEXT, flag INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT 'pending')");
    });
  }
  std::unique_ptr<db::Database> db;
};

TEST_P(DatabaseTest, RoundTripsTypedValues) {
  db->write([](db::Tx& tx) {
    EXPECT_EQ(tx.exec("INSERT INTO items (id, name, qty, price, note, flag) VALUES ($1, $2, $3, $4, $5, $6)",
                      {1, "تمر", int64_t(9'007'199'254'740'993), 12.5, nullptr, true}),
              1);
  });
  auto row = db->read([](db::Tx& tx) { return tx.query_one("SELECT * FROM items WHERE id = $1", {1}); });
  ASSERT_TRUE(row);
  EXPECT_EQ(row->text("name"), "تمر");
  EXPECT_EQ(row->integer("qty"), 9'007'199'254'740'993);
  EXPECT_DOUBLE_EQ(row->real("price"), 12.5);
  EXPECT_TRUE(row->is_null("note"));
  EXPECT_FALSE(row->opt_text("note"));
  EXPECT_TRUE(row->boolean("flag"));
  EXPECT_THROW(row->text("missing"), db::Error);
}

TEST_P(DatabaseTest, PlaceholdersMayRepeatAndComeOutOfOrder) {
  db->write([](db::Tx& tx) {
    // PostgreSQL deduces one type per parameter: repeat one only where the types agree.
    tx.exec("INSERT INTO items (id, name, qty, note) VALUES ($2, $1, $3, $1)", {"x", 7, 7});
  });
  auto row = db->read([](db::Tx& tx) { return *tx.query_one("SELECT id, name, qty, note FROM items"); });
  EXPECT_EQ(row.integer("id"), 7);
  EXPECT_EQ(row.integer("qty"), 7);
  EXPECT_EQ(row.text("note"), "x");
}

TEST_P(DatabaseTest, AnExceptionRollsBackAndSkipsAfterCommit) {
  bool ran = false;
  EXPECT_THROW(db->write([&](db::Tx& tx) {
    tx.exec("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)");
    tx.after_commit([&] { ran = true; });
    throw std::runtime_error("boom");
  }),
               std::runtime_error);
  EXPECT_FALSE(ran);
  EXPECT_EQ(db->read([](db::Tx& tx) { return tx.query_one("SELECT COUNT(*) AS n FROM items")->integer("n"); }), 0);
  db->write([&](db::Tx& tx) {
    tx.exec("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)");
    tx.after_commit([&] { ran = true; });
  });
  EXPECT_TRUE(ran);
}

TEST_P(DatabaseTest, ConstraintViolationsAreTyped) {
  db->write([](db::Tx& tx) { tx.exec("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)"); });
  try {
    db->write([](db::Tx& tx) { tx.exec("INSERT INTO items (id, name, qty) VALUES (2, 'a', 1)"); });
    FAIL() << "expected a unique violation";
  } catch (const db::ConstraintError& e) {
    EXPECT_EQ(e.kind(), db::ConstraintError::Kind::unique);
  }
  try {
    db->write([](db::Tx& tx) { tx.exec("INSERT INTO items (id, name, qty) VALUES (3, NULL, 1)"); });
    FAIL() << "expected a not-null violation";
  } catch (const db::ConstraintError& e) {
    EXPECT_EQ(e.kind(), db::ConstraintError::Kind::not_null);
  }
  EXPECT_THROW(db->write([](db::Tx& tx) { tx.exec("SELEKT nonsense"); }), db::Error);
  // The connection is still good after errors.
  EXPECT_EQ(db->read([](db::Tx& tx) { return tx.query("SELECT id FROM items").size(); }), 1u);
}

TEST_P(DatabaseTest, ConcurrentGuardedTransitionsLetExactlyOneWin) {
  db->write([](db::Tx& tx) { tx.exec("INSERT INTO items (id, name, qty) VALUES (1, 'offer', 1)"); });
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i)
    threads.emplace_back([&, i] {
      auto other = database_.open({.pool_size = 2});  // its own pool, as another node would have
      bool won = other->write([&](db::Tx& tx) {
        return tx.exec("UPDATE items SET status = 'accepted', qty = $1 WHERE id = 1 AND status = 'pending'",
                       {i}) == 1;
      });
      if (won) ++winners;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
}

TEST_P(DatabaseTest, ConcurrentIncrementsAreNotLost) {
  db->write([](db::Tx& tx) { tx.exec("INSERT INTO items (id, name, qty) VALUES (1, 'counter', 0)"); });
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      for (int n = 0; n < 40; ++n)
        db->write([](db::Tx& tx) { tx.exec("UPDATE items SET qty = qty + 1 WHERE id = 1"); });
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(db->read([](db::Tx& tx) { return tx.query_one("SELECT qty FROM items WHERE id = 1")->integer("qty"); }),
            320);
}

TEST_P(DatabaseTest, DeadlockedTransactionsAreRetried) {
  db->write([](db::Tx& tx) {
    tx.exec("INSERT INTO items (id, name, qty) VALUES (1, 'a', 0)");
    tx.exec("INSERT INTO items (id, name, qty) VALUES (2, 'b', 0)");
  });
  // Two writers take the same two rows in opposite order. PostgreSQL kills one
  // with a deadlock error; the retry must make both land. SQLite serialises them.
  std::atomic<int> attempts{0};
  auto writer = [&](int first, int second) {
    db->write([&](db::Tx& tx) {
      ++attempts;
      tx.exec("UPDATE items SET qty = qty + 1 WHERE id = $1", {first});
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      tx.exec("UPDATE items SET qty = qty + 1 WHERE id = $1", {second});
    });
  };
  std::thread a(writer, 1, 2), b(writer, 2, 1);
  a.join();
  b.join();
  auto rows = db->read([](db::Tx& tx) { return tx.query("SELECT qty FROM items ORDER BY id"); });
  EXPECT_EQ(rows[0].integer("qty"), 2);
  EXPECT_EQ(rows[1].integer("qty"), 2);
  if (GetParam() == "postgres") {
    EXPECT_GE(attempts.load(), 3) << "expected one deadlock and a retry";
  }
}

TEST_P(DatabaseTest, ReadsSeeCommittedWritesAndPoolStatsAddUp) {
  db->write([](db::Tx& tx) { tx.exec("INSERT INTO items (id, name, qty) VALUES (1, 'a', 5)"); });
  EXPECT_EQ(db->read([](db::Tx& tx) { return tx.query_one("SELECT qty FROM items")->integer("qty"); }), 5);
  auto stats = db->pool_stats();
  EXPECT_EQ(stats.in_use, 0);
  EXPECT_GE(stats.size, 1);
  EXPECT_LE(stats.idle, stats.size);
}

TEST(DatabaseUrl, RejectsUnknownSchemes) {
  EXPECT_THROW(db::open_database("mysql://x"), db::Error);
  EXPECT_THROW(db::open_database("sqlite:"), db::Error);
  EXPECT_THROW(db::open_database("postgres://nobody@127.0.0.1:1/none"), db::UnavailableError);
}

SOUQ_ENGINES(DatabaseTest);

class DatabaseSemanticsTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    db = database_.open();
    db->write([](db::Tx& tx) { tx.script("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)"); });
  }
  int64_t count() {
    return db->read([](db::Tx& tx) { return tx.query_one("SELECT COUNT(*) AS n FROM t")->integer("n"); });
  }
  std::unique_ptr<db::Database> db;
};

TEST_P(DatabaseSemanticsTest, ACaughtStatementErrorDoomsTheWholeTransaction) {
  db->write([](db::Tx& tx) { tx.exec("INSERT INTO t (id, v) VALUES (1, 'a')"); });
  bool hook = false;
  EXPECT_THROW(db->write([&](db::Tx& tx) {
    tx.exec("INSERT INTO t (id, v) VALUES (2, 'b')");
    try {
      tx.exec("INSERT INTO t (id, v) VALUES (3, 'a')");  // unique violation, caught
    } catch (const db::ConstraintError&) {
    }
    tx.after_commit([&] { hook = true; });
  }),
               db::Error);
  EXPECT_FALSE(hook);
  EXPECT_EQ(count(), 1) << "row 2 must not have been committed on either engine";
}

TEST_P(DatabaseSemanticsTest, AReadSeesOneSnapshotForAllItsStatements) {
  std::atomic<bool> first_read{false}, written{false};
  std::thread writer([&] {
    while (!first_read) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    db->write([](db::Tx& tx) { tx.exec("INSERT INTO t (id, v) VALUES (1, 'late')"); });
    written = true;
  });
  auto counts = db->read([&](db::Tx& tx) {
    auto before = tx.query_one("SELECT COUNT(*) AS n FROM t")->integer("n");
    first_read = true;
    while (!written) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    auto after = tx.query_one("SELECT COUNT(*) AS n FROM t")->integer("n");
    return std::make_pair(before, after);
  });
  writer.join();
  EXPECT_EQ(counts.first, 0);
  EXPECT_EQ(counts.second, 0) << "a row committed during the read must not appear in it";
  EXPECT_EQ(count(), 1);
}

SOUQ_ENGINES(DatabaseSemanticsTest);
