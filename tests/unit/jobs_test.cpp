#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "db/migrations.hpp"
#include "jobs/queue.hpp"
#include "test_db.hpp"

using namespace souq;
using namespace std::chrono_literals;
using souq::test::EngineTest;

class JobsTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    db = database_.open();
    db::Migrator(*db, db::plan_migrations(db->engine(), db::embedded_migrations(), db::module_order())).migrate();
  }
  static jobs::QueueOptions fast() {
    jobs::QueueOptions o;
    o.backoff_base = 20ms;
    o.backoff_max = 100ms;
    o.poll = 20ms;
    return o;
  }
  std::string enqueue(jobs::Queue& q, const std::string& kind, nlohmann::json payload = {},
                      jobs::EnqueueOptions options = {}) {
    return db->write([&](db::Tx& tx) { return q.enqueue(tx, kind, payload, options).value_or(""); });
  }
  int64_t count(const std::string& where = "1=1") {
    return db->read([&](db::Tx& tx) { return tx.query_one("SELECT COUNT(*) AS n FROM jobs WHERE " + where)->integer("n"); });
  }
  std::unique_ptr<db::Database> db;
};

TEST_P(JobsTest, ASuccessfulJobRunsAndIsRemoved) {
  jobs::Queue q(*db, fast());
  nlohmann::json seen;
  q.handle("greet", [&](const jobs::Job& j) { seen = j.payload; });
  enqueue(q, "greet", {{"name", "Amina"}});
  auto claimed = q.claim("w1", 10);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].attempts, 1);
  EXPECT_EQ(q.claim("w2", 10).size(), 0u) << "a claimed job is leased to its worker";
  EXPECT_TRUE(q.execute("w1", claimed[0]));
  EXPECT_EQ(seen["name"], "Amina");
  EXPECT_EQ(count(), 0);
}

TEST_P(JobsTest, FailuresBackOffThenTheJobIsParkedAsDead) {
  jobs::Queue q(*db, fast());
  q.handle("flaky", [](const jobs::Job&) { throw std::runtime_error("gateway down"); });
  jobs::EnqueueOptions options;
  options.max_attempts = 3;
  auto id = enqueue(q, "flaky", {}, options);
  auto first = q.claim("w", 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_FALSE(q.execute("w", first[0]));
  EXPECT_EQ(q.claim("w", 1).size(), 0u) << "the retry waits for its backoff";
  for (int attempt = 2; attempt <= 3; ++attempt) {
    std::vector<jobs::Job> again;
    for (int i = 0; i < 100 && again.empty(); ++i) {
      std::this_thread::sleep_for(10ms);
      again = q.claim("w", 1);
    }
    ASSERT_EQ(again.size(), 1u) << "attempt " << attempt;
    EXPECT_EQ(again[0].attempts, attempt);
    q.execute("w", again[0]);
  }
  EXPECT_EQ(count("status = 'dead'"), 1);
  auto dead = q.list("dead", 10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0]["last_error"], "gateway down");
  EXPECT_EQ(q.stats().dead, 1);
  EXPECT_TRUE(q.retry(id));
  EXPECT_FALSE(q.retry(id)) << "only a dead job can be retried";
  EXPECT_EQ(q.claim("w", 1).size(), 1u);
}

TEST_P(JobsTest, ScheduledJobsWaitForTheirTime) {
  jobs::Queue q(*db, fast());
  q.handle("later", [](const jobs::Job&) {});
  jobs::EnqueueOptions options;
  options.delay = 300ms;
  enqueue(q, "later", {}, options);
  EXPECT_TRUE(q.claim("w", 1).empty());
  std::this_thread::sleep_for(350ms);
  EXPECT_EQ(q.claim("w", 1).size(), 1u);
}

TEST_P(JobsTest, UniqueKeysKeepOneLiveJob) {
  jobs::Queue q(*db, fast());
  q.handle("expire", [](const jobs::Job&) {});
  jobs::EnqueueOptions options;
  options.unique_key = "expire:req_1";
  EXPECT_FALSE(enqueue(q, "expire", {}, options).empty());
  EXPECT_TRUE(enqueue(q, "expire", {}, options).empty());
  auto claimed = q.claim("w", 1);
  q.execute("w", claimed.at(0));
  EXPECT_FALSE(enqueue(q, "expire", {}, options).empty()) << "the key is free once the job is done";
}

