#include "modules/catalog/product_cache.hpp"

namespace souq::catalog {

std::shared_ptr<const std::string> ProductCache::find(const std::string& id) {
  if (!enabled()) return nullptr;
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.expires <= std::chrono::steady_clock::now()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  return it->second.page;
}

void ProductCache::store(const std::string& id, std::shared_ptr<const std::string> page, uint64_t ticket) {
  if (!enabled()) return;
  std::lock_guard lock(mu_);
  if (forgotten_[bucket(id)] >= ticket) return;  // changed while it was read
  auto expires = std::chrono::steady_clock::now() + ttl_;
  if (auto it = entries_.find(id); it != entries_.end()) {
    it->second.page = std::move(page);
    it->second.expires = expires;
    return;
  }
  while (entries_.size() >= capacity_ && !lru_.empty()) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(id);
  entries_.emplace(id, Entry{std::move(page), expires, lru_.begin()});
}

void ProductCache::forget(const std::string& id) {
  std::lock_guard lock(mu_);
  forgotten_[bucket(id)] = clock_.fetch_add(1, std::memory_order_acq_rel);
  if (auto it = entries_.find(id); it != entries_.end()) {
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
}

ProductCache::Stats ProductCache::stats() const {
  std::lock_guard lock(mu_);
  return {hits_.load(), misses_.load(), entries_.size()};
}

}  // namespace souq::catalog
