#include "gateway/http1_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "gateway/http1_response_parser.h"

namespace hookguard::gateway::http1 {
namespace {

using Kind = UpstreamResult::Kind;

constexpr std::size_t kRecvBufferBytes = 64 * 1024;
constexpr auto kIdleSweepInterval = std::chrono::seconds(1);

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         policy::header_name_equals(s.substr(0, prefix.size()), prefix);
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::optional<int> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  int port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) return std::nullopt;
  return port;
}

// An IP literal needs no resolver: inet_pton accepts only the canonical spellings, so
// "2130706433" or "0x7f.1" go through getaddrinfo, which decodes them the way libcurl did.
std::optional<sockaddr_storage> literal_address(const std::string& host, int port, socklen_t& len) {
  sockaddr_storage storage{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof(sockaddr_in);
    return storage;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof(sockaddr_in6);
    return storage;
  }
  return std::nullopt;
}

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

int elapsed_ms_since(Client::Clock::time_point start) {
  return static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Client::Clock::now() - start).count());
}

}  // namespace

bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

bool is_owned_request_field(std::string_view name) {
  return is_hop_by_hop(name) || policy::header_name_equals(name, "Host") ||
         policy::header_name_equals(name, "Content-Length") ||
         policy::header_name_equals(name, "Expect");
}

std::optional<HttpUrl> parse_http_url(std::string_view url) {
  if (!starts_with_ci(url, "http://")) return std::nullopt;
  url.remove_prefix(7);
  const auto authority_end = std::min(url.find_first_of("/?#"), url.size());
  const std::string_view authority = url.substr(0, authority_end);
  std::string_view rest = url.substr(authority_end);
  if (authority.empty()) return std::nullopt;

  HttpUrl out;
  std::string_view port_text;
  bool has_port = false;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = std::string(authority.substr(1, close - 1));
    in6_addr probe{};
    if (inet_pton(AF_INET6, out.host.c_str(), &probe) != 1) return std::nullopt;  // zone ids too
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (out.host.empty() || !std::all_of(out.host.begin(), out.host.end(), is_host_char)) {
      return std::nullopt;
    }
  }
  if (has_port) {
    auto port = parse_port(port_text);
    if (!port) return std::nullopt;
    out.port = *port;
  }
  out.authority = std::string(authority);
  out.origin = lower(out.host) + ":" + std::to_string(out.port);

  rest = rest.substr(0, rest.find('#'));
  for (char c : rest) {
    const auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b == 0x7f) return std::nullopt;
  }
  if (rest.empty() || rest.front() == '?') out.target.push_back('/');
  out.target.append(rest);
  return out;
}

// One getaddrinfo thread: a lookup may block for seconds and must never stall the loop. It
// outlives the client when a lookup is still running at shutdown; `post` is then cleared so the
// answer goes nowhere.
class Client::Resolver {
 public:
  using Done = std::function<void(std::vector<Address>, std::string)>;

  static std::shared_ptr<Resolver> start(std::function<void(std::function<void()>)> post) {
    auto r = std::make_shared<Resolver>();
    r->post_ = std::move(post);
    std::thread([r] {
      pthread_setname_np(pthread_self(), "hg-resolver");
      r->run();
    }).detach();
    return r;
  }

  void lookup(std::string host, int port, Done done) {
    std::lock_guard lock(mutex_);
    jobs_.push_back({std::move(host), port, std::move(done)});
    cv_.notify_one();
  }

  void shutdown() {
    std::lock_guard lock(mutex_);
    post_ = nullptr;
    jobs_.clear();
    cv_.notify_one();
  }

 private:
  struct Job {
    std::string host;
    int port;
    Done done;
  };

  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [&] { return !jobs_.empty() || !post_; });
      if (!post_) return;
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      std::vector<Address> addresses;
      std::string error;
      resolve(job, addresses, error);
      lock.lock();
      // Under the lock: shutdown() cannot complete while an answer is being posted.
      if (!post_) return;
      post_([done = std::move(job.done), addresses = std::move(addresses),
             error = std::move(error)]() mutable { done(std::move(addresses), std::move(error)); });
    }
  }

  static void resolve(const Job& job, std::vector<Address>& addresses, std::string& error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const std::string port = std::to_string(job.port);
    const int rc = getaddrinfo(job.host.c_str(), port.c_str(), &hints, &list);
    if (rc != 0) {
      error = std::string("could not resolve host: ") + gai_strerror(rc);
      return;
    }
    for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
      if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
      Address address;
      std::memcpy(&address.addr, a->ai_addr, a->ai_addrlen);
      address.len = a->ai_addrlen;
      addresses.push_back(address);
    }
    freeaddrinfo(list);
    if (addresses.empty()) error = "could not resolve host: no address";
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::function<void(std::function<void()>)> post_;
};

