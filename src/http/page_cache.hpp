// A short-lived cache of rendered public pages (GET lists that anonymous
// clients ask for again and again, such as the open requests), like a CDN's
// micro-cache in front of an API: an entry lives `ttl`, and the owner of the
// data bumps the generation when it changes, which drops every entry on this
// node at once (so a node reads its own writes; other nodes within `ttl`).
// Only what is the same for every anonymous caller may be stored.
#pragma once
#include <atomic>
#include <memory>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace souq::api {

class PageCache {
 public:
  PageCache(std::chrono::milliseconds ttl, size_t capacity) : ttl_(ttl), capacity_(capacity) {}
  bool enabled() const { return ttl_.count() > 0 && capacity_ > 0; }

  struct Page {
    std::string data;         // the envelope's data, as JSON text
    std::string next_cursor;  // "" for none
  };
  // Shared, not copied: a page is tens of kilobytes and read far more often than made.
  std::shared_ptr<const Page> find(const std::string& key);
  // Take the generation before reading what you will store.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  void store(const std::string& key, std::shared_ptr<const Page> page, uint64_t generation_at_read);
  // The data changed: every entry is stale.
  void bump() { generation_.fetch_add(1, std::memory_order_acq_rel); }

 private:
  struct Entry {
    std::shared_ptr<const Page> page;
    std::chrono::steady_clock::time_point expires;
    uint64_t generation;
  };
  std::chrono::milliseconds ttl_;
  size_t capacity_;
  std::atomic<uint64_t> generation_{0};
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace souq::api
