#include "gateway/upstream_request.h"

#include <array>
#include <cctype>
#include <vector>

namespace hookguard::gateway {

namespace {

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         policy::header_name_equals(s.substr(0, prefix.size()), prefix);
}

// Headers the sender may not set for the upstream: the gateway speaks for itself here, and an
// upstream that trusts X-Forwarded-For must never see a value the sender chose.
bool is_gateway_owned(std::string_view name) {
  return starts_with_ci(name, "X-Forwarded-") || starts_with_ci(name, "X-Hookguard-") ||
         policy::header_name_equals(name, "Forwarded") ||
         policy::header_name_equals(name, "X-Request-Id") ||
         policy::header_name_equals(name, "X-Real-IP") ||
         policy::header_name_equals(name, "Host") ||
         policy::header_name_equals(name, "Content-Length") ||
         policy::header_name_equals(name, "Expect");
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

bool is_safe_path_suffix(std::string_view suffix) {
  for (unsigned char c : suffix) {
    const bool ok =
        std::isalnum(c) || std::string_view("-._~!$&'()*+,;=:@/%").find(static_cast<char>(c)) !=
                               std::string_view::npos;
    if (!ok) return false;
  }
  // Check segments after decoding %2e/%2E, the usual way to smuggle ".." past a naive filter.
  std::size_t start = 0;
  while (start <= suffix.size()) {
    auto end = suffix.find('/', start);
    if (end == std::string_view::npos) end = suffix.size();
    std::string seg = lower(suffix.substr(start, end - start));
    std::string decoded;
    for (std::size_t i = 0; i < seg.size(); ++i) {
      if (seg.compare(i, 3, "%2e") == 0) {
        decoded += '.';
        i += 2;
      } else {
        decoded += seg[i];
      }
    }
    if (decoded == "." || decoded == "..") return false;
    if (seg.find("%2f") != std::string::npos || seg.find("%5c") != std::string::npos) return false;
    start = end + 1;
  }
  return true;
}

bool is_hop_by_hop_header(std::string_view name) {
  static constexpr std::array<std::string_view, 10> kHopByHop{"Connection",
                                                              "Keep-Alive",
                                                              "Proxy-Connection",
                                                              "Proxy-Authenticate",
                                                              "Proxy-Authorization",
                                                              "TE",
                                                              "Trailer",
                                                              "Transfer-Encoding",
                                                              "Upgrade",
                                                              "Content-Length"};
  for (auto h : kHopByHop) {
    if (policy::header_name_equals(name, h)) return true;
  }
  return false;
}

Result<UpstreamRequest> build_upstream_request(std::string_view method,
                                               const policy::HeaderList& inbound_headers,
                                               std::string body, std::string_view suffix,
                                               std::string_view query,
                                               const policy::CompiledTrigger& trigger,
                                               const ForwardContext& context) {
  UpstreamRequest out;
  out.method = std::string(method);
  out.timeout_ms = trigger.spec.upstream_timeout_ms;
  out.body = std::move(body);

  out.url = trigger.spec.upstream_url;
  if (!suffix.empty()) {
    if (!is_safe_path_suffix(suffix)) return fail("bad_request", "path suffix not allowed");
    if (!out.url.empty() && out.url.back() == '/' && suffix.front() == '/') suffix.remove_prefix(1);
    // The suffix goes into the path, before any query the upstream URL already has.
    auto q = out.url.find('?');
    out.url.insert(q == std::string::npos ? out.url.size() : q, suffix);
  }
  if (!query.empty()) {
    for (unsigned char c : query) {
      if (c <= 0x20 || c == 0x7f || c == '#') return fail("bad_request", "query not allowed");
    }
    out.url += (out.url.find('?') == std::string::npos ? '?' : '&');
    out.url += query;
  }

  // Fields named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
  std::vector<std::string> connection_named;
  if (auto conn = inbound_headers.get("Connection")) {
    std::string_view rest = *conn;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto token = rest.substr(0, comma);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
        token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
        token.remove_suffix(1);
      if (!token.empty()) connection_named.emplace_back(token);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }

  std::string host;
  for (const auto& [name, value] : inbound_headers.fields()) {
    if (!policy::is_token(name) || !policy::is_valid_header_value(value)) {
      return fail("bad_request", "a request header contains bytes that cannot be forwarded");
    }
    if (policy::header_name_equals(name, "Host")) {
      if (host.empty()) host = value;
      continue;
    }
    if (is_hop_by_hop_header(name) || is_gateway_owned(name)) continue;
    bool named = false;
    for (const auto& n : connection_named) named = named || policy::header_name_equals(n, name);
    if (named) continue;
    out.headers.add(name, value);
  }
  out.headers.add("X-Forwarded-For", context.source_ip);
  out.headers.add("X-Forwarded-Proto", "http");
  if (!host.empty()) out.headers.add("X-Forwarded-Host", host);
  out.headers.add("X-Request-Id", context.request_id);
  out.headers.add("X-Hookguard-Trigger", trigger.spec.name);
  out.headers.add("X-Hookguard-Signature-Verified",
                  !context.hmac_verified ? "skipped" : (*context.hmac_verified ? "true" : "false"));
  return out;
}

}  // namespace hookguard::gateway