struct Client::Connection {
  std::uint64_t id = 0;
  int fd = -1;
  std::string origin;
  bool connected = false;
  bool reused = false;           // a response arrived on it before
  std::uint32_t events = 0;      // registered with epoll; 0: not registered
  Exchange* exchange = nullptr;  // null while idle in the pool
  Clock::time_point idle_since{};
};

// One request from submit to callback.
struct Client::Exchange {
  std::uint64_t id = 0;
  UpstreamRequest request;
  HttpUrl url;
  Callback done;
  Clock::time_point submitted{};
  Clock::time_point deadline{};
  Clock::time_point connect_deadline{};
  std::string head;  // request line and header fields
  bool send_body = true;
  bool idempotent = false;
  bool retried = false;
  std::vector<Address> addresses;
  std::size_t next_address = 0;
  bool denied = false;
  std::string connect_error;
  std::unique_ptr<Connection> conn;
  std::size_t sent = 0;  // of head + body
  ResponseParser parser;

  std::size_t total_bytes() const { return head.size() + (send_body ? request.body.size() : 0); }
};

Client::Client(const ForwarderOptions& options, const policy::CidrSet& deny, Loop loop)
    : options_(options), deny_(deny), loop_(std::move(loop)), recv_buffer_(kRecvBufferBytes) {}

Client::~Client() {
  if (resolver_) resolver_->shutdown();
  for (auto& [id, conn] : connections_) close(conn->fd);
}

void Client::submit(UpstreamRequest request, HttpUrl url, Callback done,
                    Clock::time_point submitted) {
  auto owned = std::make_unique<Exchange>();
  Exchange* x = owned.get();
  x->id = next_exchange_id_++;
  x->request = std::move(request);
  x->url = std::move(url);
  x->done = std::move(done);
  x->submitted = submitted;
  int total = std::max(1, x->request.timeout_ms);
  // See ForwarderOptions::max_timeout_ms: no request may outlive the ingress deadline.
  if (options_.max_timeout_ms > 0) total = std::min(total, options_.max_timeout_ms);
  x->deadline = submitted + std::chrono::milliseconds(total);
  exchanges_.emplace(x->id, std::move(owned));
  if (const char* why = prepare(*x)) {
    fail(x, Kind::kConnectError, why);
    return;
  }
  arm(x->deadline, x->id);
  acquire_connection(x, /*allow_pool=*/true);
}

// Builds the request head once; what the caller did not send (Accept, Content-Type, Expect) is
// not invented.
const char* Client::prepare(Exchange& x) {
  const UpstreamRequest& req = x.request;
  if (!policy::is_token(req.method)) return "invalid method";
  std::string& head = x.head;
  head.reserve(256 + req.url.size());
  head.append(req.method).append(" ").append(x.url.target).append(" HTTP/1.1\r\nHost: ");
  head.append(x.url.authority).append("\r\n");
  for (const auto& [name, value] : req.headers.fields()) {
    // Header injection guard (DESIGN §8): a CR/LF in a value would start a new field.
    if (!policy::is_token(name) || policy::has_line_break_or_nul(value)) return "invalid header";
    if (is_owned_request_field(name)) continue;
    head.append(name).append(": ").append(value).append("\r\n");
  }
  const bool head_request = req.method == "HEAD";
  x.send_body = !head_request;
  // As libcurl did: GET/HEAD without a body carry no Content-Length, everything else does.
  if (!req.body.empty() ? !head_request : (req.method != "GET" && !head_request)) {
    head.append("Content-Length: ").append(std::to_string(req.body.size())).append("\r\n");
  }
  head.append("\r\n");
  x.idempotent = is_idempotent(req.method);
  return nullptr;
}

void Client::acquire_connection(Exchange* x, bool allow_pool) {
  if (allow_pool) {
    if (auto conn = take_idle(x->url.origin)) {
      conn->exchange = x;
      x->conn = std::move(conn);
      start_sending(x);
      return;
    }
  }
  x->addresses.clear();
  x->next_address = 0;
  Address literal;
  if (auto addr = literal_address(x->url.host, x->url.port, literal.len)) {
    literal.addr = *addr;
    x->addresses.push_back(literal);
    connect_next(x);
  } else {
    resolve(x);
  }
}

