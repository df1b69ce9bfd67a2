// The job queue and the transactional outbox (ARCHITECTURE.md "Jobs").
//
// Enqueue inside a business transaction; workers claim ready jobs (SKIP LOCKED
// on PostgreSQL, the single writer on SQLite) under a lease, run them, and
// delete them on success. A failure re-queues the job with exponential backoff;
// after max_attempts it is parked as dead for an operator. Delivery is at least
// once: handlers must be idempotent.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "core/time.hpp"
#include "db/database.hpp"

namespace souq::jobs {

struct Job {
  std::string id;
  std::string kind;
  nlohmann::json payload;
  int attempts = 0;  // including the current one
  int max_attempts = 0;
  std::string request_id;
  std::string created_at;
};

struct EnqueueOptions {
  std::optional<TimePoint> run_at;                 // default: now
  std::chrono::milliseconds delay{0};              // added to run_at
  int max_attempts = 0;                            // 0: the queue's default
  std::optional<std::string> unique_key;           // skip if a live job has this key
  std::string request_id;                          // carried into the job's log lines
};

struct QueueOptions {
  int default_max_attempts = 10;
  std::chrono::milliseconds backoff_base{1000};    // 1 s, 2 s, 4 s …
  std::chrono::milliseconds backoff_max{3600'000};
  std::chrono::milliseconds lease{300'000};        // a claimed job is someone else's after this
  std::chrono::milliseconds poll{500};             // idle workers look again after this
};

struct QueueStats {
  int64_t queued = 0, running = 0, dead = 0;
  double oldest_queued_age_seconds = 0;  // of jobs already due
};

using Handler = std::function<void(const Job&)>;

class Queue {
 public:
  Queue(db::Database& db, QueueOptions options = {});

  // Registers the handler for a kind. Workers claim only kinds they know.
  // Register every kind before starting Workers: workers read the handler
  // table without a lock.
  void handle(const std::string& kind, Handler handler);
  bool knows(const std::string& kind) const { return handlers_.count(kind) > 0; }

  // Adds a job in the caller's transaction. Returns its id, or nullopt when
  // unique_key matched a live job.
  std::optional<std::string> enqueue(db::Tx& tx, const std::string& kind, const nlohmann::json& payload,
                                     const EnqueueOptions& options = {});

  // Claims up to `limit` due jobs for `worker` (one write transaction).
  std::vector<Job> claim(const std::string& worker, int limit);
  // Runs the job's handler and records the outcome. Returns true on success.
  bool execute(const std::string& worker, const Job& job);

  QueueStats stats();
  std::vector<nlohmann::json> list(const std::string& status, int limit);
  // Puts a dead job back in the queue now, with a fresh attempt count.
  bool retry(const std::string& id);

  // Wakes idle workers (called after a commit that enqueued jobs).
  void notify();
  // The wake-up count: read it before looking for work, then wait(since, …)
  // returns at once if a notify came in between.
  uint64_t generation();
  // Waits until notified after `since`, stopped, or `timeout` passes.
  void wait(uint64_t since, std::chrono::milliseconds timeout);
  void stop();
  bool stopped() const { return stopped_; }
  const QueueOptions& options() const { return options_; }

 private:
  void complete(const std::string& worker, const Job& job);
  void fail(const std::string& worker, const Job& job, const std::string& error);

  db::Database& db_;
  QueueOptions options_;
  std::map<std::string, Handler> handlers_;
  std::string claim_sql_;
  std::mutex mutex_;
  std::condition_variable cv_;
  uint64_t wakeups_ = 0;
  std::atomic<bool> stopped_{false};
};

// Worker threads that claim and run jobs until stopped.
class Workers {
 public:
  Workers(Queue& queue, int count, std::string name_prefix);
  ~Workers();
  void stop();  // finishes the jobs in hand, then joins

 private:
  void loop(std::string worker_id);
  Queue& queue_;
  std::vector<std::thread> threads_;
};

// The request an outbox event came from, as its subscribers see the event
// ("" when none): for their log lines and the events they emit in turn.
inline std::string request_id_of(const nlohmann::json& event) {
  auto it = event.find("request_id");
  return it != event.end() && it->is_string() ? it->get<std::string>() : "";
}

// Domain events, written in the business transaction; each subscriber gets
// the event through a job of its own, so a slow or failing subscriber neither
// blocks nor repeats the others.
class Outbox {
 public:
  explicit Outbox(Queue& queue) : queue_(queue) {}

  // `type` is an event name like "offer.created", a family like "deal.*",
  // or "*" for every event.
  void subscribe(const std::string& type, const std::string& subscriber,
                 std::function<void(const nlohmann::json& event)> handler);
  // Records the event and enqueues one job per subscriber. Returns the event id.
  std::string emit(db::Tx& tx, const std::string& type, const nlohmann::json& payload,
                   const std::string& subject = {}, const std::string& request_id = {});
  // Events recorded, oldest first: those about `subject` (when given) whose
  // type starts with `type_prefix`.
  static nlohmann::json recent(db::Tx& tx, const std::string& subject, const std::string& type_prefix, int limit);

 private:
  Queue& queue_;
  std::map<std::string, std::vector<std::string>> subscribers_;  // type → subscribers
};

}  // namespace souq::jobs
