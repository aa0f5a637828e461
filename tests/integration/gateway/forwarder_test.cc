// Integration tests of gateway/forwarder.cc against a real HTTP/1.1 upstream on loopback. Every
// test runs twice: http:// through the built-in HTTP/1.1 client and through libcurl.
#include "gateway/forwarder.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/upstream_server.h"

namespace hookguard::gateway {
namespace {

using namespace std::chrono_literals;
using Kind = UpstreamResult::Kind;
using testing::UpstreamServer;
using Clock = std::chrono::steady_clock;

ForwarderOptions loopback_options() {
  ForwarderOptions o;
  o.deny_networks = {"169.254.0.0/16", "fe80::/10"};  // the default: loopback allowed
  return o;
}

UpstreamRequest make_request(std::string method, std::string url, std::string body = {},
                             int timeout_ms = 5000) {
  UpstreamRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  r.body = std::move(body);
  r.timeout_ms = timeout_ms;
  return r;
}

// Submits and returns a future; the promise is shared so a late callback never dangles.
std::future<UpstreamResult> submit(Forwarder& f, UpstreamRequest req) {
  auto promise = std::make_shared<std::promise<UpstreamResult>>();
  auto future = promise->get_future();
  f.submit(std::move(req), [promise](UpstreamResult r) { promise->set_value(std::move(r)); });
  return future;
}

UpstreamResult send(Forwarder& f, UpstreamRequest req) {
  auto future = submit(f, std::move(req));
  if (future.wait_for(15s) != std::future_status::ready) {
    throw std::runtime_error("forwarder did not call back within 15 s");
  }
  return future.get();
}

// A port on loopback that nothing listens on (bound once, then released).
int unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class ForwarderTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    forwarder_ = std::make_unique<Forwarder>(options());
    forwarder_->start();
  }

  // loopback_options() on the path under test.
  static ForwarderOptions options() {
    ForwarderOptions o = loopback_options();
    o.http_via_curl = GetParam();
    return o;
  }

  // A started forwarder with `threads` loops that takes one request at a time.
  static std::unique_ptr<Forwarder> one_at_a_time(int threads) {
    ForwarderOptions o = options();
    o.threads = threads;
    o.max_in_flight = 1;
    auto f = std::make_unique<Forwarder>(o);
    f->start();
    return f;
  }

  UpstreamServer upstream_;
  std::unique_ptr<Forwarder> forwarder_;
};

TEST_P(ForwarderTest, RelaysStatusHeadersAndBody) {
  auto r = send(*forwarder_, make_request("POST", upstream_.url("/status/201"), "{}"));
  ASSERT_EQ(r.kind, Kind::kOk) << r.error;
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, R"({"ok":true})");
  EXPECT_EQ(r.headers.get("X-Upstream"), "test");
  EXPECT_EQ(r.headers.get("Content-Type"), "application/json");
  EXPECT_FALSE(r.headers.get("Content-Length"));  // the relayer sets its own
  EXPECT_FALSE(r.headers.get("Connection"));
  EXPECT_TRUE(r.error.empty());
  EXPECT_GE(r.elapsed_ms, 0);
}

TEST_P(ForwarderTest, RelaysErrorStatusesAndRedirectsWithoutFollowing) {
  auto r = send(*forwarder_, make_request("POST", upstream_.url("/status/503")));
  ASSERT_EQ(r.kind, Kind::kOk) << r.error;
  EXPECT_EQ(r.status, 503);
  r = send(*forwarder_, make_request("POST", upstream_.url("/status/302")));
  ASSERT_EQ(r.kind, Kind::kOk) << r.error;
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(upstream_.request_count(), 2u);
}

