#include "http/page_cache.hpp"

namespace souq::api {

std::shared_ptr<const PageCache::Page> PageCache::find(const std::string& key) {
  if (!enabled()) return nullptr;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  if (it->second.expires <= now || it->second.generation != generation()) {
    entries_.erase(it);
    return nullptr;
  }
  return it->second.page;
}

void PageCache::store(const std::string& key, std::shared_ptr<const Page> page, uint64_t generation_at_read) {
  if (!enabled() || generation_at_read != generation()) return;  // changed while it was read
  std::lock_guard lock(mu_);
  if (entries_.size() >= capacity_) entries_.clear();  // rare; a miss costs one read
  entries_.insert_or_assign(key, Entry{std::move(page), std::chrono::steady_clock::now() + ttl_, generation_at_read});
}

}  // namespace souq::api
