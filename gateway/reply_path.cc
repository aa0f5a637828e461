#include "gateway/reply_path.h"

#include <fcntl.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <string>

#include "gateway/http1_response_writer.h"
#include "gateway/metrics.h"

namespace hookguard::gateway {

using namespace Pistache;

// Pistache 0.0.5 queues every response for its reactor (Transport::asyncWrite), whatever the
// calling thread: an eventfd write, a wake-up, three epoll_ctl and one more epoll_wait round
// per response, about half the system calls of a forwarded request. Its own descriptor cannot
// be written from another thread (the reactor closes it when the peer goes, and the number is
// reused), so each connection gets a duplicate, owned with the Peer: any thread writes the
// answer with one send(). What does not fit in the socket buffer goes to Pistache's queue, and
// so does every answer after it until the queue has sent it, which keeps answers in order.
class ReplySocket : public std::enable_shared_from_this<ReplySocket> {
 public:
  /// The connection's reply socket, made on first use; on the reactor thread only (it touches
  /// the Peer's data map). Null when the peer cannot take direct writes.
  static std::shared_ptr<ReplySocket> of(Tcp::Peer& peer, Metrics* metrics) {
    static const std::string kKey = "hookguard.reply";
    if (auto existing = peer.tryGetData(kKey)) {
      return std::static_pointer_cast<ReplySocket>(existing);
    }
    if (peer.ssl() != nullptr) return nullptr;  // TLS records are Pistache's to write
    const int fd = ::fcntl(peer.fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return nullptr;  // out of descriptors: Pistache's queue still works
    auto socket = std::shared_ptr<ReplySocket>(new ReplySocket(fd, metrics));
    peer.putData(kKey, socket);
    return socket;
  }

  ~ReplySocket() { ::close(fd_); }
  ReplySocket(const ReplySocket&) = delete;
  ReplySocket& operator=(const ReplySocket&) = delete;

  /// Sends `wire` (a whole response) from any thread; `close`: end the connection after it.
  void send(Tcp::Peer& peer, const std::string& wire, bool close) {
    std::lock_guard<std::mutex> lock(mu_);  // one answer at a time decides direct or queued
    std::size_t sent = 0;
    if (queued_.load(std::memory_order_acquire) == 0) {
      const ssize_t n = ::send(fd_, wire.data(), wire.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n == static_cast<ssize_t>(wire.size())) {
        if (metrics_) metrics_->count_direct_reply();
        if (close) ::shutdown(fd_, SHUT_WR);
        return;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return;  // the peer is gone
      sent = n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    // The rest waits in Pistache's queue, and so does every answer after it until it is sent.
    queued_.fetch_add(1, std::memory_order_acq_rel);
    if (metrics_) metrics_->count_queued_reply();
    auto done = [self = shared_from_this(), close] {
      if (close) ::shutdown(self->fd_, SHUT_WR);
      self->queued_.fetch_sub(1, std::memory_order_acq_rel);
    };
    peer.send(RawBuffer(wire.substr(sent), wire.size() - sent))
        .then([done](ssize_t) { done(); }, [done](std::exception_ptr&) { done(); });
  }

 private:
  ReplySocket(int fd, Metrics* metrics) : fd_(fd), metrics_(metrics) {}

  const int fd_;
  Metrics* const metrics_;
  std::mutex mu_;
  std::atomic<int> queued_{0};  // answers in Pistache's queue, not yet sent
};

ReplyPath ReplyPath::of(const Http::Request& request, Http::ResponseWriter& response,
                        Metrics* metrics) {
  ReplyPath path;
  auto& f = path.framing_;
  f.http10 = request.version() == Http::Version::Http10;
  f.head = request.method() == Http::Method::Head;
  const auto conn = request.headers().tryGet<Http::Header::Connection>();
  f.close = conn ? conn->control() == Http::ConnectionControl::Close ||
                       (f.http10 && conn->control() != Http::ConnectionControl::KeepAlive)
                 : f.http10;
  try {
    auto peer = response.peer();  // throws when the connection is already gone
    path.socket_ = ReplySocket::of(*peer, metrics);
    path.peer_ = peer;
  } catch (const std::exception&) {
  }
  return path;
}

void ReplyPath::send(int status, const policy::HeaderList& headers, std::string_view body) const {
  auto peer = peer_.lock();
  if (!peer) return;    // the client left
  peer->setIdle(true);  // starts the keep-alive timer, as ResponseWriter::send does
  const std::string wire = http1::write_response(framing_, status, headers, body);
  if (socket_) {
    socket_->send(*peer, wire, framing_.close);
  } else {
    peer->send(RawBuffer(wire, wire.size()));
  }
}

}  // namespace hookguard::gateway
