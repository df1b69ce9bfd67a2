// The Idempotency-Key layer for POSTs that create an order, a payment or any
// money movement (ARCHITECTURE.md "HTTP API conventions"; Stripe's rules):
//   - the header is required (400 idempotency_key_required);
//   - the first successful response for (caller, key) is kept and replayed
//     for 24 hours, with `Idempotent-Replayed: true`;
//   - the same key with a different method, path or body → 422
//     idempotency_key_reused;
//   - the same key while the first request still runs → 409
//     idempotency_key_in_flight: never run twice at once;
//   - a request that fails (any error) keeps nothing, so it may be retried.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "core/blocking.hpp"
#include "db/database.hpp"
#include "http/request.hpp"

namespace souq::api {

class Idempotency {
 public:
  explicit Idempotency(db::Database& db, std::chrono::hours keep = std::chrono::hours(24),
                       std::chrono::seconds lock = std::chrono::seconds(120))
      : db_(db), keep_(keep), lock_(lock) {}

  // Runs `fn` for the request under its Idempotency-Key, scoped to `scope`
  // (the caller's user id), or replays what it answered before.
  awaitable<Response> run(Request& req, const std::string& scope, BlockingPool& blocking,
                          std::function<awaitable<Response>()> fn);

 private:
  db::Database& db_;
  std::atomic<uint64_t> claims_{0};  // every 1000th claim also purges keys past the window
  std::chrono::hours keep_;
  std::chrono::seconds lock_;
};

}  // namespace souq::api