// Verifies the body arrives byte for byte (NULs, high bytes) and that a body over libcurl's
// Expect: 100-continue threshold is sent at once, without the 1 s wait.
TEST_P(ForwarderTest, SendsExactBodyBytesWithoutExpectContinue) {
  ForwarderOptions o = options();
  o.max_response_bytes = 4 << 20;
  Forwarder f(o);
  f.start();
  std::string body(2 << 20, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 31 % 256);
  auto req = make_request("POST", upstream_.url("/echo"), body);
  req.headers.add("Content-Type", "application/octet-stream");
  auto r = send(f, std::move(req));
  ASSERT_EQ(r.kind, Kind::kOk) << r.error;
  EXPECT_EQ(r.body, body);
  auto seen = upstream_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].body, body);
  EXPECT_EQ(seen[0].headers.get("Content-Length"), std::to_string(body.size()));
  EXPECT_FALSE(seen[0].headers.get("Expect"));
  EXPECT_FALSE(seen[0].headers.get("Transfer-Encoding"));
}

TEST_P(ForwarderTest, DropsHopByHopRequestHeadersAndSetsUpstreamHost) {
  auto req = make_request("POST", upstream_.url("/echo?x=1"), "hello");
  req.headers = {{"Host", "evil.example"},
                 {"Connection", "X-Foo, close"},
                 {"Keep-Alive", "timeout=1"},
                 {"TE", "trailers"},
                 {"Trailer", "X-T"},
                 {"Transfer-Encoding", "chunked"},
                 {"Upgrade", "h2c"},
                 {"Proxy-Authorization", "Basic eA=="},
                 {"Content-Length", "999"},
                 {"Expect", "100-continue"},
                 {"X-Custom", "v1"},
                 {"X-Custom", "v2"},
                 {"X-Empty", ""}};
  auto r = send(*forwarder_, std::move(req));
  ASSERT_EQ(r.kind, Kind::kOk) << r.error;
  auto seen = upstream_.requests();
  ASSERT_EQ(seen.size(), 1u);
  const auto& h = seen[0].headers;
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/echo?x=1");
  EXPECT_EQ(seen[0].version, "HTTP/1.1");
  EXPECT_EQ(h.get("Host"), "127.0.0.1:" + std::to_string(upstream_.port()));
  EXPECT_EQ(h.get("Content-Length"), "5");
  EXPECT_EQ(seen[0].body, "hello");
  for (const char* name : {"Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
                           "Proxy-Authorization", "Expect", "X-Foo"}) {
    EXPECT_FALSE(h.get(name)) << name;
  }
  EXPECT_FALSE(h.get("Connection"));
  // libcurl's own defaults are not invented for the sender.
  EXPECT_FALSE(h.get("Accept"));
  EXPECT_FALSE(h.get("Content-Type"));
  std::vector<std::string> custom;
  for (const auto& [name, value] : h.fields()) {
    if (policy::header_name_equals(name, "X-Custom")) custom.push_back(value);
  }
  EXPECT_EQ(custom, (std::vector<std::string>{"v1", "v2"}));
  EXPECT_EQ(h.get("X-Empty"), "");
}

TEST_P(ForwarderTest, StripsHopByHopResponseHeadersIncludingThoseNamedInConnection) {
  auto r = send(*forwarder_, make_request("POST", upstream_.url("/hop")));
  ASSERT_EQ(r.kind, Kind::kOk) << r.error;
  EXPECT_EQ(r.headers.get("X-Upstream"), "test");
  for (const char* name : {"Connection", "Keep-Alive", "X-Private", "Proxy-Authenticate", "Upgrade",
                           "Trailer", "Content-Length", "Transfer-Encoding"}) {
    EXPECT_FALSE(r.headers.get(name)) << name;
  }
}

TEST_P(ForwarderTest, DecodesChunkedResponseAndDropsTrailers) {
  auto r = send(*forwarder_, make_request("POST", upstream_.url("/chunked")));
  ASSERT_EQ(r.kind, Kind::kOk) << r.error;
  EXPECT_EQ(r.body, "hello world");
  EXPECT_FALSE(r.headers.get("Transfer-Encoding"));
  EXPECT_FALSE(r.headers.get("X-Trailer"));
}

TEST_P(ForwarderTest, KeepsOnlyTheFinalResponseHeadersAfterAnInterimResponse) {
  auto r = send(*forwarder_, make_request("POST", upstream_.url("/interim"), "x"));
  ASSERT_EQ(r.kind, Kind::kOk) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.headers.get("X-Interim"));
  EXPECT_EQ(r.headers.get("X-Upstream"), "test");
}

