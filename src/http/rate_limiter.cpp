#include "http/rate_limiter.hpp"

#include <algorithm>
#include <functional>

namespace souq::api {

RateLimiter::Decision RateLimiter::take(std::string_view key, Clock::time_point now) {
  auto& shard = shards_[std::hash<std::string_view>{}(key) % shards_.size()];
  std::lock_guard lock(shard.mutex);
  if (++shard.takes_since_sweep >= 4096) sweep(shard, now);
  auto it = shard.buckets.find(std::string(key));
  if (it == shard.buckets.end()) it = shard.buckets.emplace(std::string(key), Bucket{burst_, now}).first;
  auto& b = it->second;
  double elapsed = std::chrono::duration<double>(now - b.updated).count();
  b.tokens = std::min(burst_, b.tokens + std::max(0.0, elapsed) * rate_);
  b.updated = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return {true, b.tokens, 0};
  }
  return {false, 0, (1.0 - b.tokens) / rate_};
}

// Forgets buckets that have refilled: they are the same as a new one.
void RateLimiter::sweep(Shard& shard, Clock::time_point now) {
  shard.takes_since_sweep = 0;
  std::erase_if(shard.buckets, [&](const auto& entry) {
    double elapsed = std::chrono::duration<double>(now - entry.second.updated).count();
    return entry.second.tokens + elapsed * rate_ >= burst_;
  });
}

}  // namespace souq::api
