// Totals and facet counts of large matches (the landing page, a whole
// department) cost a scan of every match; they are reused for a few
// seconds. Small matches are always counted afresh, so they are exact.
#pragma once
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/json.hpp"

namespace souq::search {

struct CountsCache {
  static constexpr int64_t kMinTotal = 10'000;
  static constexpr auto kTtl = std::chrono::seconds(10);
  static constexpr size_t kCapacity = 2000;
  struct Entry {
    std::chrono::steady_clock::time_point at;
    int64_t total;
    json facets;
  };
  std::mutex mutex;
  std::unordered_map<std::string, Entry> entries;

  std::optional<Entry> find(const std::string& key) {
    std::lock_guard lock(mutex);
    auto it = entries.find(key);
    if (it == entries.end() || std::chrono::steady_clock::now() - it->second.at > kTtl) return std::nullopt;
    return it->second;
  }
  void store(const std::string& key, int64_t total, const json& facets) {
    if (total < kMinTotal) return;
    std::lock_guard lock(mutex);
    auto now = std::chrono::steady_clock::now();
    if (entries.size() >= kCapacity) std::erase_if(entries, [&](const auto& e) { return now - e.second.at > kTtl; });
    if (entries.size() >= kCapacity) entries.clear();
    entries[key] = {now, total, facets};
  }
};


}  // namespace souq::search
