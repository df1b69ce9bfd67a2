// The blocking pool: threads for work that may block (database calls, password
// hashing, outbound HTTP). A coroutine on an I/O thread awaits
// `pool.run(fn)`; fn runs on a pool thread and the coroutine resumes on its own
// executor with fn's result, or fn's exception rethrown.
//
// A pool may bound the work it holds (running and waiting): beyond
// `max_pending`, run() throws 503 `server_busy` with retry_after at once, so
// that a flood of slow work (password hashing) cannot queue without end.
#pragma once
#include <atomic>
#include <exception>
#include <optional>
#include <type_traits>
#include <variant>

#include "core/asio.hpp"
#include "core/error.hpp"

namespace souq {

class BlockingPool {
 public:
  explicit BlockingPool(int threads, int max_pending = 0)
      : pool_(std::in_place, threads > 0 ? threads : 1), max_pending_(max_pending) {}
  ~BlockingPool() { stop(); }

  // Joins the threads and destroys work that never started. Call it while the
  // io_contexts that awaiting coroutines resume on still exist (stopped is
  // fine): destroying such work hands those coroutines back to them to unwind.
  void stop() {
    if (!pool_) return;
    pool_->stop();
    pool_->join();
    pool_.reset();
  }

  asio::thread_pool::executor_type executor() { return pool_->get_executor(); }

  template <class F>
  awaitable<std::invoke_result_t<F&>> run(F fn) {
    using R = std::invoke_result_t<F&>;
    using Box = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
    if (max_pending_ > 0 && pending_.fetch_add(1, std::memory_order_relaxed) >= max_pending_) {
      pending_.fetch_sub(1, std::memory_order_relaxed);
      throw ApiError(503, "server_busy", "The server is busy. Try again in a moment.", {{"retry_after", 1}});
    }
    auto boxed = co_await asio::async_initiate<decltype(use_awaitable), void(std::exception_ptr, std::optional<Box>)>(
        [this](auto handler, F f) {
          auto work = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
          asio::post(*pool_, [this, f = std::move(f), handler = std::move(handler), work]() mutable {
            std::exception_ptr error;
            std::optional<Box> result;
            try {
              if constexpr (std::is_void_v<R>) {
                f();
                result.emplace();
              } else {
                result.emplace(f());
              }
            } catch (...) {
              error = std::current_exception();
            }
            if (max_pending_ > 0) pending_.fetch_sub(1, std::memory_order_relaxed);
            asio::post(work, [handler = std::move(handler), error, result = std::move(result)]() mutable {
              std::move(handler)(error, std::move(result));
            });
          });
        },
        use_awaitable, std::move(fn));
    if constexpr (!std::is_void_v<R>) co_return std::move(*boxed);
  }

 private:
  std::optional<asio::thread_pool> pool_;
  int max_pending_ = 0;  // 0: unbounded
  std::atomic<int> pending_{0};
};

}  // namespace souq