TEST_P(ForwarderTest, ReusesOneKeptAliveConnectionForSequentialRequests) {
  for (int i = 0; i < 20; ++i) {
    auto r = send(*forwarder_, make_request("POST", upstream_.url("/"), "n"));
    ASSERT_EQ(r.kind, Kind::kOk) << r.error;
  }
  EXPECT_EQ(upstream_.request_count(), 20u);
  EXPECT_EQ(upstream_.accepted_connections(), 1);
}

TEST_P(ForwarderTest, ConnectionRefusedIsAConnectErrorAtOnce) {
  const auto url = "http://127.0.0.1:" + std::to_string(unused_port()) + "/";
  auto r = send(*forwarder_, make_request("POST", url));
  EXPECT_EQ(r.kind, Kind::kConnectError);
  EXPECT_FALSE(r.error.empty());
  EXPECT_LT(r.elapsed_ms, 500);
}

TEST_P(ForwarderTest, UpstreamSlowerThanTheTimeoutIsATimeoutOnTime) {
  auto r = send(*forwarder_, make_request("POST", upstream_.url("/delay/5000"), "", 300));
  EXPECT_EQ(r.kind, Kind::kTimeout) << r.error;
  EXPECT_GE(r.elapsed_ms, 290);
  EXPECT_LT(r.elapsed_ms, 800);
  EXPECT_EQ(r.status, 0);
}

TEST_P(ForwarderTest, HungUpstreamIsATimeout) {
  auto r = send(*forwarder_, make_request("POST", upstream_.url("/hang"), "", 400));
  EXPECT_EQ(r.kind, Kind::kTimeout) << r.error;
  EXPECT_LT(r.elapsed_ms, 900);
}

// Verifies DESIGN §2: "a slow upstream of one trigger must not stall requests of other triggers".
TEST_P(ForwarderTest, SlowUpstreamDoesNotDelayOtherRequests) {
  UpstreamServer other;
  auto slow = submit(*forwarder_, make_request("POST", upstream_.url("/delay/5000"), "", 6000));
  ASSERT_TRUE(upstream_.wait_for_requests(1, 2s));
  int worst_ms = 0;
  for (int i = 0; i < 20; ++i) {
    const auto started = Clock::now();
    auto r = send(*forwarder_, make_request("POST", other.url("/"), "x"));
    ASSERT_EQ(r.kind, Kind::kOk) << r.error;
    worst_ms = std::max(
        worst_ms,
        static_cast<int>(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()));
  }
  EXPECT_LT(worst_ms, 200);
  EXPECT_EQ(slow.wait_for(0s), std::future_status::timeout);  // still in flight meanwhile
  ASSERT_EQ(slow.wait_for(8s), std::future_status::ready);
  auto r = slow.get();
  EXPECT_EQ(r.kind, Kind::kOk) << r.error;
  EXPECT_GE(r.elapsed_ms, 4900);
}

TEST_P(ForwarderTest, ResponseOverTheLimitIsTooLarge) {
  ForwarderOptions o = options();
  o.max_response_bytes = 1024;
  Forwarder f(o);
  f.start();
  auto ok = send(f, make_request("POST", upstream_.url("/big/1024")));
  EXPECT_EQ(ok.kind, Kind::kOk) << ok.error;
  EXPECT_EQ(ok.body.size(), 1024u);
  // Announced by Content-Length (aborted before the body is read) ...
  auto big = send(f, make_request("POST", upstream_.url("/big/1025")));
  EXPECT_EQ(big.kind, Kind::kTooLarge) << big.error;
  EXPECT_TRUE(big.body.empty());
  // ... and discovered while streaming a chunked body.
  o.max_response_bytes = 5;
  Forwarder tiny(o);
  tiny.start();
  auto chunked = send(tiny, make_request("POST", upstream_.url("/chunked")));
  EXPECT_EQ(chunked.kind, Kind::kTooLarge) << chunked.error;
}

