// Rendered product pages kept in memory (seed 003: "cache hit 95 % of the
// time"). Entries expire after `ttl`; forget(id) drops one at once, and
// forget_seller(id) every page of one seller (whose name, rating or standing
// each page embeds), forget_all() every page. A read that raced a change is not stored: take a ticket
// before reading the database, and store() refuses when the product or its
// seller was forgotten since (a hashed table of the last forget per bucket:
// a collision costs one miss, never a stale page).
#pragma once
#include <array>
#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace souq::catalog {

class ProductCache {
 public:
  ProductCache(std::chrono::milliseconds ttl, size_t capacity) : ttl_(ttl), capacity_(capacity) {}
  bool enabled() const { return ttl_.count() > 0 && capacity_ > 0; }

  std::shared_ptr<const std::string> find(const std::string& id);
  uint64_t ticket() const { return clock_.load(std::memory_order_acquire); }
  void store(const std::string& id, const std::string& seller_id, std::shared_ptr<const std::string> page,
             uint64_t ticket);
  void forget(const std::string& id);
  void forget_seller(const std::string& seller_id);
  // Every page (a category renamed or moved: pages show its name and path).
  void forget_all();

  struct Stats {
    uint64_t hits = 0, misses = 0, size = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    std::shared_ptr<const std::string> page;
    std::string seller_id;
    std::chrono::steady_clock::time_point expires;
    std::list<std::string>::iterator lru;
  };
  static constexpr size_t kBuckets = 4096;
  size_t bucket(const std::string& id) const { return std::hash<std::string>{}(id) % kBuckets; }
  // Both under mu_.
  void mark_forgotten(const std::string& key);
  void erase(std::unordered_map<std::string, Entry>::iterator it);

  std::chrono::milliseconds ttl_;
  size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::unordered_map<std::string, std::unordered_set<std::string>> by_seller_;
  std::list<std::string> lru_;  // most recently stored first
  std::array<uint64_t, kBuckets> forgotten_{};
  uint64_t all_forgotten_ = 0;
  std::atomic<uint64_t> clock_{1};
  std::atomic<uint64_t> hits_{0}, misses_{0};
};

}  // namespace souq::catalog
