#include "jobs/queue.hpp"

#include <algorithm>
#include <random>
#include <thread>

#include "core/id.hpp"
#include "core/log.hpp"
#include "core/utf8.hpp"

namespace souq::jobs {
namespace {
using namespace std::chrono;

Job job_from_row(const db::Row& r) {
  Job j;
  j.id = r.text("id");
  j.kind = r.text("kind");
  j.payload = nlohmann::json::parse(r.text("payload"), nullptr, false);
  j.attempts = int(r.integer("attempts"));
  j.max_attempts = int(r.integer("max_attempts"));
  j.request_id = r.opt_text("request_id").value_or("");
  j.created_at = r.text("created_at");
  return j;
}
}  // namespace

Queue::Queue(db::Database& db, QueueOptions options) : db_(db), options_(options) {}

void Queue::handle(const std::string& kind, Handler handler) {
  handlers_[kind] = std::move(handler);
  std::string kinds;
  for (size_t i = 0; i < handlers_.size(); ++i) kinds += (i ? ", $" : "$") + std::to_string(i + 5);
  claim_sql_ =
      "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $1, locked_until = $2,"
      " updated_at = $3 WHERE id IN (SELECT id FROM jobs WHERE"
      " ((status = 'queued' AND run_at <= $3) OR (status = 'running' AND locked_until < $3))"
      " AND kind IN (" + kinds + ") ORDER BY run_at, id LIMIT $4" +
      std::string(db_.engine() == db::Engine::postgres ? " FOR UPDATE SKIP LOCKED" : "") +
      ") RETURNING id, kind, payload, attempts, max_attempts, request_id, created_at";
}

std::optional<std::string> Queue::enqueue(db::Tx& tx, const std::string& kind, const nlohmann::json& payload,
                                          const EnqueueOptions& o) {
  auto created = now();
  auto run_at = o.run_at.value_or(created) + duration_cast<milliseconds>(o.delay);
  std::string id = new_id("job");
  int max_attempts = o.max_attempts > 0 ? o.max_attempts : options_.default_max_attempts;
  std::string stamp = format_time(created);
  int64_t n = tx.exec(
      "INSERT INTO jobs (id, kind, payload, status, attempts, max_attempts, run_at, unique_key, request_id,"
      " created_at, updated_at) VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $7, $8, $8)"
      " ON CONFLICT DO NOTHING",
      {id, kind, payload.dump(), max_attempts, format_time(run_at), o.unique_key,
       db::null_if_empty(o.request_id), stamp});
  if (n == 0) return std::nullopt;
  if (run_at <= created) tx.after_commit([this] { notify(); });
  return id;
}

std::vector<Job> Queue::claim(const std::string& worker, int limit) {
  if (handlers_.empty()) return {};
  auto t = now();
  db::Params params = {worker, format_time(t + options_.lease), format_time(t), limit};
  for (const auto& entry : handlers_) params.emplace_back(entry.first);
  return db_.write([&](db::Tx& tx) {
    std::vector<Job> jobs;
    for (const auto& row : tx.query(claim_sql_, params)) jobs.push_back(job_from_row(row));
    return jobs;
  });
}

bool Queue::execute(const std::string& worker, const Job& job) {
  auto started = steady_clock::now();
  nlohmann::json fields = {{"job_id", job.id}, {"kind", job.kind}, {"attempt", job.attempts}, {"worker", worker}};
  if (!job.request_id.empty()) fields["request_id"] = job.request_id;
  std::string error;
  if (job.attempts > job.max_attempts) {
    error = "lease expired on every attempt";
  } else {
    auto it = handlers_.find(job.kind);
    try {
      if (it == handlers_.end()) throw std::runtime_error("no handler for kind " + job.kind);
      it->second(job);
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "exception";
    } catch (...) {
      error = "unknown exception";
    }
  }
  fields["duration_ms"] = duration_cast<microseconds>(steady_clock::now() - started).count() / 1000.0;
  try {
    if (error.empty()) {
      complete(worker, job);
      log::debug("job done", fields);
    } else {
      fields["error"] = error;
      fail(worker, job, error);
      if (job.attempts >= job.max_attempts) log::error("job dead", fields);
      else log::warn("job failed", fields);
    }
  } catch (const std::exception& e) {
    // The lease runs out and another worker takes the job again: at least once.
    fields["error"] = e.what();
    log::error("job outcome not recorded", fields);
  }
  return error.empty();
}

void Queue::complete(const std::string& worker, const Job& job) {
  db_.write([&](db::Tx& tx) {
    tx.exec("DELETE FROM jobs WHERE id = $1 AND locked_by = $2 AND status = 'running'", {job.id, worker});
  });
}

void Queue::fail(const std::string& worker, const Job& job, const std::string& error) {
  thread_local std::minstd_rand jitter{std::random_device{}()};
  int exponent = std::min(job.attempts - 1, 30);
  auto backoff = options_.backoff_base * (int64_t(1) << std::max(exponent, 0));
  if (backoff > options_.backoff_max || backoff < options_.backoff_base) backoff = options_.backoff_max;
  backoff += milliseconds(jitter() % (backoff.count() / 4 + 1));
  auto t = now();
  db_.write([&](db::Tx& tx) {
    tx.exec(
        "UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,"
        " run_at = $3, last_error = $4, locked_by = NULL, locked_until = NULL, updated_at = $5"
        " WHERE id = $1 AND locked_by = $2 AND status = 'running'",
        {job.id, worker, format_time(t + duration_cast<milliseconds>(backoff)), utf8::sanitize(error, 2000),
         format_time(t)});
  });
}

QueueStats Queue::stats() {
  return db_.read([&](db::Tx& tx) {
    QueueStats s;
    for (const auto& r : tx.query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")) {
      auto status = r.text("status");
      (status == "queued" ? s.queued : status == "running" ? s.running : s.dead) = r.integer("n");
    }
    auto t = now();
    auto oldest = tx.query_one("SELECT MIN(run_at) AS oldest FROM jobs WHERE status = 'queued' AND run_at <= $1",
                               {format_time(t)});
    if (oldest && !oldest->is_null("oldest"))
      if (auto when = parse_time(oldest->text("oldest")))
        s.oldest_queued_age_seconds = duration_cast<milliseconds>(t - *when).count() / 1000.0;
    return s;
  });
}

std::vector<nlohmann::json> Queue::list(const std::string& status, int limit) {
  return db_.read([&](db::Tx& tx) {
    std::vector<nlohmann::json> out;
    for (const auto& r : tx.query("SELECT id, kind, payload, status, attempts, max_attempts, run_at, last_error,"
                                  " created_at FROM jobs WHERE status = $1 ORDER BY run_at, id LIMIT $2",
                                  {status, limit}))
      out.push_back({{"id", r.text("id")},
                     {"kind", r.text("kind")},
                     {"payload", nlohmann::json::parse(r.text("payload"), nullptr, false)},
                     {"status", r.text("status")},
                     {"attempts", r.integer("attempts")},
                     {"max_attempts", r.integer("max_attempts")},
                     {"run_at", r.text("run_at")},
                     {"last_error", r.opt_text("last_error").value_or("")},
                     {"created_at", r.text("created_at")}});
    return out;
  });
}

bool Queue::retry(const std::string& id) {
  auto t = format_time(now());
  bool ok = db_.write([&](db::Tx& tx) {
    return tx.exec("UPDATE jobs SET status = 'queued', attempts = 0, run_at = $2, updated_at = $2"
                   " WHERE id = $1 AND status = 'dead'",
                   {id, t}) == 1;
  });
  if (ok) notify();
  return ok;
}

void Queue::notify() {
  {
    std::lock_guard lock(mutex_);
    ++wakeups_;
  }
  cv_.notify_all();
}

uint64_t Queue::generation() {
  std::lock_guard lock(mutex_);
  return wakeups_;
}

void Queue::wait(uint64_t since, milliseconds timeout) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return wakeups_ != since || stopped_; });
}

