// The upstream forwarder: takes a prepared request, returns a result; knows nothing of ingress.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "policy/headers.h"

namespace hookguard::gateway {

/// A request ready to send: URL complete (suffix and query appended), headers final.
struct UpstreamRequest {
  std::string method;
  std::string url;
  policy::HeaderList headers;  // already filtered; the forwarder adds only Host/Content-Length
  std::string body;
  int timeout_ms = 8000;  // total, connect included
};

/// What came back from the upstream, or why nothing did.
struct UpstreamResult {
  enum class Kind {
    kOk,            // an HTTP response arrived (any status)
    kConnectError,  // refused, unreachable, DNS failure, reset, malformed response
    kTimeout,       // connect or total timeout
    kDenied,        // the resolved address is inside upstream.deny_networks
    kTooLarge,      // response body over max_response_bytes
    kBusy,          // too many requests in flight
    kShuttingDown,  // the forwarder is stopping
  };
  Kind kind = Kind::kConnectError;
  int status = 0;
  policy::HeaderList headers;  // hop-by-hop fields removed
  std::string body;
  int elapsed_ms = 0;
  std::string error;  // internal detail for the log; never sent to the client
};

struct ForwarderOptions {
  // Event loops, each on its own thread with its own connection pool; submit() hands requests
  // to them in turn. One loop is the busiest thread of a gateway under load: on a shared
  // machine the scheduler makes the busiest thread wait longest, so two halves do better.
  int threads = 1;
  int connect_timeout_ms = 2000;
  int max_connections = 256;  // pooled keep-alive connections in total, split between the loops
  int max_in_flight = 10000;  // beyond this (all loops together), kBusy at once
  std::int64_t max_response_bytes = 1048576;
  std::vector<std::string> deny_networks{"169.254.0.0/16", "fe80::/10"};
  int max_connection_age_s = 4;  // below common upstream keep-alive timeouts (Node: 5 s)
  // Upper bound on any request's timeout_ms (0: none). `serve` sets upstream.timeout_ms, which
  // stays below the ingress header/body timeouts: past those Pistache answers 408 itself, closes
  // the peer, and a late reply could land on a new connection that reused its fd.
  int max_timeout_ms = 0;
  // http:// upstreams use the built-in HTTP/1.1 client (fewer syscalls and less CPU per request
  // than libcurl); true sends them through libcurl too (tests, comparison). https:// always
  // uses libcurl.
  bool http_via_curl = false;
};

/// Sends requests on event-loop threads (ForwarderOptions::threads); a slow upstream never
/// delays another request.
class Forwarder {
 public:
  using Callback = std::function<void(UpstreamResult)>;

  explicit Forwarder(ForwarderOptions options);
  ~Forwarder();  // stop()s
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  void start();
  /// Queues `request` on the next loop; `done` runs exactly once, on that loop's thread (or
  /// inline with kShuttingDown/kBusy when the request cannot be queued).
  void submit(UpstreamRequest request, Callback done);
  /// Finishes in-flight requests (up to their timeouts), then joins the threads. Idempotent.
  void stop();

  std::size_t in_flight() const;

 private:
  struct Impl;  // one event loop
  std::vector<std::unique_ptr<Impl>> loops_;
  std::atomic<std::size_t> next_loop_{0};
  std::atomic<bool> stopping_{false};  // stop() has begun
  std::size_t max_in_flight_ = 0;
};

}  // namespace hookguard::gateway
