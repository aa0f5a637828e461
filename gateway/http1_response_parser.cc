#include "gateway/http1_response_parser.h"

#include <algorithm>
#include <array>
#include <limits>

namespace hookguard::gateway::http1 {
namespace {

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         policy::header_name_equals(s.substr(0, prefix.size()), prefix);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A line without its LF and the CR before it (RFC 9112 §2.2 lets a recipient accept bare LF).
std::string_view strip_eol(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// Calls `f` with every non-empty, trimmed element of a comma-separated list.
template <typename F>
void for_each_list_element(std::string_view list, F&& f) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto element = trim_ows(list.substr(0, comma));
    if (!element.empty()) f(element);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
}

// Up to 18 digits always fit an int64 and are far beyond any body limit.
constexpr std::size_t kMaxContentLengthDigits = 18;
// 15 hex digits fit an int64 likewise.
constexpr std::size_t kMaxChunkSizeDigits = 15;

}  // namespace

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::array<std::string_view, 6> kNames{
      "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade"};
  for (auto n : kNames) {
    if (policy::header_name_equals(name, n)) return true;
  }
  return starts_with_ci(name, "Proxy-");
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void ResponseParser::reset(bool head_request, std::int64_t max_body_bytes) {
  *this = ResponseParser{};
  head_request_ = head_request;
  max_body_ = std::max<std::int64_t>(0, max_body_bytes);
}

const char* ResponseParser::error_message() const {
  switch (error_) {
    case Error::kNone:
      return "";
    case Error::kHeadersTooLarge:
      return "upstream headers too large";
    case Error::kMalformedHeader:
      return "malformed upstream header";
    case Error::kMalformedBody:
      return "malformed upstream chunked body";
    case Error::kBodyTooLarge:
      return "upstream body too large";
    case Error::kIncomplete:
      return "upstream closed the connection before the response ended";
  }
  return "";
}

std::size_t ResponseParser::feed(std::string_view data) {
  if (!data.empty()) started_ = true;
  std::size_t pos = 0;
  while (state_ == State::kNeedMore && pos < data.size()) {
    const auto rest = data.substr(pos);
    switch (phase_) {
      case Phase::kFixedBody:
      case Phase::kChunkData:
      case Phase::kBodyUntilClose:
        pos += feed_body(rest);
        break;
      default:
        pos += feed_line(rest);
        break;
    }
  }
  return pos;
}

void ResponseParser::feed_eof() {
  if (state_ != State::kNeedMore) return;
  if (phase_ == Phase::kBodyUntilClose) {
    done();
  } else {
    fail(Error::kIncomplete);
  }
}

bool ResponseParser::take_line(std::string_view data, std::size_t limit, std::size_t& used,
                               bool& complete) {
  const auto lf = data.find('\n');
  complete = lf != std::string_view::npos;
  used = complete ? lf + 1 : data.size();
  // Checked before copying: a peer never makes us buffer more than the limit.
  if (line_.size() + used > limit) return false;
  line_.append(data.substr(0, used));
  return true;
}

// Status line, header, chunk-size, chunk-end and trailer lines.
std::size_t ResponseParser::feed_line(std::string_view data) {
  const bool header_phase =
      phase_ == Phase::kStatusLine || phase_ == Phase::kHeaders || phase_ == Phase::kTrailers;
  std::size_t limit = kMaxChunkSizeLine;
  if (header_phase) limit = kMaxResponseHeaderBytes - header_bytes_ + line_.size();
  if (phase_ == Phase::kChunkDataEnd) limit = 2;  // CRLF

  std::size_t used = 0;
  bool complete = false;
  if (!take_line(data, limit, used, complete)) {
    fail(header_phase ? Error::kHeadersTooLarge : Error::kMalformedBody);
    return 0;
  }
  if (header_phase) header_bytes_ += used;
  if (!complete) return used;

  const std::string line = std::move(line_);
  line_.clear();
  const std::string_view text = strip_eol(line);
  bool ok = true;
  switch (phase_) {
    case Phase::kStatusLine:
      ok = on_status_line(text);
      break;
    case Phase::kHeaders:
      ok = on_header_line(text);
      break;
    case Phase::kTrailers:
      ok = on_trailer_line(text);
      break;
    case Phase::kChunkSize:
      ok = on_chunk_size_line(text);
      break;
    case Phase::kChunkDataEnd:
      ok = text.empty();
      phase_ = Phase::kChunkSize;
      break;
    default:
      break;
  }
  if (!ok && state_ == State::kNeedMore) {
    fail(header_phase ? Error::kMalformedHeader : Error::kMalformedBody);
  }
  return used;
}

std::size_t ResponseParser::feed_body(std::string_view data) {
  std::size_t n = data.size();
  if (phase_ != Phase::kBodyUntilClose) {
    n = static_cast<std::size_t>(std::min<std::int64_t>(remaining_, static_cast<std::int64_t>(n)));
  }
  if (!append_body(data.substr(0, n))) return n;
  if (phase_ == Phase::kBodyUntilClose) return n;
  remaining_ -= static_cast<std::int64_t>(n);
  if (remaining_ == 0) {
    if (phase_ == Phase::kFixedBody) {
      done();
    } else {
      phase_ = Phase::kChunkDataEnd;
    }
  }
  return n;
}

// "HTTP/1.x SSS reason" (RFC 9112 §4); the reason phrase may be empty or absent.
bool ResponseParser::on_status_line(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || !is_digit(line[7]) || line[8] != ' ' ||
      !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11])) {
    return false;
  }
  if (line.size() > 12 && (line[12] != ' ' || !policy::is_valid_header_value(line.substr(13)))) {
    return false;
  }
  status_ = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (status_ < 100 || status_ > 599) return false;
  http10_ = line[7] == '0';
  // HTTP/1.0 keep-alive is an opt-in extension we do not rely on: one request per connection.
  keep_alive_ = !http10_;
  headers_ = policy::HeaderList{};
  connection_tokens_.clear();
  header_fields_ = 0;
  content_length_ = -1;
  chunked_ = false;
  transfer_encoding_ = false;
  phase_ = Phase::kHeaders;
  return true;
}

