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

void ProductCache::store(const std::string& id, const std::string& seller_id, std::shared_ptr<const std::string> page,
                         uint64_t ticket) {
  if (!enabled()) return;
  std::lock_guard lock(mu_);
  // Changed while it was read (the product, or its seller).
  if (forgotten_[bucket(id)] >= ticket || forgotten_[bucket(seller_id)] >= ticket || all_forgotten_ >= ticket) return;
  auto expires = std::chrono::steady_clock::now() + ttl_;
  if (auto it = entries_.find(id); it != entries_.end()) {
    if (it->second.seller_id == seller_id) {
      it->second.page = std::move(page);
      it->second.expires = expires;
      return;
    }
    erase(it);
  }
  while (entries_.size() >= capacity_ && !lru_.empty()) erase(entries_.find(lru_.back()));
  lru_.push_front(id);
  entries_.emplace(id, Entry{std::move(page), seller_id, expires, lru_.begin()});
  by_seller_[seller_id].insert(id);
}

void ProductCache::mark_forgotten(const std::string& key) {
  forgotten_[bucket(key)] = clock_.fetch_add(1, std::memory_order_acq_rel);
}

void ProductCache::erase(std::unordered_map<std::string, Entry>::iterator it) {
  if (auto s = by_seller_.find(it->second.seller_id); s != by_seller_.end()) {
    s->second.erase(it->first);
    if (s->second.empty()) by_seller_.erase(s);
  }
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void ProductCache::forget(const std::string& id) {
  std::lock_guard lock(mu_);
  mark_forgotten(id);
  if (auto it = entries_.find(id); it != entries_.end()) erase(it);
}

void ProductCache::forget_seller(const std::string& seller_id) {
  std::lock_guard lock(mu_);
  mark_forgotten(seller_id);
  auto s = by_seller_.find(seller_id);
  if (s == by_seller_.end()) return;
  std::unordered_set<std::string> ids = s->second;  // erase() changes the set
  for (const auto& id : ids)
    if (auto it = entries_.find(id); it != entries_.end()) erase(it);
}

void ProductCache::forget_all() {
  std::lock_guard lock(mu_);
  all_forgotten_ = clock_.fetch_add(1, std::memory_order_acq_rel);
  entries_.clear();
  by_seller_.clear();
  lru_.clear();
}

ProductCache::Stats ProductCache::stats() const {
  std::lock_guard lock(mu_);
  return {hits_.load(), misses_.load(), entries_.size()};
}

}  // namespace souq::catalog
