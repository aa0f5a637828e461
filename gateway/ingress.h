// The webhook request path: resolve the trigger, run the chain, forward, answer, log.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "db/audit_row.h"
#include "gateway/forwarder.h"
#include "gateway/metrics.h"
#include "gateway/trigger_cache.h"
#include "policy/cidr_set.h"
#include "policy/headers.h"
#include "policy/ports.h"

namespace hookguard::gateway {

/// One inbound request, copied out of the HTTP library (which reuses its buffers).
struct InboundRequest {
  std::string method;  // upper-case token
  std::string target;  // path as received, without the query
  std::string query;   // raw query string without '?', may be empty
  policy::HeaderList headers;
  std::string body;
  std::string peer;  // TCP peer address text
  std::optional<std::uint64_t> content_length;
  std::int64_t arrived_unix_ms = 0;
  std::int64_t arrived_steady_us = 0;
};

/// The answer to send: status, headers, body.
struct OutboundResponse {
  int status = 200;
  policy::HeaderList headers;
  std::string body;
};

/// Limits on what a request may carry before the chain even runs.
struct IngressLimits {
  std::size_t max_header_fields = 100;
  std::size_t max_header_bytes = 16384;
  std::size_t max_key_bytes = 128;
};

/// Where each request's log row goes (audit.durability).
struct AuditSink {
  /// async: takes the row right after the answer was sent.
  std::function<void(db::AuditRow)> write;
  /// strict (used instead of `write` when set): takes the row before the answer is sent and
  /// calls `then`, which sends it, once the row is committed or in the spool.
  std::function<void(db::AuditRow row, std::function<void()> then)> write_then;
};

/// What the request path needs; all of it outlives the Ingress.
struct IngressDeps {
  const TriggerCache* cache = nullptr;
  policy::RateLimitStore* rate_limits = nullptr;
  policy::ReplayStore* replays = nullptr;  // null: replay checks fail open as store errors
  Forwarder* forwarder = nullptr;
  AuditSink audit;
  Metrics* metrics = nullptr;
  policy::CidrSet trusted_proxies;
  IngressLimits limits;
  const std::atomic<bool>* draining = nullptr;  // when true, answer 503 shutting_down
};

struct Exchange;

/// The request path of DESIGN §2. handle() answers through `respond` exactly once, either
/// before it returns (rejections) or later from a store's or the forwarder's thread. The
/// stores and the forwarder must be drained (stopped) before the Ingress is destroyed.
class Ingress {
 public:
  using Respond = std::function<void(OutboundResponse)>;

  explicit Ingress(IngressDeps deps) : deps_(std::move(deps)) {}

  void handle(InboundRequest request, Respond respond) const;

 private:
  void run_chain(std::shared_ptr<Exchange> ex) const;
  void conclude(std::shared_ptr<Exchange> ex) const;
  policy::ReplayStore& replay_store() const;

  IngressDeps deps_;
};

/// The JSON error body of DESIGN §2: {"error", "message", "request_id"}.
std::string error_body(std::string_view outcome, std::string_view message,
                       std::string_view request_id);

/// Steady-clock microseconds, for processing times.
std::int64_t steady_now_us();

}  // namespace hookguard::gateway
