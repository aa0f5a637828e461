#include "http/bounded_head_handler.h"

#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "http/parsed_request.h"

namespace hookguard::http {

using namespace Pistache::Http;
using Pistache::Tcp::Peer;

// Per connection; owned by the Peer, touched on its reactor thread only.
struct BoundedHeadHandler::ConnectionState {
  // The current request: bytes fed to the parser so far (the head cap counts them while the
  // head is incomplete), and the first of them (up to the head cap) when it spans reads, for
  // request_length.
  std::size_t fed = 0;
  std::string start;
  bool closing = false;  // nothing more is read on this connection
};

bool BoundedHeadHandler::close_after_answers(const std::shared_ptr<Peer>&, std::size_t) {
  return false;
}

void BoundedHeadHandler::onInput(const char* buffer, size_t len,
                                 const std::shared_ptr<Peer>& peer) {
  ConnectionState& state = connection_state(*peer);
  if (state.closing) return;
  auto parser = getParser(peer);
  auto& request = parser->request;
  auto restart = [&] {
    parser->reset();
    state.fed = 0;
    state.start.clear();
  };
  // A library error answer would overtake the answers still awaited: then the connection ends
  // after them instead.
  auto answer_error = [&](Code code, const std::string& reason) {
    const Version version = request.version();
    restart();
    if (close_after_answers(peer, 1)) {
      state.closing = true;
      return;
    }
    ResponseWriter response(version, transport(), this, peer);
    response.send(code, reason);
  };
  const std::string_view data(buffer, len);
  std::size_t pos = 0;
  while (pos < data.size()) {
    if (state.fed == 0) {
      // RFC 9112 §2.2: empty lines before a request line are ignored.
      while (data.substr(pos, 2) == "\r\n") pos += 2;
      if (pos >= data.size()) return;
    }
    const std::string_view rest = data.substr(pos);
    try {
      if (!parser->feed(rest.data(), rest.size())) {
        return answer_error(Code::Request_Entity_Too_Large, "Request exceeded maximum buffer size");
      }
      const std::size_t before = state.fed;
      state.fed += rest.size();
      if (parser->parse() != Private::State::Done) {
        if (head_over_cap(state, *parser)) {
          restart();
          state.closing = true;
          if (close_after_answers(peer, 1)) {
            on_oversized_head();
          } else {
            refuse(peer);
          }
          return;
        }
        if (state.start.size() < max_head_bytes_) {
          state.start.append(rest.substr(0, max_head_bytes_ - state.start.size()));
        }
        return;
      }
      // Where the next request starts: after this one, or nowhere known (the rest is dropped).
      std::optional<std::size_t> length;
      if (before == 0) {
        length = request_length(rest, state.fed, body_framing(request));
      } else {
        if (state.start.size() == before) state.start.append(rest);
        length = request_length(state.start, state.fed, body_framing(request));
      }
      // It ends inside this read (the parser was not done before it).
      const bool known = length && *length > before && *length <= state.fed;
      const std::size_t next = known ? pos + (*length - before) : data.size();

      if (close_after_answers(peer, kMaxUnanswered)) {
        restart();
        state.closing = true;
        return;
      }
      ResponseWriter response(request.version(), transport(), this, peer);
      request.copyAddress(peer->address());
      const auto connection = request.headers().tryGet<Header::Connection>();
      response.headers().add<Header::Connection>(connection ? connection->control()
                                                            : ConnectionControl::Close);
      const bool closes = closes_after(request);
      peer->setIdle(false);
      onRequest(request, std::move(response));
      restart();
      if (closes) {
        state.closing = true;
        return;
      }
      pos = next;
    } catch (const HttpError& err) {
      return answer_error(static_cast<Code>(err.code()), err.reason());
    } catch (const std::exception&) {
      return answer_error(Code::Internal_Server_Error, "Internal Server Error");
    }
  }
}

BoundedHeadHandler::ConnectionState& BoundedHeadHandler::connection_state(Peer& peer) {
  static const std::string kKey = "hookguard.connection";
  auto state = std::static_pointer_cast<ConnectionState>(peer.tryGetData(kKey));
  if (!state) {
    state = std::make_shared<ConnectionState>();
    peer.putData(kKey, state);
  }
  return *state;  // owned by the peer, which outlives this call
}

bool BoundedHeadHandler::head_over_cap(const ConnectionState& state, RequestParser& parser) const {
  return parser.step()->id() != Private::BodyStep::Id && state.fed > max_head_bytes_;
}

// The answer goes through Pistache's write queue, behind any answer of this connection still
// queued there (a library 413 whose body's rest was read as this head, for one), and the
// connection ends once it is written.
void BoundedHeadHandler::refuse(const std::shared_ptr<Peer>& peer) {
  on_oversized_head();
  static constexpr std::string_view kBody =
      "{\"error\":\"headers_too_large\",\"message\":\"the request line and header fields are "
      "too large\"}";
  const std::string answer =
      "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\n"
      "Connection: close\r\nContent-Length: " +
      std::to_string(kBody.size()) + "\r\n\r\n" + std::string(kBody);
  const std::weak_ptr<Peer> weak = peer;
  const auto end = [weak] {
    if (auto p = weak.lock()) ::shutdown(p->fd(), SHUT_RDWR);
  };
  peer->send(Pistache::RawBuffer(answer, answer.size()))
      .then([end](ssize_t) { end(); }, [end](std::exception_ptr&) { end(); });
}

}  // namespace hookguard::http
