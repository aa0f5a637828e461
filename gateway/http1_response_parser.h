// An incremental, strict and bounded HTTP/1.x response parser: no I/O, fed whatever bytes arrive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/headers.h"

namespace hookguard::gateway::http1 {

constexpr std::size_t kMaxResponseHeaderBytes = 64 * 1024;  // all header blocks and trailers
constexpr int kMaxResponseHeaderFields = 100;               // fields of the final header block
constexpr std::size_t kMaxChunkSizeLine = 1024;             // "1a2b;ext=..." line

/// RFC 9110 §7.6.1 hop-by-hop fields, plus Proxy-* (Proxy-Authorization, Proxy-Connection).
bool is_hop_by_hop(std::string_view name);

/// Strips leading and trailing SP/HTAB.
std::string_view trim_ows(std::string_view s);

class ResponseParser {
 public:
  enum class State { kNeedMore, kDone, kError };
  enum class Error {
    kNone,
    kHeadersTooLarge,
    kMalformedHeader,  // status line, field line, framing fields
    kMalformedBody,    // chunked framing
    kBodyTooLarge,
    kIncomplete,  // the connection closed before the response ended
  };

  /// Prepares for the response to one request. `head_request`: the response has no body.
  void reset(bool head_request, std::int64_t max_body_bytes);

  /// Consumes bytes up to the end of the response; returns how many were used. Bytes after the
  /// end are left unconsumed (the caller must not reuse a connection that sent them).
  std::size_t feed(std::string_view data);
  /// The peer closed the connection: ends a body delimited by the close, fails anything else.
  void feed_eof();

  State state() const { return state_; }
  Error error() const { return error_; }
  /// A fixed description of error() for logs.
  const char* error_message() const;
  bool started() const { return started_; }  // any byte seen

  int status() const { return status_; }
  /// The final response's fields, hop-by-hop fields, those named in Connection and
  /// Content-Length removed (valid once done).
  policy::HeaderList& headers() { return headers_; }
  std::string& body() { return body_; }
  /// True when the connection can carry another request after this response.
  bool keep_alive() const { return keep_alive_; }

 private:
  enum class Phase {
    kStatusLine,
    kHeaders,
    kFixedBody,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kBodyUntilClose,
    kDone,
  };

  // Appends to line_ up to the next LF. False when the line would exceed `limit` bytes.
  bool take_line(std::string_view data, std::size_t limit, std::size_t& used, bool& complete);
  std::size_t feed_line(std::string_view data);
  std::size_t feed_body(std::string_view data);
  bool on_status_line(std::string_view line);
  bool on_header_line(std::string_view line);
  bool on_header_block_end();
  bool on_trailer_line(std::string_view line);
  bool on_content_length(std::string_view value);
  bool on_chunk_size_line(std::string_view line);
  bool append_body(std::string_view bytes);
  bool start_body();
  void fail(Error e);
  void done();

  State state_ = State::kNeedMore;
  Error error_ = Error::kNone;
  Phase phase_ = Phase::kStatusLine;
  bool head_request_ = false;
  bool started_ = false;
  std::int64_t max_body_ = 0;

  std::string line_;
  std::size_t header_bytes_ = 0;
  int header_fields_ = 0;

  int status_ = 0;
  bool http10_ = false;
  bool keep_alive_ = true;
  bool chunked_ = false;
  bool transfer_encoding_ = false;
  std::int64_t content_length_ = -1;
  std::int64_t remaining_ = 0;  // of the fixed body or the current chunk
  std::vector<std::string> connection_tokens_;
  policy::HeaderList headers_;
  std::string body_;
};

}  // namespace hookguard::gateway::http1
