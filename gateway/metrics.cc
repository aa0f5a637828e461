#include "gateway/metrics.h"

#include <cstdio>

namespace hookguard::gateway {

void Metrics::record(std::string_view trigger, policy::Outcome outcome, double seconds) {
  {
    std::lock_guard lock(mu_);
    auto it = by_trigger_.find(trigger);
    if (it == by_trigger_.end())
      it = by_trigger_.emplace(std::string(trigger), OutcomeCounts{}).first;
    ++it->second[static_cast<std::size_t>(outcome)];
  }
  std::size_t i = 0;
  while (i < kLatencyBucketsSeconds.size() && seconds > kLatencyBucketsSeconds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  latency_count_.fetch_add(1, std::memory_order_relaxed);
  latency_sum_us_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Metrics::add_gauge(std::string name, std::string help, std::string type,
                        std::function<double()> read) {
  std::lock_guard lock(mu_);
  gauges_.push_back(Gauge{std::move(name), std::move(help), std::move(type), std::move(read)});
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Metrics::render() const {
  std::string out;
  char num[64];
  out +=
      "# HELP hookguard_requests_total Webhook requests by trigger and outcome.\n"
      "# TYPE hookguard_requests_total counter\n";
  std::vector<Gauge> gauges;
  {
    std::lock_guard lock(mu_);
    for (const auto& [trigger, counts] : by_trigger_) {
      for (std::size_t i = 0; i < counts.size(); ++i) {
        if (counts[i] == 0) continue;
        out += "hookguard_requests_total{trigger=\"" + escape_label_value(trigger) +
               "\",outcome=\"" +
               std::string(policy::outcome_name(static_cast<policy::Outcome>(i))) + "\"} " +
               std::to_string(counts[i]) + "\n";
      }
    }
    gauges = gauges_;
  }
  out +=
      "# HELP hookguard_request_duration_seconds Time from request arrival to answer.\n"
      "# TYPE hookguard_request_duration_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kLatencyBucketsSeconds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    std::snprintf(num, sizeof num, "%g", kLatencyBucketsSeconds[i]);
    out += std::string("hookguard_request_duration_seconds_bucket{le=\"") + num + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  cumulative += buckets_.back().load(std::memory_order_relaxed);
  out +=
      "hookguard_request_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  std::snprintf(num, sizeof num, "%.6f", latency_sum_us_.load() / 1e6);
  out += std::string("hookguard_request_duration_seconds_sum ") + num + "\n";
  out += "hookguard_request_duration_seconds_count " + std::to_string(latency_count_.load()) + "\n";
  out +=
      "# HELP hookguard_library_timeouts_total Requests timed out by the HTTP library (408).\n"
      "# TYPE hookguard_library_timeouts_total counter\n"
      "hookguard_library_timeouts_total " +
      std::to_string(library_timeouts_.load()) + "\n";
  out +=
      "# HELP hookguard_ingress_oversized_heads_total Requests refused with 431: request line and "
      "headers over the ingress cap.\n"
      "# TYPE hookguard_ingress_oversized_heads_total counter\n"
      "hookguard_ingress_oversized_heads_total " +
      std::to_string(oversized_heads_.load()) + "\n";
  out +=
      "# HELP hookguard_ingress_replies_total Answers by how they reached the client socket.\n"
      "# TYPE hookguard_ingress_replies_total counter\n"
      "hookguard_ingress_replies_total{path=\"direct\"} " +
      std::to_string(direct_replies_.load()) +
      "\n"
      "hookguard_ingress_replies_total{path=\"queued\"} " +
      std::to_string(queued_replies_.load()) + "\n";
  for (const auto& g : gauges) {
    std::snprintf(num, sizeof num, "%.17g", g.read());
    out += "# HELP " + g.name + " " + g.help + "\n# TYPE " + g.name + " " + g.type + "\n" + g.name +
           " " + num + "\n";
  }
  return out;
}

}  // namespace hookguard::gateway