TEST_P(ForwarderTest, TooManyResponseHeaderFieldsIsAConnectError) {
  auto ok = send(*forwarder_, make_request("POST", upstream_.url("/headers/90")));
  EXPECT_EQ(ok.kind, Kind::kOk) << ok.error;
  auto r = send(*forwarder_, make_request("POST", upstream_.url("/headers/150")));
  EXPECT_EQ(r.kind, Kind::kConnectError);
  EXPECT_EQ(r.error, "upstream headers too large");
  EXPECT_TRUE(r.headers.empty());
}

TEST_P(ForwarderTest, DeniedNetworkIsRefusedAtConnectTimeWithoutTouchingTheUpstream) {
  ForwarderOptions o = options();
  o.deny_networks = {"127.0.0.0/8", "::1/128"};
  Forwarder f(o);
  f.start();
  auto r = send(f, make_request("POST", upstream_.url("/")));
  EXPECT_EQ(r.kind, Kind::kDenied) << r.error;
  // The same address spelled as one decimal number: a URL-text check would miss it.
  const auto decimal = "http://2130706433:" + std::to_string(upstream_.port()) + "/";
  r = send(f, make_request("POST", decimal));
  EXPECT_EQ(r.kind, Kind::kDenied) << r.error;
  r = send(f, make_request("POST", "http://localhost:" + std::to_string(upstream_.port()) + "/"));
  EXPECT_EQ(r.kind, Kind::kDenied) << r.error;
  EXPECT_EQ(upstream_.accepted_connections(), 0);
  EXPECT_EQ(upstream_.request_count(), 0u);
}

TEST_P(ForwarderTest, ResetByUpstreamIsAConnectError) {
  auto r = send(*forwarder_, make_request("POST", upstream_.url("/reset"), "payload"));
  EXPECT_EQ(r.kind, Kind::kConnectError);
  EXPECT_FALSE(r.error.empty());
  // The POST must not be replayed on a fresh connection.
  EXPECT_EQ(upstream_.request_count(), 1u);
}

// Verifies a POST that died on a pooled connection is not replayed: libcurl would resend it
// on a fresh connection by itself (the upstream would see the webhook twice); the built-in
// client must not either.
TEST_P(ForwarderTest, PostResetOnAReusedConnectionIsNotReplayed) {
  ASSERT_EQ(send(*forwarder_, make_request("POST", upstream_.url("/"))).kind, Kind::kOk);
  auto r = send(*forwarder_, make_request("POST", upstream_.url("/reset"), "payload"));
  EXPECT_EQ(r.kind, Kind::kConnectError);
  EXPECT_EQ(r.error, "upstream closed a reused connection; request not retried");
  // libcurl may already have opened the retry's connection before the abort: no request on it.
  EXPECT_EQ(upstream_.request_count(), 2u);
  // The next request gets a fresh connection and succeeds.
  EXPECT_EQ(send(*forwarder_, make_request("POST", upstream_.url("/"))).kind, Kind::kOk);
}

// Idempotent methods are retried once on a fresh connection (RFC 9110 §9.2.2 allows it).
TEST_P(ForwarderTest, IdempotentRequestResetOnAReusedConnectionIsRetriedOnce) {
  ASSERT_EQ(send(*forwarder_, make_request("GET", upstream_.url("/"))).kind, Kind::kOk);
  auto r = send(*forwarder_, make_request("PUT", upstream_.url("/reset"), "payload"));
  EXPECT_EQ(r.kind, Kind::kConnectError);
  EXPECT_EQ(upstream_.request_count(), 3u);  // the retry hit a fresh connection and reset too
}

