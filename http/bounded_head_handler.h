// A Pistache request handler that caps the request line and header block while they arrive, and
// answers pipelined requests one after another.
#pragma once

#include <pistache/http.h>
#include <pistache/peer.h>

#include <cstddef>
#include <memory>

namespace hookguard::http {

/// Pistache 0.0.5 parses an incomplete request line and header block again from their start on
/// every read (pistache #1190), and only maxRequestSize, which must also hold the largest body,
/// bounds them: a 4 MB header line sent in 0.3 s cost a reactor 7 s of CPU. A handler derived
/// from this one refuses a request whose head is still incomplete after `max_head_bytes`: a
/// JSON 431 with "Connection: close", then the connection ends.
///
/// Pistache parses one request per read and drops whatever else the read held, so a second
/// request sent before the first was answered (HTTP/1.1 pipelining) got neither an answer nor a
/// log row. Here the bytes after a request (http::request_length) are parsed as the next one at
/// once; a handler that answers later, from other threads, keeps the answers in the order of the
/// requests (close_after_answers()). A connection with kMaxUnanswered requests
/// awaiting answers takes no more: it ends after those answers. After a request that closes
/// the connection, nothing more is read.
///
/// Pistache's Http::Handler::onInput is private (a subclass can replace it, not call it), so
/// onInput is that function of Pistache 0.0.5 (src/common/http.cc) restated with public calls,
/// plus the above, except that a 500 does not echo the exception's text.
class BoundedHeadHandler : public Pistache::Http::Handler {
 public:
  explicit BoundedHeadHandler(std::size_t max_head_bytes) : max_head_bytes_(max_head_bytes) {}

 protected:
  /// Runs on the reactor thread for each refused request, before the answer is written.
  virtual void on_oversized_head() {}

  /// When at least `at_least` (>= 1) requests of this connection await answers not yet handed
  /// over for writing, ends the connection once they have them and returns true; otherwise
  /// does nothing and returns false. On the reactor thread. Used instead of a library error
  /// answer, which would overtake awaited answers (at_least 1), and to take no more from a
  /// client kMaxUnanswered requests ahead. Count and decision are one call, so that an answer
  /// written in between cannot leave the connection open with nothing more read from it. The
  /// default suits a handler that answers inside onRequest(): false.
  virtual bool close_after_answers(const std::shared_ptr<Pistache::Tcp::Peer>& peer,
                                   std::size_t at_least);

  /// Pipelined requests a connection may have awaiting answers at once.
  static constexpr std::size_t kMaxUnanswered = 32;

 private:
  struct ConnectionState;
  static ConnectionState& connection_state(Pistache::Tcp::Peer& peer);

  void onInput(const char* buffer, size_t len,
               const std::shared_ptr<Pistache::Tcp::Peer>& peer) override;

  bool head_over_cap(const ConnectionState& state, Pistache::Http::RequestParser& parser) const;
  void refuse(const std::shared_ptr<Pistache::Tcp::Peer>& peer);

  std::size_t max_head_bytes_;
};

}  // namespace hookguard::http
