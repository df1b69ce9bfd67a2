// Token buckets per key (client IP), in process. Each key refills at `rate`
// tokens a second up to `burst`; a request takes one token.
#pragma once
#include <array>
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace souq::api {

class RateLimiter {
 public:
  struct Decision {
    bool allowed;
    double remaining;    // whole tokens left after this request
    double retry_after;  // seconds until a token is free, when refused
  };
  using Clock = std::chrono::steady_clock;

  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}
  Decision take(std::string_view key, Clock::time_point now = Clock::now());
  double rate() const { return rate_; }
  double burst() const { return burst_; }

 private:
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
    size_t takes_since_sweep = 0;
  };
  void sweep(Shard& shard, Clock::time_point now);
  double rate_, burst_;
  std::array<Shard, 16> shards_;
};

}  // namespace souq::api