TEST_P(ForwarderTest, HeadGetAndCustomMethods) {
  auto head = send(*forwarder_, make_request("HEAD", upstream_.url("/big/100")));
  ASSERT_EQ(head.kind, Kind::kOk) << head.error;
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  auto get = send(*forwarder_, make_request("GET", upstream_.url("/")));
  ASSERT_EQ(get.kind, Kind::kOk) << get.error;
  auto purge = send(*forwarder_, make_request("PURGE", upstream_.url("/echo"), "abc"));
  ASSERT_EQ(purge.kind, Kind::kOk) << purge.error;
  EXPECT_EQ(purge.body, "abc");
  auto del = send(*forwarder_, make_request("DELETE", upstream_.url("/")));
  ASSERT_EQ(del.kind, Kind::kOk) << del.error;

  auto seen = upstream_.requests();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].method, "HEAD");
  EXPECT_EQ(seen[1].method, "GET");
  EXPECT_FALSE(seen[1].headers.get("Content-Length"));
  EXPECT_EQ(seen[2].method, "PURGE");
  EXPECT_EQ(seen[2].body, "abc");
  EXPECT_EQ(seen[3].method, "DELETE");
  // All on one connection: HEAD left no unread body behind.
  EXPECT_EQ(upstream_.accepted_connections(), 1);
}

TEST_P(ForwarderTest, StopCompletesInFlightRequests) {
  std::vector<std::future<UpstreamResult>> pending;
  for (int i = 0; i < 3; ++i) {
    pending.push_back(submit(*forwarder_, make_request("POST", upstream_.url("/delay/300"))));
  }
  ASSERT_TRUE(upstream_.wait_for_requests(3, 2s));
  const auto stop_started = Clock::now();
  forwarder_->stop();
  // Returns as soon as the last one is done, not at the next idle poll tick.
  EXPECT_LT(Clock::now() - stop_started, 800ms);
  for (auto& p : pending) {
    ASSERT_EQ(p.wait_for(0s), std::future_status::ready);
    auto r = p.get();
    EXPECT_EQ(r.kind, Kind::kOk) << r.error;
  }
  EXPECT_EQ(forwarder_->in_flight(), 0u);
  forwarder_->stop();  // idempotent
}

TEST_P(ForwarderTest, SubmitAfterStopIsShuttingDownInline) {
  forwarder_->stop();
  bool called = false;
  forwarder_->submit(make_request("POST", upstream_.url("/")), [&](UpstreamResult r) {
    called = true;
    EXPECT_EQ(r.kind, Kind::kShuttingDown);
  });
  EXPECT_TRUE(called);
  EXPECT_EQ(upstream_.accepted_connections(), 0);
}

// Verifies max_in_flight: with one request in flight the next is refused inline; with two loops
// too, where the next request goes to the other loop (the bound is over all loops together).
TEST_P(ForwarderTest, OverMaxInFlightIsBusyInline) {
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    auto forwarder = one_at_a_time(threads);
    Forwarder& f = *forwarder;
    auto first = submit(f, make_request("POST", upstream_.url("/delay/200")));
    bool called = false;
    f.submit(make_request("POST", upstream_.url("/")), [&](UpstreamResult r) {
      called = true;
      EXPECT_EQ(r.kind, Kind::kBusy);
    });
    EXPECT_TRUE(called);
    EXPECT_EQ(f.in_flight(), 1u);
    EXPECT_EQ(first.get().kind, Kind::kOk);
  }
}

// While stop() waits for a request in flight the forwarder is also full: a request then is
// refused as shutting down, not as busy (the log tells a drain from an overload).
TEST_P(ForwarderTest, StoppingWhileFullIsShuttingDownNotBusy) {
  int sent = 0;
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    auto forwarder = one_at_a_time(threads);
    Forwarder& f = *forwarder;
    auto first = submit(f, make_request("POST", upstream_.url("/delay/800")));
    ASSERT_TRUE(upstream_.wait_for_requests(++sent, 2s));
    std::thread stopper([&] { f.stop(); });
    std::this_thread::sleep_for(200ms);
    std::optional<Kind> kind;
    f.submit(make_request("POST", upstream_.url("/")), [&](UpstreamResult r) { kind = r.kind; });
    EXPECT_EQ(f.in_flight(), 1u) << "the first request should still be in flight";
    stopper.join();
    ASSERT_TRUE(kind.has_value()) << "not answered inline";
    EXPECT_EQ(*kind, Kind::kShuttingDown);
    EXPECT_EQ(first.get().kind, Kind::kOk);
  }
}

