// A real in-process HTTP/1.1 upstream for integration and e2e tests (POSIX sockets, threads).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "policy/headers.h"

namespace hookguard::testing {

/// One request as the upstream received it.
struct ReceivedRequest {
  std::string method;
  std::string target;   // request-target as sent, e.g. "/echo?x=1"
  std::string version;  // "HTTP/1.1"
  policy::HeaderList headers;
  std::string body;  // exact bytes (Content-Length or de-chunked)
};

/// Listens on loopback, port 0, and answers by path prefix:
///   default           200 {"ok":true}
///   /status/<code>    that status
///   /delay/<ms>       waits, then 200 (other connections are not blocked)
///   /big/<bytes>      200 with a body of that many bytes
///   /reset            closes the connection with RST without answering
///   /echo             200 with the request body (and its Content-Type)
///   /hang             never answers (until the server stops)
///   /chunked          200 with a chunked body "hello world" and a trailer
///   /interim          "100 Continue" with a field, then 200
///   /hop              200 with hop-by-hop fields and one named in Connection
///   /headers/<n>      200 with n extra 100-byte fields X-Fill-<i>
/// Every response carries `X-Upstream: test` and `Connection: keep-alive` (unless closing).
class UpstreamServer {
 public:
  /// Starts listening on 127.0.0.1 (or ::1 when `ipv6`); throws std::runtime_error on failure.
  explicit UpstreamServer(bool ipv6 = false);
  /// Stops accepting, shuts every connection down and joins all threads.
  ~UpstreamServer();
  UpstreamServer(const UpstreamServer&) = delete;
  UpstreamServer& operator=(const UpstreamServer&) = delete;

  /// The bound port.
  int port() const { return port_; }
  /// "http://127.0.0.1:<port><path>" (or "http://[::1]:<port><path>").
  std::string url(std::string_view path) const;
  /// A copy of every request received so far, in arrival order.
  std::vector<ReceivedRequest> requests() const;
  /// How many requests were received so far.
  std::size_t request_count() const;
  /// How many TCP connections were accepted so far (proves or disproves pooling).
  int accepted_connections() const { return accepted_.load(); }
  /// Waits until at least `n` requests were received; false on timeout.
  bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const;

 private:
  struct Connection {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void accept_loop();
  void serve(Connection* conn);
  void respond(int fd, const ReceivedRequest& req, bool keep_alive, bool* close_after);
  void reap_finished();
  bool sleep_unless_stopped(std::chrono::milliseconds d);

  bool ipv6_ = false;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread acceptor_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool stopping_ = false;                  // guarded by mutex_
  std::vector<ReceivedRequest> requests_;  // guarded by mutex_
  std::list<Connection> connections_;      // guarded by mutex_
};

}  // namespace hookguard::testing
