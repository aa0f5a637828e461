#include "tests/support/upstream_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "gateway/http1_response_writer.h"

namespace hookguard::testing {
namespace {

constexpr std::size_t kMaxHeadBytes = 64 * 1024;
constexpr std::size_t kMaxBodyBytes = 64 * 1024 * 1024;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<std::size_t> parse_size(std::string_view s, int base = 10) {
  std::size_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || end == s.data()) return std::nullopt;
  return v;
}

bool contains_token_ci(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    auto comma = list.find(',');
    if (policy::header_name_equals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Reads from fd into buf until `pred(buf)` holds; false on EOF, error or overflow.
template <class Pred>
bool read_until(int fd, std::string& buf, std::size_t limit, Pred pred) {
  char chunk[16384];
  while (!pred(buf)) {
    if (buf.size() > limit) return false;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  return true;
}

// Parses one request from the front of `buf` (reading more from fd as needed) and erases it.
std::optional<ReceivedRequest> read_request(int fd, std::string& buf) {
  if (!read_until(fd, buf, kMaxHeadBytes,
                  [](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; })) {
    return std::nullopt;
  }
  const std::size_t head_end = buf.find("\r\n\r\n");
  std::string_view head(buf.data(), head_end);
  ReceivedRequest req;

  auto line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  auto sp1 = request_line.find(' ');
  auto sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return std::nullopt;
  req.method = request_line.substr(0, sp1);
  req.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  req.version = request_line.substr(sp2 + 1);

  std::string_view rest =
      line_end == std::string_view::npos ? std::string_view{} : head.substr(line_end + 2);
  while (!rest.empty()) {
    auto eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    req.headers.add(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
    if (eol == std::string_view::npos) break;
    rest.remove_prefix(eol + 2);
  }
  buf.erase(0, head_end + 4);

  auto te = req.headers.get("Transfer-Encoding");
  if (te && contains_token_ci(*te, "chunked")) {
    while (true) {
      if (!read_until(fd, buf, kMaxBodyBytes,
                      [](const std::string& b) { return b.find("\r\n") != std::string::npos; })) {
        return std::nullopt;
      }
      auto eol = buf.find("\r\n");
      std::string_view size_text(buf.data(), eol);
      size_text = size_text.substr(0, size_text.find(';'));
      auto size = parse_size(trim(size_text), 16);
      if (!size || req.body.size() + *size > kMaxBodyBytes) return std::nullopt;
      buf.erase(0, eol + 2);
      if (*size == 0) {
        // Trailer fields, if any, up to the empty line: read and ignored.
        while (true) {
          if (!read_until(fd, buf, kMaxHeadBytes, [](const std::string& b) {
                return b.find("\r\n") != std::string::npos;
              })) {
            return std::nullopt;
          }
          const auto end = buf.find("\r\n");
          buf.erase(0, end + 2);
          if (end == 0) break;
        }
        break;
      }
      const std::size_t need = *size + 2;
      if (!read_until(fd, buf, kMaxBodyBytes,
                      [need](const std::string& b) { return b.size() >= need; })) {
        return std::nullopt;
      }
      req.body.append(buf, 0, *size);
      buf.erase(0, need);
    }
  } else if (auto cl = req.headers.get("Content-Length")) {
    auto size = parse_size(trim(*cl));
    if (!size || *size > kMaxBodyBytes) return std::nullopt;
    const std::size_t need = *size;
    if (!read_until(fd, buf, kMaxBodyBytes,
                    [need](const std::string& b) { return b.size() >= need; })) {
      return std::nullopt;
    }
    req.body.assign(buf, 0, need);
    buf.erase(0, need);
  }
  return req;
}

}  // namespace

UpstreamServer::UpstreamServer(bool ipv6) : ipv6_(ipv6) {
  listen_fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("UpstreamServer: socket failed");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (ipv6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_addr = in6addr_loopback;
    len = sizeof(sockaddr_in6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
  }
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listen_fd_, 512) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error(std::string("UpstreamServer: bind/listen failed: ") +
                             std::strerror(errno));
  }
  port_ = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

UpstreamServer::~UpstreamServer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    // shutdown() wakes a thread blocked in accept()/recv() on Linux; close() alone would not.
    ::shutdown(listen_fd_, SHUT_RDWR);
    for (auto& c : connections_) {
      if (c.fd >= 0) ::shutdown(c.fd, SHUT_RDWR);
    }
  }
  changed_.notify_all();
  acceptor_.join();
  ::close(listen_fd_);
  // The acceptor is gone, so the list no longer grows.
  for (auto& c : connections_) c.thread.join();
}

std::string UpstreamServer::url(std::string_view path) const {
  std::string host = ipv6_ ? "[::1]" : "127.0.0.1";
  return "http://" + host + ":" + std::to_string(port_) + std::string(path);
}

std::vector<ReceivedRequest> UpstreamServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::size_t UpstreamServer::request_count() const {
  std::lock_guard lock(mutex_);
  return requests_.size();
}

bool UpstreamServer::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

bool UpstreamServer::sleep_unless_stopped(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  return !changed_.wait_for(lock, d, [&] { return stopping_; });
}

void UpstreamServer::reap_finished() {
  std::list<Connection> finished;
  {
    std::lock_guard lock(mutex_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      auto next = std::next(it);
      if (it->done.load()) finished.splice(finished.end(), connections_, it);
      it = next;
    }
  }
  for (auto& c : finished) c.thread.join();
}

void UpstreamServer::accept_loop() {
  while (true) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down (EINVAL) or a real error: either way, stop accepting
    }
    accepted_.fetch_add(1);
    reap_finished();
    std::lock_guard lock(mutex_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    Connection& conn = connections_.emplace_back();
    conn.fd = fd;
    conn.thread = std::thread([this, c = &conn] { serve(c); });
  }
}

void UpstreamServer::serve(Connection* conn) {
  const int fd = conn->fd;
  std::string buf;
  bool reset = false;
  while (true) {
    auto req = read_request(fd, buf);
    if (!req) break;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(*req);
    }
    changed_.notify_all();

    if (req->target.rfind("/reset", 0) == 0) {
      reset = true;
      break;
    }
    auto conn_header = req->headers.get("Connection");
    bool keep_alive = req->version == "HTTP/1.1";
    if (conn_header && contains_token_ci(*conn_header, "close")) keep_alive = false;
    if (conn_header && contains_token_ci(*conn_header, "keep-alive")) keep_alive = true;
    bool close_after = !keep_alive;
    respond(fd, *req, keep_alive, &close_after);
    if (close_after) break;
  }
  std::lock_guard lock(mutex_);
  if (reset) {
    // SO_LINGER with a zero timeout turns close() into a RST (no FIN, pending data dropped).
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  ::close(fd);
  conn->fd = -1;
  conn->done.store(true);
}

void UpstreamServer::respond(int fd, const ReceivedRequest& req, bool keep_alive,
                             bool* close_after) {
  std::string_view path = req.target;
  path = path.substr(0, path.find('?'));
  int status = 200;
  std::string body = R"({"ok":true})";
  std::string content_type = "application/json";
  std::string extra;

  auto suffix = [&](std::string_view prefix) -> std::optional<std::string_view> {
    if (path.rfind(prefix, 0) != 0) return std::nullopt;
    return path.substr(prefix.size());
  };

  if (auto code = suffix("/status/")) {
    status = static_cast<int>(parse_size(*code).value_or(500));
  } else if (auto ms = suffix("/delay/")) {
    if (!sleep_unless_stopped(std::chrono::milliseconds(parse_size(*ms).value_or(0)))) {
      *close_after = true;
      return;
    }
  } else if (auto bytes = suffix("/big/")) {
    body.assign(parse_size(*bytes).value_or(0), 'x');
    content_type = "application/octet-stream";
  } else if (path == "/echo") {
    body = req.body;
    content_type =
        std::string(req.headers.get("Content-Type").value_or("application/octet-stream"));
  } else if (path == "/hang") {
    sleep_unless_stopped(std::chrono::hours(1));
    *close_after = true;
    return;
  } else if (path == "/chunked") {
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
        "Trailer: X-Trailer\r\nX-Upstream: test\r\n";
    head += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    if (req.method != "HEAD") head += "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    if (!write_all(fd, head)) *close_after = true;
    return;
  } else if (path == "/interim") {
    if (!write_all(fd, "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n")) {
      *close_after = true;
      return;
    }
  } else if (auto count = suffix("/headers/")) {
    const std::size_t n = parse_size(*count).value_or(0);
    for (std::size_t i = 0; i < n; ++i) {
      extra += "X-Fill-" + std::to_string(i) + ": " + std::string(100, 'f') + "\r\n";
    }
  } else if (path == "/hop") {
    extra =
        "Keep-Alive: timeout=5\r\nX-Private: secret\r\nProxy-Authenticate: Basic\r\n"
        "Upgrade: h2c\r\nTrailer: X-Nothing\r\n";
  }

  const bool no_body =
      req.method == "HEAD" || status == 204 || status == 304 || (status >= 100 && status < 200);
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " +
                    std::string(gateway::http1::reason_phrase(status)) + "\r\n";
  out += "Content-Type: " + content_type + "\r\n";
  if (status != 204 && status != 304) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += "X-Upstream: test\r\n";
  out += extra;
  if (path == "/hop") {
    out += "Connection: keep-alive, X-Private\r\n";
  } else {
    out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  }
  out += "\r\n";
  if (!no_body) out += body;
  if (!write_all(fd, out)) *close_after = true;
}

}  // namespace hookguard::testing
