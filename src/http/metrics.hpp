// HTTP metrics in Prometheus' text format: request counts by method, route
// template and status; latency histograms by route; requests in flight.
#pragma once
#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace souq::api {

class Metrics {
 public:
  void observe(std::string_view method, std::string_view route, int status, double seconds);
  void add_in_flight(int delta) { in_flight_.fetch_add(delta, std::memory_order_relaxed); }
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // Appends the HTTP series to `out`.
  void render(std::string& out) const;

  static constexpr std::array<double, 12> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1,    2.5,   10};

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t, std::less<>> counts_;
  std::map<std::string, Histogram, std::less<>> latency_;
  std::atomic<int64_t> in_flight_{0};
};

// Escapes a Prometheus label value.
std::string prometheus_label(std::string_view value);

}  // namespace souq::api