TEST_P(JobsTest, AnExpiredLeaseIsTakenOverAndUnknownKindsAreLeftAlone) {
  jobs::QueueOptions o = fast();
  o.lease = 100ms;
  jobs::Queue q(*db, o);
  q.handle("slow", [](const jobs::Job&) {});
  enqueue(q, "slow");
  enqueue(q, "someone-elses-kind");
  auto first = q.claim("crashed-worker", 5);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(q.claim("w2", 5).empty());
  std::this_thread::sleep_for(150ms);
  auto taken = q.claim("w2", 5);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].attempts, 2);
  EXPECT_TRUE(q.execute("w2", taken[0]));
  EXPECT_EQ(count(), 1) << "the job of an unknown kind stays for a node that knows it";
}

TEST_P(JobsTest, TwoProcessesRacingRunEveryJobExactlyOnce) {
  constexpr int kJobs = 300;
  std::mutex mutex;
  std::map<std::string, int> runs;
  auto record = [&](const jobs::Job& j) {
    std::lock_guard lock(mutex);
    ++runs[j.payload["n"].dump()];
  };
  // Two "processes": separate connection pools and queues on the same database.
  auto db_a = database_.open({.pool_size = 4});
  auto db_b = database_.open({.pool_size = 4});
  jobs::Queue qa(*db_a, fast()), qb(*db_b, fast());
  qa.handle("count", record);
  qb.handle("count", record);
  jobs::Workers wa(qa, 4, "a"), wb(qb, 4, "b");
  std::thread producer([&] {
    for (int i = 0; i < kJobs; i += 10)
      db->write([&](db::Tx& tx) {
        for (int k = i; k < i + 10; ++k) qa.enqueue(tx, "count", {{"n", k}});
      });
  });
  producer.join();
  for (int i = 0; i < 500 && count() > 0; ++i) std::this_thread::sleep_for(20ms);
  wa.stop();
  wb.stop();
  EXPECT_EQ(count(), 0);
  ASSERT_EQ(int(runs.size()), kJobs);
  for (auto& [n, times] : runs) EXPECT_EQ(times, 1) << "job " << n;
}

TEST_P(JobsTest, OutboxEventsReachEverySubscriberOnceAndOnlyOnCommit) {
  jobs::Queue q(*db, fast());
  jobs::Outbox outbox(q);
  std::mutex mutex;
  std::vector<std::string> got;
  outbox.subscribe("offer.created", "push", [&](const nlohmann::json& e) {
    std::lock_guard lock(mutex);
    got.push_back("push:" + e["payload"]["offer_id"].get<std::string>());
  });
  outbox.subscribe("*", "audit", [&](const nlohmann::json& e) {
    std::lock_guard lock(mutex);
    got.push_back("audit:" + e["type"].get<std::string>());
  });
  outbox.subscribe("message.*", "family", [&](const nlohmann::json& e) {
    std::lock_guard lock(mutex);
    got.push_back("family:" + e["type"].get<std::string>());
  });
  EXPECT_THROW(db->write([&](db::Tx& tx) {
    outbox.emit(tx, "offer.created", {{"offer_id", "ofr_rolled_back"}});
    throw std::runtime_error("the business write failed");
  }),
               std::runtime_error);
  db->write([&](db::Tx& tx) { outbox.emit(tx, "offer.created", {{"offer_id", "ofr_1"}}, "req_1", "rid_1"); });
  db->write([&](db::Tx& tx) { outbox.emit(tx, "message.created", {{"id", "msg_1"}}); });
  {
    jobs::Workers workers(q, 2, "w");
    for (int i = 0; i < 200 && count() > 0; ++i) std::this_thread::sleep_for(10ms);
  }
  std::multiset<std::string> bag(got.begin(), got.end());
  EXPECT_EQ(bag, (std::multiset<std::string>{"push:ofr_1", "audit:offer.created", "audit:message.created",
                                                "family:message.created"}));
  EXPECT_EQ(db->read([](db::Tx& tx) { return tx.query_one("SELECT COUNT(*) AS n FROM events")->integer("n"); }), 2);
}

SOUQ_ENGINES(JobsTest);
