#include "http/metrics.hpp"

#include <cstdio>

namespace souq::api {

std::string prometheus_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void Metrics::observe(std::string_view method, std::string_view route, int status, double seconds) {
  std::lock_guard lock(mutex_);
  auto key = std::make_tuple(std::string(method), std::string(route), status);
  ++counts_[key];
  auto it = latency_.find(route);
  if (it == latency_.end()) it = latency_.emplace(std::string(route), Histogram{}).first;
  auto& h = it->second;
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  ++h.count;
  h.sum += seconds;
}

void Metrics::render(std::string& out) const {
  std::lock_guard lock(mutex_);
  char buf[64];
  out += "# HELP souq_http_requests_total HTTP requests answered, by method, route template and status.\n";
  out += "# TYPE souq_http_requests_total counter\n";
  for (const auto& [key, n] : counts_) {
    const auto& [method, route, status] = key;
    out += "souq_http_requests_total{method=\"" + prometheus_label(method) + "\",route=\"" + prometheus_label(route) +
           "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP souq_http_request_duration_seconds Time from the end of the request header to the response.\n";
  out += "# TYPE souq_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    std::string label = "route=\"" + prometheus_label(route) + "\"";
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%g", kBuckets[i]);
      out += "souq_http_request_duration_seconds_bucket{" + label + ",le=\"" + buf + "\"} " +
             std::to_string(h.buckets[i]) + "\n";
    }
    out += "souq_http_request_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " + std::to_string(h.count) + "\n";
    std::snprintf(buf, sizeof buf, "%.6f", h.sum);
    out += "souq_http_request_duration_seconds_sum{" + label + "} " + buf + "\n";
    out += "souq_http_request_duration_seconds_count{" + label + "} " + std::to_string(h.count) + "\n";
  }
  out += "# HELP souq_http_requests_in_flight Requests being handled now.\n";
  out += "# TYPE souq_http_requests_in_flight gauge\n";
  out += "souq_http_requests_in_flight " + std::to_string(in_flight()) + "\n";
}

}  // namespace souq::api
