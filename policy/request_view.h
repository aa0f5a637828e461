// What the check chain may see of one inbound request: plain values, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "policy/cidr_set.h"
#include "policy/headers.h"

namespace hookguard::policy {

/// A read-only view of one request, valid while the caller's request is.
struct RequestView {
  std::string_view method;                      // "POST"
  const HeaderList* headers = nullptr;          // never null when passed to the chain
  std::string_view body;                        // the raw body bytes as received
  std::optional<std::uint64_t> content_length;  // the declared Content-Length, if any
  IpAddress source_ip;                          // after trusted-proxy resolution
  std::int64_t now_unix_ms = 0;                 // the request's arrival time
  std::string_view request_id = {};             // unique per request: owns a replay reservation
};

}  // namespace hookguard::policy