bool ResponseParser::on_header_line(std::string_view line) {
  if (line.empty()) return on_header_block_end();
  // obs-fold (RFC 9112 §5.2): rejecting it keeps folded text from being smuggled past the
  // value checks.
  if (line.front() == ' ' || line.front() == '\t') return false;
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view name = line.substr(0, colon);
  const std::string_view value = trim_ows(line.substr(colon + 1));
  if (!policy::is_token(name) || policy::has_line_break_or_nul(value)) return false;
  if (++header_fields_ > kMaxResponseHeaderFields) {
    fail(Error::kHeadersTooLarge);
    return false;
  }

  if (policy::header_name_equals(name, "Connection")) {
    // RFC 9110 §7.6.1: fields named in Connection are hop-by-hop too.
    for_each_list_element(value, [&](std::string_view token) {
      if (policy::header_name_equals(token, "close")) keep_alive_ = false;
      connection_tokens_.emplace_back(token);
    });
  } else if (policy::header_name_equals(name, "Content-Length")) {
    if (!on_content_length(value)) return false;
  } else if (policy::header_name_equals(name, "Transfer-Encoding")) {
    // Only a single "chunked" coding is decodable; anything else cannot be framed safely.
    if (transfer_encoding_ || !policy::header_name_equals(value, "chunked")) return false;
    transfer_encoding_ = true;
    chunked_ = true;
  }
  if (is_hop_by_hop(name) || policy::header_name_equals(name, "Content-Length")) return true;
  headers_.add(std::string(name), std::string(value));
  return true;
}