// The most recently used idle connection, skipping those idle for too long: an upstream closes
// idle connections after its own keep-alive timeout, and a request sent just then is lost.
std::unique_ptr<Client::Connection> Client::take_idle(const std::string& origin) {
  auto it = idle_.find(origin);
  if (it == idle_.end()) return nullptr;
  auto& stack = it->second;
  const auto max_idle = std::chrono::seconds(std::max(0, options_.max_connection_age_s));
  const auto now = Clock::now();
  std::unique_ptr<Connection> found;
  while (!stack.empty() && !found) {
    auto conn = std::move(stack.back());
    stack.pop_back();
    --idle_count_;
    if (now - conn->idle_since < max_idle) {
      found = std::move(conn);
    } else {
      close_connection(std::move(conn));
    }
  }
  if (stack.empty()) idle_.erase(it);
  return found;
}

void Client::resolve(Exchange* x) {
  if (!resolver_) resolver_ = Resolver::start(loop_.post);
  const std::uint64_t id = x->id;
  resolver_->lookup(x->url.host, x->url.port,
                    [this, id](std::vector<Address> addresses, std::string error) {
                      on_resolved(id, std::move(addresses), std::move(error));
                    });
}

void Client::on_resolved(std::uint64_t exchange_id, std::vector<Address> addresses,
                         std::string error) {
  auto it = exchanges_.find(exchange_id);
  if (it == exchanges_.end()) return;  // timed out meanwhile
  Exchange* x = it->second.get();
  if (!error.empty()) {
    fail(x, Kind::kConnectError, std::move(error));
    return;
  }
  x->addresses = std::move(addresses);
  x->next_address = 0;
  connect_next(x);
}

// SSRF guard at connect time, on the resolved address: checking the URL's host text misses
// 2130706433, 0x7f.1, IPv4-mapped IPv6 and DNS rebinding.
bool Client::denied(const Address& address) const {
  char text[INET6_ADDRSTRLEN] = {};
  const void* raw = nullptr;
  if (address.addr.ss_family == AF_INET) {
    raw = &reinterpret_cast<const sockaddr_in*>(&address.addr)->sin_addr;
  } else if (address.addr.ss_family == AF_INET6) {
    raw = &reinterpret_cast<const sockaddr_in6*>(&address.addr)->sin6_addr;
  } else {
    return true;
  }
  if (inet_ntop(address.addr.ss_family, raw, text, sizeof text) == nullptr) return true;
  auto ip = policy::IpAddress::parse(text);
  return !ip || deny_.contains(*ip);
}

// Tries the remaining addresses in order until a connect starts.
void Client::connect_next(Exchange* x) {
  while (x->next_address < x->addresses.size()) {
    const Address& address = x->addresses[x->next_address++];
    if (denied(address)) {
      x->denied = true;
      continue;
    }
    const int fd = socket(address.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      x->connect_error = errno_text("socket", errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&address.addr), address.len);
    if (rc != 0 && errno != EINPROGRESS) {
      x->connect_error = errno_text("connect", errno);
      close(fd);
      continue;
    }
    auto conn = std::make_unique<Connection>();
    conn->id = next_connection_id_++;
    conn->fd = fd;
    conn->origin = x->url.origin;
    conn->exchange = x;
    connections_.emplace(conn->id, conn.get());
    x->conn = std::move(conn);
    if (rc == 0) {
      x->conn->connected = true;
      start_sending(x);
    } else {
      watch(*x->conn, EPOLLOUT);
      const auto limit = std::chrono::milliseconds(std::max(1, options_.connect_timeout_ms));
      x->connect_deadline = std::min(Clock::now() + limit, x->deadline);
      arm(x->connect_deadline, x->id);
    }
    return;
  }
  if (x->denied) {
    fail(x, Kind::kDenied, "upstream address denied");
  } else {
    fail(x, Kind::kConnectError, x->connect_error.empty() ? "could not connect" : x->connect_error);
  }
}

void Client::finish_connect(Exchange* x) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(x->conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    x->connect_error = errno_text("connect", err);
    close_connection(std::move(x->conn));
    connect_next(x);
    return;
  }
  x->conn->connected = true;
  start_sending(x);
}

void Client::start_sending(Exchange* x) {
  x->sent = 0;
  x->parser.reset(x->request.method == "HEAD", options_.max_response_bytes);
  send_more(x);
}

