#include "gateway/http1_response_writer.h"

#include <charconv>

namespace hookguard::gateway::http1 {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 425:
      return "Too Early";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

namespace {

bool is_framing_field(std::string_view name) {
  return policy::header_name_equals(name, "Connection") ||
         policy::header_name_equals(name, "Content-Length") ||
         policy::header_name_equals(name, "Transfer-Encoding");
}

void append_number(std::string& out, std::size_t n) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  (void)ec;  // 24 characters hold any size_t
  out.append(digits, end);
}

}  // namespace

std::string write_response(Framing framing, int status, const policy::HeaderList& headers,
                           std::string_view body) {
  if (status < 100 || status > 599) status = 502;
  const std::string_view reason = reason_phrase(status);
  std::size_t size = 64 + reason.size() + body.size();
  for (const auto& [name, value] : headers.fields()) size += name.size() + value.size() + 4;

  std::string out;
  out.reserve(size);
  out.append(framing.http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(out, static_cast<std::size_t>(status));
  out.push_back(' ');
  out.append(reason).append("\r\n");
  for (const auto& [name, value] : headers.fields()) {
    if (!policy::is_token(name) || policy::has_line_break_or_nul(value) || is_framing_field(name)) {
      continue;
    }
    out.append(name).append(": ").append(value).append("\r\n");
  }
  out.append(framing.close ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
  // RFC 9110 §8.6 and §6.4.1: 1xx, 204 and 304 carry neither Content-Length nor a body.
  if (status < 200 || status == 204 || status == 304) return out.append("\r\n");
  out.append("Content-Length: ");
  append_number(out, body.size());
  out.append("\r\n\r\n");
  // RFC 9110 §9.3.2: the answer to HEAD has the fields a GET would get, and no content.
  if (!framing.head) out.append(body);
  return out;
}

}  // namespace hookguard::gateway::http1