TEST_P(ForwarderTest, HeaderInjectionIsRejectedWithoutSending) {
  auto crlf = make_request("POST", upstream_.url("/"));
  crlf.headers.add("X-Evil", "a\r\nX-Injected: 1");
  auto r = send(*forwarder_, std::move(crlf));
  EXPECT_EQ(r.kind, Kind::kConnectError);
  EXPECT_EQ(r.error, "invalid header");

  auto nul = make_request("POST", upstream_.url("/"));
  nul.headers.add("X-Evil", std::string("a\0b", 3));
  EXPECT_EQ(send(*forwarder_, std::move(nul)).error, "invalid header");

  auto bad_name = make_request("POST", upstream_.url("/"));
  bad_name.headers.add("X Evil:", "v");
  EXPECT_EQ(send(*forwarder_, std::move(bad_name)).error, "invalid header");

  auto bad_method = make_request("PO ST", upstream_.url("/"));
  EXPECT_EQ(send(*forwarder_, std::move(bad_method)).error, "invalid method");

  EXPECT_EQ(upstream_.accepted_connections(), 0);
}

TEST_P(ForwarderTest, NonHttpSchemesAreRefused) {
  auto r = send(*forwarder_, make_request("POST", "file:///etc/passwd"));
  EXPECT_EQ(r.kind, Kind::kConnectError);
  r = send(*forwarder_,
           make_request("POST", "gopher://127.0.0.1:" + std::to_string(upstream_.port()) + "/"));
  EXPECT_EQ(r.kind, Kind::kConnectError);
  EXPECT_EQ(upstream_.accepted_connections(), 0);
}

TEST_P(ForwarderTest, ThrowingCallbackDoesNotStopTheForwarder) {
  forwarder_->submit(make_request("POST", upstream_.url("/")),
                     [](UpstreamResult) { throw std::runtime_error("callback bug"); });
  auto r = send(*forwarder_, make_request("POST", upstream_.url("/")));
  EXPECT_EQ(r.kind, Kind::kOk) << r.error;
}

// Each request opens its own connection (a thread in the test upstream): generous timeouts keep
// the test meaningful under sanitizers, where thread start-up is slow.
TEST_P(ForwarderTest, ManyConcurrentRequestsAllComplete) {
  constexpr int kRequests = 100;
  std::vector<std::future<UpstreamResult>> pending;
  for (int i = 0; i < kRequests; ++i) {
    pending.push_back(submit(*forwarder_, make_request("POST", upstream_.url("/echo"),
                                                       "body-" + std::to_string(i), 12000)));
  }
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(pending[i].wait_for(14s), std::future_status::ready);
    auto r = pending[i].get();
    ASSERT_EQ(r.kind, Kind::kOk) << r.error;
    EXPECT_EQ(r.body, "body-" + std::to_string(i));
  }
  EXPECT_EQ(forwarder_->in_flight(), 0u);
}

constexpr std::string_view kKeepAliveAnswer =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";

// An upstream that sends `answer` to the first request of each connection and closes it a
// little later. With a keep-alive answer, the pooled, idle socket becomes readable (EOF) while
// no transfer watches it.
class ClosingUpstream {
 public:
  explicit ClosingUpstream(std::string_view answer = kKeepAliveAnswer) : answer_(answer) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_fd_, 16) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("ClosingUpstream: bind/listen failed");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ClosingUpstream() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  int accepted() const { return accepted_.load(); }

 private:
  void serve() {
    while (true) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      ++accepted_;
      char buf[4096];
      std::string request;
      while (request.find("\r\n\r\n") == std::string::npos) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      // The 1-byte body ("n") arrives with or right after the headers.
      ::send(fd, answer_.data(), answer_.size(), MSG_NOSIGNAL);
      std::this_thread::sleep_for(100ms);
      ::close(fd);
    }
  }

  std::string answer_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// "Connection: close" and HTTP/1.0 answers end the connection: a pooled one would be dead by
