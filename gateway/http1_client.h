// A lean HTTP/1.1 client for http:// upstreams, driven by the forwarder's event loop: pooled
// keep-alive connections, non-blocking connect, one send and one recv per request on a reused
// connection. TLS upstreams stay with libcurl (gateway/forwarder.cc).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/forwarder.h"
#include "policy/cidr_set.h"

namespace hookguard::gateway::http1 {

/// RFC 9110 §9.2.2: safe to send again after a connection died before any response byte.
bool is_idempotent(std::string_view method);

/// Request fields the forwarder owns: Host comes from the URL, Content-Length from the body,
/// hop-by-hop fields belong to one connection, and Expect would make us wait for 100-continue.
bool is_owned_request_field(std::string_view name);

/// The parts of an http:// URL the client needs.
struct HttpUrl {
  std::string host;       // without IPv6 brackets
  std::string authority;  // host[:port] as written: the Host header
  std::string origin;     // lower-cased "host:port": the pool key
  int port = 80;
  std::string target;  // path and query, "/" when empty; fragment dropped
};

/// Parses http://host[:port][/path][?query]; nullopt for anything else (other schemes,
/// userinfo, percent-encoded or international host names, bytes that cannot go on the wire).
std::optional<HttpUrl> parse_http_url(std::string_view url);

class Client {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void(UpstreamResult)>;

  /// What the client borrows from the forwarder's loop.
  struct Loop {
    int epoll_fd = -1;
    /// Thread-safe: runs `task` on the loop thread soon (the forwarder's inbox and eventfd).
    std::function<void(std::function<void()>)> post;
    /// Called on the loop thread exactly once per submitted request.
    std::function<void(Callback&, UpstreamResult)> complete;
  };

  /// Set in the epoll data of every socket the client registers; the rest is a connection id.
  static constexpr std::uint64_t kEpollTag = std::uint64_t{1} << 63;

  Client(const ForwarderOptions& options, const policy::CidrSet& deny, Loop loop);
  ~Client();  // closes every connection; a pending DNS lookup finishes on its own
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void submit(UpstreamRequest request, HttpUrl url, Callback done, Clock::time_point submitted);
  void on_event(std::uint64_t data, std::uint32_t events);
  /// Expires requests, connect attempts and idle connections that are due.
  void on_timer(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline() const;
  std::size_t active() const { return exchanges_.size(); }

 private:
  struct Address {
    sockaddr_storage addr{};
    socklen_t len = 0;
  };
  struct Exchange;
  struct Connection;
  class Resolver;

  const char* prepare(Exchange& x);
  void acquire_connection(Exchange* x, bool allow_pool);
  std::unique_ptr<Connection> take_idle(const std::string& origin);
  void resolve(Exchange* x);
  void on_resolved(std::uint64_t exchange_id, std::vector<Address> addresses, std::string error);
  void connect_next(Exchange* x);
  void finish_connect(Exchange* x);
  void start_sending(Exchange* x);
  bool send_more(Exchange* x);
  void receive(Exchange* x);
  void on_response_progress(Exchange* x, std::size_t used, std::size_t received);
  void on_connection_lost(Exchange* x, const std::string& why);
  void succeed(Exchange* x, bool reusable);
  void fail(Exchange* x, UpstreamResult::Kind kind, std::string error);
  void complete(Exchange* x, UpstreamResult result);
  void release_to_pool(std::unique_ptr<Connection> conn);
  void close_connection(std::unique_ptr<Connection> conn);
  void close_idle(Connection* conn);
  void watch(Connection& conn, std::uint32_t events);
  bool denied(const Address& address) const;
  void arm(Clock::time_point due, std::uint64_t exchange_id);
  void sweep_idle(Clock::time_point now);

  const ForwarderOptions& options_;
  const policy::CidrSet& deny_;
  Loop loop_;
  std::shared_ptr<Resolver> resolver_;  // started on first use

  std::uint64_t next_exchange_id_ = 1;
  std::uint64_t next_connection_id_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<Exchange>> exchanges_;
  std::unordered_map<std::uint64_t, Connection*> connections_;  // every open one, by id
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;  // by origin
  std::size_t idle_count_ = 0;
  Clock::time_point next_sweep_{};

  // Deadlines as a min-heap; entries of finished requests are skipped when they come up.
  using Deadline = std::pair<Clock::time_point, std::uint64_t>;
  std::vector<Deadline> deadlines_;

  std::vector<char> recv_buffer_;
};

}  // namespace hookguard::gateway::http1
