// How an answer reaches the client of a Pistache connection: written straight to the socket
// from whichever thread has it, falling back to Pistache's write queue only when the socket
// buffer is full; after the answers of the connection's earlier (pipelined) requests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "gateway/http1_response_writer.h"
#include "policy/headers.h"

namespace Pistache::Http {
class Request;
class ResponseWriter;
}  // namespace Pistache::Http
namespace Pistache::Tcp {
class Peer;
}  // namespace Pistache::Tcp

namespace hookguard::gateway {

class Metrics;
class ReplySocket;

/// The way back to the client of one request. Made on the reactor thread in onRequest; copied
/// into the completion; send() from any thread, once.
class ReplyPath {
 public:
  /// `metrics` may be null. Never throws: a connection that is already gone yields a path
  /// whose send() does nothing.
  static ReplyPath of(const Pistache::Http::Request& request,
                      Pistache::Http::ResponseWriter& response, Metrics* metrics);

  /// When at least `at_least` (>= 1) requests of `peer`'s connection have answers not yet
  /// written (or queued), ends the connection after the answer of its last request so far and
  /// returns true; otherwise does nothing and returns false. On the reactor thread.
  static bool close_after_answers(Pistache::Tcp::Peer& peer, std::size_t at_least,
                                  Metrics* metrics);

  /// Writes one whole HTTP/1.x response (http1::write_response): "Connection: close" and the
  /// end of the connection after it when the request asked for that (or was HTTP/1.0 without
  /// keep-alive); no body after HEAD. Does nothing when the client has left. Waits for the
  /// answers of the connection's earlier requests when they are not out yet.
  void send(int status, const policy::HeaderList& headers, std::string_view body) const;

 private:
  std::weak_ptr<Pistache::Tcp::Peer> peer_;
  std::shared_ptr<ReplySocket> socket_;  // set with peer_
  std::uint64_t place_ = 0;              // of this answer among the connection's
  http1::Framing framing_;
};

}  // namespace hookguard::gateway