// the next request, and a POST on it would fail instead of being sent on a fresh connection.
TEST_P(ForwarderTest, ConnectionCloseAndHttp10AnswersAreNotReused) {
  std::vector<std::string_view> answers{
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"};
  // libcurl keeps an HTTP/1.0 connection that announces keep-alive; the built-in client never
  // reuses one.
  if (!GetParam()) {
    answers.push_back("HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
  }
  for (std::string_view answer : answers) {
    ClosingUpstream closing(answer);
    for (int i = 0; i < 2; ++i) {
      auto r = send(*forwarder_, make_request("POST", closing.url(), "n"));
      ASSERT_EQ(r.kind, Kind::kOk) << answer << ": " << r.error;
      EXPECT_EQ(r.body, "ok");
    }
    EXPECT_EQ(closing.accepted(), 2) << answer;
  }
}

double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// Pooled connections stay registered with epoll between transfers (no epoll_ctl per request).
// When the upstream closes one, the loop must stop listening to it instead of waking up for
// its EOF forever, and the next request must open a fresh connection.
TEST_P(ForwarderTest, UpstreamClosingAnIdlePooledConnectionCausesNoBusyLoop) {
  ClosingUpstream closing;
  auto first = send(*forwarder_, make_request("POST", closing.url(), "n"));
  ASSERT_EQ(first.kind, Kind::kOk) << first.error;
  EXPECT_EQ(first.body, "ok");
  std::this_thread::sleep_for(200ms);  // the upstream has closed the idle connection by now
  const double before = process_cpu_seconds();
  std::this_thread::sleep_for(1s);
  const double spent = process_cpu_seconds() - before;
  // An event loop spinning on the closed socket burns the whole second.
  EXPECT_LT(spent, 0.3) << "the forwarder kept waking up for an idle, closed connection";
  auto second = send(*forwarder_, make_request("POST", closing.url(), "n"));
  ASSERT_EQ(second.kind, Kind::kOk) << second.error;
  EXPECT_EQ(second.body, "ok");
  EXPECT_EQ(closing.accepted(), 2);
}

TEST_P(ForwarderTest, ForwardsToIpv6Loopback) {
  std::unique_ptr<UpstreamServer> upstream;
  try {
    upstream = std::make_unique<UpstreamServer>(/*ipv6=*/true);
  } catch (const std::exception& e) {
    GTEST_SKIP() << "no IPv6 loopback: " << e.what();
  }
  Forwarder f(options());
  f.start();
  auto r = send(f, make_request("POST", upstream->url("/status/202")));
  EXPECT_EQ(r.kind, Kind::kOk) << r.error;
  EXPECT_EQ(r.status, 202);

  ForwarderOptions deny = options();
  deny.deny_networks = {"::1/128"};
  Forwarder denied(deny);
  denied.start();
  EXPECT_EQ(send(denied, make_request("POST", upstream->url("/"))).kind, Kind::kDenied);
}

TEST(ForwarderOptionsTest, InvalidDenyNetworkThrowsAtConstruction) {
  ForwarderOptions o;
  o.deny_networks = {"10.0.0.0/8", "not-a-cidr"};
  EXPECT_THROW(Forwarder{o}, std::invalid_argument);
}

TEST_P(ForwarderTest, RequestsSubmittedBeforeStartRunOnStart) {
  Forwarder f(options());
  auto pending = submit(f, make_request("POST", upstream_.url("/")));
  f.start();
  ASSERT_EQ(pending.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(pending.get().kind, Kind::kOk);
}

TEST_P(ForwarderTest, StopWithoutStartFailsQueuedRequests) {
  Forwarder f(options());
  auto pending = submit(f, make_request("POST", "http://127.0.0.1:1/"));
  f.stop();
  ASSERT_EQ(pending.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(pending.get().kind, Kind::kShuttingDown);
}

// A host name goes through the resolver thread; "localhost" may resolve to ::1 first, where
// nothing listens: the next address is tried.
TEST_P(ForwarderTest, ResolvesHostNamesAndTriesTheNextAddress) {
  const auto url = "http://localhost:" + std::to_string(upstream_.port()) + "/status/201";
  auto r = send(*forwarder_, make_request("POST", url));
  ASSERT_EQ(r.kind, Kind::kOk) << r.error;
  EXPECT_EQ(r.status, 201);
  auto seen = upstream_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].headers.get("Host"), "localhost:" + std::to_string(upstream_.port()));
}

TEST_P(ForwarderTest, UnresolvableHostIsAConnectError) {
  auto r = send(*forwarder_, make_request("POST", "http://no-such-host.invalid/"));
  EXPECT_EQ(r.kind, Kind::kConnectError);
  EXPECT_FALSE(r.error.empty());
}

TEST_P(ForwarderTest, MaxTimeoutCapsTheRequestTimeout) {
  ForwarderOptions o = options();
  o.max_timeout_ms = 300;
  Forwarder f(o);
  f.start();
  auto r = send(f, make_request("POST", upstream_.url("/delay/5000"), "", 5000));
  EXPECT_EQ(r.kind, Kind::kTimeout) << r.error;
  EXPECT_LT(r.elapsed_ms, 800);
}

TEST_P(ForwarderTest, IdleConnectionOlderThanMaxAgeIsNotReused) {
  ForwarderOptions o = options();
  o.max_connection_age_s = 1;
  Forwarder f(o);
  f.start();
  ASSERT_EQ(send(f, make_request("POST", upstream_.url("/"))).kind, Kind::kOk);
  // Past the age limit (libcurl compares whole seconds); a precondition, not an assertion.
  std::this_thread::sleep_for(2100ms);
  ASSERT_EQ(send(f, make_request("POST", upstream_.url("/"))).kind, Kind::kOk);
  EXPECT_EQ(upstream_.accepted_connections(), 2);
}

TEST_P(ForwarderTest, QueryWithoutPathAndFragmentMakeTheRequestTarget) {
  const auto url = "http://127.0.0.1:" + std::to_string(upstream_.port()) + "?a=1&b=%20#frag";
  ASSERT_EQ(send(*forwarder_, make_request("GET", url)).kind, Kind::kOk);
  auto seen = upstream_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/?a=1&b=%20");
}

// Threads of this process named like the forwarder's loops.
int forwarder_threads() {
  int n = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name) && name == "hg-forwarder") ++n;
  }
  return n;
}

