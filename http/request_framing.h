// Where one HTTP/1.1 request ends among the bytes a connection sent, so that what follows it (a
// pipelined request) can be parsed next: Pistache 0.0.5's parser reads one request and keeps no
// public record of how many bytes it used.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace hookguard::http {

/// How a request's body is framed, from its parsed header fields (http/parsed_request.h).
struct BodyFraming {
  bool chunked = false;
  std::size_t content_length = 0;  // when not chunked
};

/// The length of the request that starts `wire`: its head through the empty line, then
/// `content_length` bytes, or a chunked body through its last chunk and trailer section.
/// `total` is how many bytes of the request's connection were read from its start (at least
/// `wire.size()`, of which `wire` is the beginning): a Content-Length request needs only its head
/// in `wire`, a chunked one all of its bytes. nullopt when the bytes read do not hold the whole
/// request, or its chunk framing is not one this count reads (RFC 9112 §7.1 without extensions):
/// then what follows it cannot be told apart.
std::optional<std::size_t> request_length(std::string_view wire, std::size_t total,
                                          BodyFraming framing);

}  // namespace hookguard::http
