// Request counters and latency histogram, rendered in the Prometheus text format.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "policy/outcome.h"

namespace hookguard::gateway {

/// Process-wide metrics. record() is thread-safe; render() produces /metrics.
class Metrics {
 public:
  static constexpr std::array<double, 12> kLatencyBucketsSeconds{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

  /// Counts one finished webhook request of `trigger` ("" when no trigger matched).
  void record(std::string_view trigger, policy::Outcome outcome, double seconds);
  /// Counts a request that Pistache timed out before our handler answered (its own 408).
  void count_library_timeout() { library_timeouts_.fetch_add(1, std::memory_order_relaxed); }
  /// Counts a request refused because its request line and header block outgrew the cap the
  /// ingress puts in front of Pistache's parser (431; no trigger known, so no log row).
  void count_oversized_head() { oversized_heads_.fetch_add(1, std::memory_order_relaxed); }
  /// Counts an answer written to the client socket at once / handed to the HTTP library's
  /// write queue (the socket buffer was full, or an earlier answer was still queued).
  void count_direct_reply() { direct_replies_.fetch_add(1, std::memory_order_relaxed); }
  void count_queued_reply() { queued_replies_.fetch_add(1, std::memory_order_relaxed); }

  /// Registers a value read at render time (queue depth, spooled rows, Redis errors, ...).
  void add_gauge(std::string name, std::string help, std::string type,
                 std::function<double()> read);

  /// The whole exposition, in the Prometheus text format 0.0.4.
  std::string render() const;

 private:
  using OutcomeCounts = std::array<std::uint64_t, policy::kOutcomeCount>;
  struct Gauge {
    std::string name, help, type;
    std::function<double()> read;
  };

  mutable std::mutex mu_;
  std::map<std::string, OutcomeCounts, std::less<>> by_trigger_;
  std::array<std::atomic<std::uint64_t>, kLatencyBucketsSeconds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> latency_count_{0};
  std::atomic<std::uint64_t> latency_sum_us_{0};
  std::atomic<std::uint64_t> library_timeouts_{0};
  std::atomic<std::uint64_t> oversized_heads_{0};
  std::atomic<std::uint64_t> direct_replies_{0};
  std::atomic<std::uint64_t> queued_replies_{0};
  std::vector<Gauge> gauges_;
};

/// Escapes a Prometheus label value (backslash, double quote, newline).
std::string escape_label_value(std::string_view value);

}  // namespace hookguard::gateway
