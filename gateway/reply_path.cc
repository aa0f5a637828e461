#include "gateway/reply_path.h"

#include <fcntl.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "gateway/http1_response_writer.h"
#include "gateway/metrics.h"
#include "http/parsed_request.h"

namespace hookguard::gateway {

using namespace Pistache;

// Pistache 0.0.5 queues every response for its reactor (Transport::asyncWrite), whatever the
// calling thread: an eventfd write, a wake-up, three epoll_ctl and one more epoll_wait round
// per response, about half the system calls of a forwarded request. Its own descriptor cannot
// be written from another thread (the reactor closes it when the peer goes, and the number is
// reused), so each connection gets a duplicate, owned with the Peer: any thread writes the
// answer with one send(). What does not fit in the socket buffer goes to Pistache's queue, and
// so does every answer after it until the queue has sent it, which keeps answers in order.
//
// Pipelined requests of one connection are answered from different threads in any order: each
// request gets its place when it is parsed, and an answer that comes before those of earlier
// places waits here until they have been written.
class ReplySocket : public std::enable_shared_from_this<ReplySocket> {
 public:
  /// The connection's reply socket, made on first use; on the reactor thread only (it touches
  /// the Peer's data map). Never null: when the peer cannot take direct writes (TLS, or no
  /// descriptor left to duplicate), every answer goes through Pistache's queue.
  static std::shared_ptr<ReplySocket> of(Tcp::Peer& peer, Metrics* metrics) {
    static const std::string kKey = "hookguard.reply";
    if (auto existing = peer.tryGetData(kKey)) {
      return std::static_pointer_cast<ReplySocket>(existing);
    }
    // TLS records are Pistache's to write.
    const int fd = peer.ssl() != nullptr ? -1 : ::fcntl(peer.fd(), F_DUPFD_CLOEXEC, 0);
    auto socket = std::shared_ptr<ReplySocket>(new ReplySocket(fd, metrics));
    peer.putData(kKey, socket);
    return socket;
  }

  ~ReplySocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  ReplySocket(const ReplySocket&) = delete;
  ReplySocket& operator=(const ReplySocket&) = delete;

  /// The place of the answer to the request just parsed; on the reactor thread. The peer is
  /// busy until every place has its answer.
  std::uint64_t next_place(Tcp::Peer& peer) {
    std::lock_guard<std::mutex> lock(mu_);
    peer.setIdle(false);
    return issued_++;
  }

  /// The connection ends after the answer of the last place given so far, when at least
  /// `at_least` (>= 1) places have answers not yet written (true); false otherwise.
  bool close_after_answers(std::size_t at_least) {
    std::lock_guard<std::mutex> lock(mu_);
    if (issued_ - written_ < std::max<std::uint64_t>(at_least, 1)) return false;
    close_after_ = issued_ - 1;
    return true;
  }

  /// Sends `wire` (a whole response) from any thread, once every earlier place has had its
  /// answer sent; `close`: end the connection after it.
  void send(Tcp::Peer& peer, std::uint64_t place, std::string wire, bool close) {
    std::lock_guard<std::mutex> lock(mu_);
    if (place != written_) {
      early_.emplace(place, Answer{std::move(wire), close});
      return;
    }
    write(peer, wire, close);
    for (auto next = early_.find(written_); next != early_.end(); next = early_.find(written_)) {
      const Answer answer = std::move(next->second);
      early_.erase(next);
      write(peer, answer.wire, answer.close);
    }
    // Starts the keep-alive timer, as ResponseWriter::send does, once no request of the
    // connection awaits an answer: an idle peer is closed at keepalive_timeout_ms.
    if (written_ == issued_) peer.setIdle(true);
  }

 private:
  struct Answer {
    std::string wire;
    bool close = false;
  };

  ReplySocket(int fd, Metrics* metrics) : fd_(fd), metrics_(metrics) {}

  // The answer of place written_, directly or through Pistache's queue; under mu_.
  void write(Tcp::Peer& peer, const std::string& wire, bool close) {
    close = close || close_after_ == written_;
    ++written_;
    std::size_t sent = 0;
    if (fd_ >= 0 && queued_.load(std::memory_order_acquire) == 0) {
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
    // The completion may run on this thread, inside this call, so it takes no lock.
    queued_.fetch_add(1, std::memory_order_acq_rel);
    if (metrics_) metrics_->count_queued_reply();
    auto done = [self = shared_from_this(), close] {
      if (close && self->fd_ >= 0) ::shutdown(self->fd_, SHUT_WR);
      self->queued_.fetch_sub(1, std::memory_order_acq_rel);
    };
    peer.send(RawBuffer(wire.substr(sent), wire.size() - sent))
        .then([done](ssize_t) { done(); }, [done](std::exception_ptr&) { done(); });
  }

  const int fd_;  // -1: every answer through Pistache's queue
  Metrics* const metrics_;
  std::mutex mu_;
  std::atomic<int> queued_{0};  // answers in Pistache's queue, not yet sent
  // Guarded by mu_: places given to requests, answers written (or queued) so far, answers that
  // came before their turn, and the place after whose answer the connection ends.
  std::uint64_t issued_ = 0;
  std::uint64_t written_ = 0;
  std::map<std::uint64_t, Answer> early_;
  std::optional<std::uint64_t> close_after_;
};

ReplyPath ReplyPath::of(const Http::Request& request, Http::ResponseWriter& response,
                        Metrics* metrics) {
  ReplyPath path;
  auto& f = path.framing_;
  f.http10 = request.version() == Http::Version::Http10;
  f.head = request.method() == Http::Method::Head;
  f.close = http::closes_after(request);
  try {
    auto peer = response.peer();  // throws when the connection is already gone
    path.socket_ = ReplySocket::of(*peer, metrics);
    path.place_ = path.socket_->next_place(*peer);
    path.peer_ = peer;
  } catch (const std::exception&) {
  }
  return path;
}

bool ReplyPath::close_after_answers(Tcp::Peer& peer, std::size_t at_least, Metrics* metrics) {
  return ReplySocket::of(peer, metrics)->close_after_answers(at_least);
}

void ReplyPath::send(int status, const policy::HeaderList& headers, std::string_view body) const {
  auto peer = peer_.lock();
  if (!peer) return;  // the client left
  socket_->send(*peer, place_, http1::write_response(framing_, status, headers, body),
                framing_.close);
}

}  // namespace hookguard::gateway
