#include "http/request_framing.h"

namespace hookguard::http {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::size_t kNone = std::string_view::npos;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The end of a chunked body that starts at `at`: chunks ("<hex size>" CRLF data CRLF), the last
// chunk ("0" CRLF), then trailer field lines up to an empty line.
std::optional<std::size_t> chunked_body_end(std::string_view wire, std::size_t at) {
  for (;;) {
    const std::size_t size_end = wire.find(kCrlf, at);
    if (size_end == kNone || size_end == at || size_end - at > 15) return std::nullopt;
    std::size_t size = 0;
    for (const char c : wire.substr(at, size_end - at)) {
      const int digit = hex_value(c);
      if (digit < 0) return std::nullopt;  // extensions, signs, spaces: not counted
      size = size * 16 + static_cast<std::size_t>(digit);
    }
    at = size_end + kCrlf.size();
    if (size == 0) break;
    if (wire.size() - at < size + kCrlf.size() || wire.substr(at + size, 2) != kCrlf) {
      return std::nullopt;
    }
    at += size + kCrlf.size();
  }
  for (;;) {
    const std::size_t line_end = wire.find(kCrlf, at);
    if (line_end == kNone) return std::nullopt;
    if (line_end == at) return line_end + kCrlf.size();
    at = line_end + kCrlf.size();
  }
}

}  // namespace

std::optional<std::size_t> request_length(std::string_view wire, std::size_t total,
                                          BodyFraming framing) {
  const std::size_t head_end = wire.find("\r\n\r\n");
  if (head_end == kNone || total < wire.size()) return std::nullopt;
  const std::size_t body = head_end + 4;
  if (framing.chunked) {
    if (total != wire.size()) return std::nullopt;
    return chunked_body_end(wire, body);
  }
  if (total - body < framing.content_length) return std::nullopt;
  return body + framing.content_length;
}

}  // namespace hookguard::http
