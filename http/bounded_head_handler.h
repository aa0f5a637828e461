// A Pistache request handler that caps the request line and header block while they arrive.
#pragma once

#include <pistache/http.h>
#include <pistache/peer.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace hookguard::http {

/// Pistache 0.0.5 parses an incomplete request line and header block again from their start on
/// every read (pistache #1190), and only maxRequestSize, which must also hold the largest body,
/// bounds them: a 4 MB header line sent in 0.3 s cost a reactor 7 s of CPU. A handler derived
/// from this one refuses a request whose head is still incomplete after `max_head_bytes`: a
/// JSON 431 with "Connection: close", then the connection ends.
///
/// Pistache's Http::Handler::onInput is private (a subclass can replace it, not call it), so
/// onInput below is that function of Pistache 0.0.5 (src/common/http.cc) restated with public
/// calls, plus the cap, except that a 500 does not echo the exception's text.
class BoundedHeadHandler : public Pistache::Http::Handler {
 public:
  explicit BoundedHeadHandler(std::size_t max_head_bytes) : max_head_bytes_(max_head_bytes) {}

 protected:
  /// Runs on the reactor thread for each refused request, before the answer is written.
  virtual void on_oversized_head() {}

 private:
  // Per connection: bytes read for the current request while its head was incomplete (the
  // parser's reset time tells one request from the next), and whether the connection is
  // closing after a refusal, when the rest of its input is not read.
  struct HeadState {
    std::chrono::steady_clock::time_point request{};
    std::size_t bytes = 0;
    bool closing = false;
  };

  void onInput(const char* buffer, size_t len,
               const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    using namespace Pistache::Http;
    HeadState& state = head_state(*peer);
    if (state.closing) return;
    auto parser = getParser(peer);
    auto& request = parser->request;
    try {
      if (!parser->feed(buffer, len)) {
        parser->reset();
        throw HttpError(Code::Request_Entity_Too_Large, "Request exceeded maximum buffer size");
      }
      if (parser->parse() != Private::State::Done) {
        if (head_over_cap(state, *parser, len)) {
          parser->reset();
          state.closing = true;
          refuse(peer);
        }
        return;
      }
      ResponseWriter response(request.version(), transport(), this, peer);
      request.copyAddress(peer->address());
      const auto connection = request.headers().tryGet<Header::Connection>();
      response.headers().add<Header::Connection>(connection ? connection->control()
                                                            : ConnectionControl::Close);
      peer->setIdle(false);
      onRequest(request, std::move(response));
      parser->reset();
    } catch (const HttpError& err) {
      ResponseWriter response(request.version(), transport(), this, peer);
      response.send(static_cast<Code>(err.code()), err.reason());
      parser->reset();
    } catch (const std::exception&) {
      ResponseWriter response(request.version(), transport(), this, peer);
      response.send(Code::Internal_Server_Error, "Internal Server Error");
      parser->reset();
    }
  }

  static HeadState& head_state(Pistache::Tcp::Peer& peer) {
    static const std::string kKey = "hookguard.head";
    auto state = std::static_pointer_cast<HeadState>(peer.tryGetData(kKey));
    if (!state) {
      state = std::make_shared<HeadState>();
      peer.putData(kKey, state);
    }
    return *state;  // owned by the peer, which outlives this call
  }

  bool head_over_cap(HeadState& state, Pistache::Http::RequestParser& parser,
                     std::size_t len) const {
    if (parser.step()->id() == Pistache::Http::Private::BodyStep::Id) return false;
    if (state.request != parser.time()) {
      state.request = parser.time();
      state.bytes = 0;
    }
    state.bytes += len;
    return state.bytes > max_head_bytes_;
  }

  // The answer goes through Pistache's write queue, behind any answer of this connection still
  // queued there (a library 413 whose body's rest was read as this head, for one), and the
  // connection ends once it is written.
  void refuse(const std::shared_ptr<Pistache::Tcp::Peer>& peer) {
    on_oversized_head();
    static constexpr std::string_view kBody =
        "{\"error\":\"headers_too_large\",\"message\":\"the request line and header fields are "
        "too large\"}";
    const std::string answer =
        "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nContent-Length: " +
        std::to_string(kBody.size()) + "\r\n\r\n" + std::string(kBody);
    const std::weak_ptr<Pistache::Tcp::Peer> weak = peer;
    const auto end = [weak] {
      if (auto p = weak.lock()) ::shutdown(p->fd(), SHUT_RDWR);
    };
    peer->send(Pistache::RawBuffer(answer, answer.size()))
        .then([end](ssize_t) { end(); }, [end](std::exception_ptr&) { end(); });
  }

  std::size_t max_head_bytes_;
};

}  // namespace hookguard::http