// One sendmsg of head and body; the rest waits for EPOLLOUT. Returns false when the exchange
// left this connection (finished, or retried on another one).
bool Client::send_more(Exchange* x) {
  const std::size_t head_size = x->head.size();
  iovec iov[2];
  int count = 0;
  if (x->sent < head_size) {
    iov[count++] = {x->head.data() + x->sent, head_size - x->sent};
  }
  const std::size_t body_sent = x->sent > head_size ? x->sent - head_size : 0;
  if (x->send_body && body_sent < x->request.body.size()) {
    iov[count++] = {x->request.body.data() + body_sent, x->request.body.size() - body_sent};
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<std::size_t>(count);
  const ssize_t n = count == 0 ? 0 : sendmsg(x->conn->fd, &msg, MSG_NOSIGNAL);
  if (n < 0 && errno != EAGAIN && errno != EINTR) {
    on_connection_lost(x, errno_text("send", errno));
    return false;
  }
  if (n > 0) x->sent += static_cast<std::size_t>(n);
  // A reused connection is already registered for EPOLLIN: a whole request costs no epoll_ctl.
  watch(*x->conn, x->sent < x->total_bytes() ? EPOLLIN | EPOLLOUT : EPOLLIN);
  return true;
}

void Client::on_event(std::uint64_t data, std::uint32_t events) {
  const std::uint64_t id = data & ~kEpollTag;
  auto it = connections_.find(id);
  if (it == connections_.end()) return;  // closed by an earlier event of this batch
  Connection* conn = it->second;
  Exchange* x = conn->exchange;
  if (x == nullptr) {
    // An idle pooled connection became readable: the upstream closed it (or sent bytes nobody
    // asked for). Close it, or level-triggered epoll reports it forever.
    close_idle(conn);
    return;
  }
  if (!conn->connected) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) finish_connect(x);
    return;
  }
  if ((events & EPOLLOUT) && x->sent < x->total_bytes()) {
    if (!send_more(x)) return;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) receive(x);
}

// One recv per readiness: level-triggered epoll reports the socket again if more is waiting.
void Client::receive(Exchange* x) {
  const ssize_t n = recv(x->conn->fd, recv_buffer_.data(), recv_buffer_.size(), 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    on_connection_lost(x, errno_text("recv", errno));
    return;
  }
  if (n == 0) {
    if (!x->parser.started()) {
      on_connection_lost(x, "upstream closed the connection before responding");
      return;
    }
    x->parser.feed_eof();
    on_response_progress(x, 0, 0);
    return;
  }
  const std::string_view bytes(recv_buffer_.data(), static_cast<std::size_t>(n));
  on_response_progress(x, x->parser.feed(bytes), bytes.size());
}

void Client::on_response_progress(Exchange* x, std::size_t used, std::size_t received) {
  switch (x->parser.state()) {
    case ResponseParser::State::kNeedMore:
      return;
    case ResponseParser::State::kError:
      fail(x,
           x->parser.error() == ResponseParser::Error::kBodyTooLarge ? Kind::kTooLarge
                                                                     : Kind::kConnectError,
           x->parser.error_message());
      return;
    case ResponseParser::State::kDone:
      // Bytes after the response, or a request body the upstream did not wait for, leave the
      // connection in an unknown state: it is not reused.
      succeed(x, x->parser.keep_alive() && used == received && x->sent == x->total_bytes());
      return;
  }
}

// The connection died (reset, EOF or a send error) before the response was complete.
void Client::on_connection_lost(Exchange* x, const std::string& why) {
  if (!x->parser.started() && x->conn->reused) {
    // The upstream may have closed the idle connection just as we sent: nothing was processed,
    // or it was and the answer was lost. Only idempotent requests may go again (RFC 9110
    // §9.2.2); a webhook must not be delivered twice (nginx does the same).
    if (!x->idempotent) {
      fail(x, Kind::kConnectError, "upstream closed a reused connection; request not retried");
      return;
    }
    if (!x->retried) {
      x->retried = true;
      close_connection(std::move(x->conn));
      acquire_connection(x, /*allow_pool=*/false);
      return;
    }
  }
  fail(x, Kind::kConnectError, why);
}