void Queue::stop() {
  stopped_ = true;
  notify();
}

Workers::Workers(Queue& queue, int count, std::string name_prefix) : queue_(queue) {
  for (int i = 0; i < count; ++i)
    threads_.emplace_back([this, id = name_prefix + "-" + std::to_string(i)] { loop(id); });
}

Workers::~Workers() { stop(); }

void Workers::stop() {
  if (threads_.empty()) return;
  queue_.stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void Workers::loop(std::string worker_id) {
  while (!queue_.stopped()) {
    uint64_t generation = queue_.generation();
    std::vector<Job> jobs;
    try {
      jobs = queue_.claim(worker_id, 1);
    } catch (const std::exception& e) {
      log::warn("job claim failed", {{"worker", worker_id}, {"error", e.what()}});
    }
    if (jobs.empty()) {
      queue_.wait(generation, queue_.options().poll);
      continue;
    }
    for (const auto& job : jobs) queue_.execute(worker_id, job);
  }
}

void Outbox::subscribe(const std::string& type, const std::string& subscriber,
                       std::function<void(const nlohmann::json& event)> handler) {
  std::string kind = "event:" + subscriber;
  if (!queue_.knows(kind))
    queue_.handle(kind, [handler = std::move(handler)](const Job& job) { handler(job.payload.at("event")); });
  subscribers_[type].push_back(subscriber);
}

std::string Outbox::emit(db::Tx& tx, const std::string& type, const nlohmann::json& payload,
                         const std::string& subject, const std::string& request_id) {
  std::string id = new_id("evt");
  std::string created = now_text();
  tx.exec("INSERT INTO events (id, type, subject, payload, request_id, created_at) VALUES ($1,$2,$3,$4,$5,$6)",
          {id, type, db::null_if_empty(subject), payload.dump(),
           db::null_if_empty(request_id), created});
  nlohmann::json event = {{"id", id}, {"type", type}, {"subject", subject}, {"payload", payload},
                          {"request_id", request_id}, {"created_at", created}};
  EnqueueOptions options;
  options.request_id = request_id;
  // Subscribers of the type, of its family ("deal.*" for "deal.accepted"), and of everything.
  auto dot = type.find('.');
  std::string family = dot == std::string::npos ? std::string() : type.substr(0, dot) + ".*";
  for (const auto& key : {type, family, std::string("*")}) {
    if (key.empty()) continue;
    auto it = subscribers_.find(key);
    if (it == subscribers_.end()) continue;
    for (const auto& subscriber : it->second) queue_.enqueue(tx, "event:" + subscriber, {{"event", event}}, options);
  }
  return id;
}

nlohmann::json Outbox::recent(db::Tx& tx, const std::string& subject, const std::string& type_prefix, int limit) {
  std::string sql = "SELECT id, type, subject, payload, request_id, created_at FROM events WHERE type LIKE $1";
  db::Params params = {type_prefix + "%"};
  if (!subject.empty()) {
    params.emplace_back(subject);
    sql += " AND subject = $2";
  }
  params.emplace_back(int64_t(limit));
  auto out = nlohmann::json::array();
  for (const auto& r : tx.query(sql + " ORDER BY id DESC LIMIT $" + std::to_string(params.size()), params))
    out.push_back({{"id", r.text("id")},
                   {"type", r.text("type")},
                   {"subject", r.nullable_text("subject")},
                   {"payload", r.json("payload")},
                   {"request_id", r.nullable_text("request_id")},
                   {"created_at", r.text("created_at")}});
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace souq::jobs