// Verifies that two loops take requests in turn, each on its own thread and keeping its own
// pooled connection: sequential requests alternate between two kept-alive connections.
TEST_P(ForwarderTest, TwoLoopsTakeRequestsInTurnEachWithItsOwnPool) {
  const int before = forwarder_threads();
  ForwarderOptions o = options();
  o.threads = 2;
  Forwarder f(o);
  f.start();
  EXPECT_EQ(forwarder_threads() - before, 2);
  for (int i = 0; i < 20; ++i) {
    auto r = send(f, make_request("POST", upstream_.url("/echo"), "n" + std::to_string(i)));
    ASSERT_EQ(r.kind, Kind::kOk) << r.error;
    EXPECT_EQ(r.body, "n" + std::to_string(i));
  }
  EXPECT_EQ(upstream_.request_count(), 20u);
  EXPECT_EQ(upstream_.accepted_connections(), 2);
  f.stop();
  EXPECT_EQ(forwarder_threads(), before);
}

// Verifies that stop() finishes what every loop has in flight before it returns.
TEST_P(ForwarderTest, StopCompletesInFlightRequestsOnEveryLoop) {
  ForwarderOptions o = options();
  o.threads = 2;
  Forwarder f(o);
  f.start();
  std::vector<std::future<UpstreamResult>> pending;
  for (int i = 0; i < 4; ++i) {
    pending.push_back(submit(f, make_request("POST", upstream_.url("/delay/300"))));
  }
  ASSERT_TRUE(upstream_.wait_for_requests(4, 2s));
  EXPECT_EQ(f.in_flight(), 4u);
  f.stop();
  for (auto& p : pending) {
    ASSERT_EQ(p.wait_for(0s), std::future_status::ready);
    auto r = p.get();
    EXPECT_EQ(r.kind, Kind::kOk) << r.error;
  }
  EXPECT_EQ(f.in_flight(), 0u);
  EXPECT_EQ(upstream_.accepted_connections(), 4);
}

INSTANTIATE_TEST_SUITE_P(Paths, ForwarderTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Curl") : std::string("Lean");
                         });

}  // namespace
}  // namespace hookguard::gateway