void Client::succeed(Exchange* x, bool reusable) {
  UpstreamResult result;
  result.kind = Kind::kOk;
  result.status = x->parser.status();
  result.headers = std::move(x->parser.headers());
  result.body = std::move(x->parser.body());
  if (reusable) {
    release_to_pool(std::move(x->conn));
  } else {
    close_connection(std::move(x->conn));
  }
  complete(x, std::move(result));
}

void Client::fail(Exchange* x, Kind kind, std::string error) {
  if (x->conn) close_connection(std::move(x->conn));
  UpstreamResult result;
  result.kind = kind;
  result.error = std::move(error);
  complete(x, std::move(result));
}

void Client::complete(Exchange* x, UpstreamResult result) {
  result.elapsed_ms = elapsed_ms_since(x->submitted);
  Callback done = std::move(x->done);
  exchanges_.erase(x->id);  // x is gone from here on
  loop_.complete(done, std::move(result));
}

// At most max_connections idle in total; beyond that the returning connection is closed.
void Client::release_to_pool(std::unique_ptr<Connection> conn) {
  if (idle_count_ >= static_cast<std::size_t>(std::max(0, options_.max_connections))) {
    close_connection(std::move(conn));
    return;
  }
  conn->exchange = nullptr;
  conn->reused = true;
  conn->idle_since = Clock::now();
  // Stays registered for EPOLLIN (send_more left it so): an upstream closing it is noticed.
  auto& stack = idle_[conn->origin];
  stack.push_back(std::move(conn));
  ++idle_count_;
}

void Client::close_connection(std::unique_ptr<Connection> conn) {
  if (!conn) return;
  connections_.erase(conn->id);
  close(conn->fd);  // also leaves the epoll set: the fd is never duplicated
}

void Client::close_idle(Connection* conn) {
  auto it = idle_.find(conn->origin);
  if (it == idle_.end()) return;
  auto& stack = it->second;
  auto pos = std::find_if(stack.begin(), stack.end(),
                          [conn](const auto& owned) { return owned.get() == conn; });
  if (pos == stack.end()) return;
  auto owned = std::move(*pos);
  stack.erase(pos);
  --idle_count_;
  if (stack.empty()) idle_.erase(it);
  close_connection(std::move(owned));
}

void Client::watch(Connection& conn, std::uint32_t events) {
  if (conn.events == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = kEpollTag | conn.id;
  epoll_ctl(loop_.epoll_fd, conn.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, conn.fd, &ev);
  conn.events = events;
}

void Client::arm(Clock::time_point due, std::uint64_t exchange_id) {
  // Entries of finished requests wait in the heap until due; compact when they dominate.
  if (deadlines_.size() > 1024 && deadlines_.size() > 4 * exchanges_.size()) {
    std::erase_if(deadlines_, [&](const Deadline& d) { return !exchanges_.contains(d.second); });
    std::make_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
  }
  deadlines_.emplace_back(due, exchange_id);
  std::push_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
}

std::optional<Client::Clock::time_point> Client::next_deadline() const {
  std::optional<Clock::time_point> next;
  if (!deadlines_.empty()) next = deadlines_.front().first;
  if (idle_count_ > 0 && (!next || next_sweep_ < *next)) next = next_sweep_;
  return next;
}

void Client::on_timer(Clock::time_point now) {
  while (!deadlines_.empty() && deadlines_.front().first <= now) {
    const std::uint64_t id = deadlines_.front().second;
    std::pop_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
    deadlines_.pop_back();
    auto it = exchanges_.find(id);
    if (it == exchanges_.end()) continue;
    Exchange* x = it->second.get();
    if (now >= x->deadline) {
      fail(x, Kind::kTimeout, "upstream timed out");
    } else if (x->conn && !x->conn->connected && now >= x->connect_deadline) {
      fail(x, Kind::kTimeout, "upstream connect timed out");
    }
  }
  if (idle_count_ > 0 && now >= next_sweep_) sweep_idle(now);
}

// Closes connections idle for max_connection_age_s even when no request comes to find them.
void Client::sweep_idle(Clock::time_point now) {
  next_sweep_ = now + kIdleSweepInterval;
  const auto max_idle = std::chrono::seconds(std::max(0, options_.max_connection_age_s));
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& stack = it->second;
    for (auto& conn : stack) {
      if (now - conn->idle_since >= max_idle) {
        --idle_count_;
        close_connection(std::move(conn));
      }
    }
    std::erase_if(stack, [](const auto& conn) { return conn == nullptr; });
    it = stack.empty() ? idle_.erase(it) : std::next(it);
  }
}

}  // namespace hookguard::gateway::http1