// Content-Length may repeat (as fields or a list) only with one value (RFC 9112 §6.3 item 5).
bool ResponseParser::on_content_length(std::string_view value) {
  bool ok = !value.empty();
  for_each_list_element(value, [&](std::string_view element) {
    if (element.size() > kMaxContentLengthDigits ||
        !std::all_of(element.begin(), element.end(), is_digit)) {
      ok = false;
      return;
    }
    std::int64_t n = 0;
    for (char c : element) n = n * 10 + (c - '0');
    if (content_length_ >= 0 && content_length_ != n) ok = false;
    content_length_ = n;
  });
  // "5,,": empty elements are skipped above, but a value of only commas is not a length.
  return ok && content_length_ >= 0;
}

bool ResponseParser::on_header_block_end() {
  if (status_ < 200) {
    // We never ask for an upgrade; other 1xx are interim: keep only the final response's fields.
    if (status_ == 101) return false;
    phase_ = Phase::kStatusLine;
    headers_ = policy::HeaderList{};
    connection_tokens_.clear();
    return true;
  }
  // Both framings at once is the classic request-smuggling shape (RFC 9112 §6.1).
  if (transfer_encoding_ && content_length_ >= 0) return false;
  if (transfer_encoding_ && http10_) return false;
  for (const auto& token : connection_tokens_) headers_.remove(token);
  return start_body();
}

bool ResponseParser::start_body() {
  if (head_request_ || status_ == 204 || status_ == 304) {
    done();
  } else if (chunked_) {
    phase_ = Phase::kChunkSize;
  } else if (content_length_ >= 0) {
    if (content_length_ > max_body_) {
      fail(Error::kBodyTooLarge);
    } else if (content_length_ == 0) {
      done();
    } else {
      remaining_ = content_length_;
      phase_ = Phase::kFixedBody;
    }
  } else {
    keep_alive_ = false;
    phase_ = Phase::kBodyUntilClose;
  }
  return true;
}

// chunk-size [ BWS ";" chunk-ext ] (RFC 9112 §7.1); extensions are ignored.
bool ResponseParser::on_chunk_size_line(std::string_view line) {
  std::size_t digits = 0;
  std::int64_t size = 0;
  while (digits < line.size() && hex_value(line[digits]) >= 0) {
    if (++digits > kMaxChunkSizeDigits) return false;
    size = size * 16 + hex_value(line[digits - 1]);
  }
  if (digits == 0) return false;
  const auto ext = trim_ows(line.substr(digits));
  if (!ext.empty() && (ext.front() != ';' || !policy::is_valid_header_value(ext))) return false;
  if (size == 0) {
    phase_ = Phase::kTrailers;
  } else if (size > max_body_ - static_cast<std::int64_t>(body_.size())) {
    fail(Error::kBodyTooLarge);  // before reading a byte of it
  } else {
    remaining_ = size;
    phase_ = Phase::kChunkData;
  }
  return true;
}

// Trailer fields are not relayed; they only have to be well-formed lines.
bool ResponseParser::on_trailer_line(std::string_view line) {
  if (line.empty()) {
    done();
    return true;
  }
  const auto colon = line.find(':');
  return colon != std::string_view::npos && colon > 0 && policy::is_token(line.substr(0, colon)) &&
         !policy::has_line_break_or_nul(line.substr(colon + 1));
}

bool ResponseParser::append_body(std::string_view bytes) {
  if (static_cast<std::int64_t>(body_.size() + bytes.size()) > max_body_) {
    fail(Error::kBodyTooLarge);
    return false;
  }
  body_.append(bytes);
  return true;
}

void ResponseParser::fail(Error e) {
  state_ = State::kError;
  error_ = e;
  headers_ = policy::HeaderList{};
  body_.clear();
  status_ = 0;
  keep_alive_ = false;
}

void ResponseParser::done() {
  state_ = State::kDone;
  phase_ = Phase::kDone;
}

}  // namespace hookguard::gateway::http1
