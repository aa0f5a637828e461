// Builds the request sent upstream from an inbound one: filtered headers, added headers, URL.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "gateway/forwarder.h"
#include "policy/compiled_trigger.h"
#include "policy/headers.h"
#include "policy/result.h"

namespace hookguard::gateway {

/// True for a path suffix we can append to an upstream URL: RFC 3986 path characters only,
/// and no "." or ".." segment (in plain or percent-encoded form).
bool is_safe_path_suffix(std::string_view suffix);

/// What the gateway adds about the request it forwards.
struct ForwardContext {
  std::string source_ip;
  std::string request_id;
  std::optional<bool> hmac_verified;  // nullopt: not checked
};

/// The upstream request: URL = upstream_url + suffix (+ '?' query), hop-by-hop headers and
/// client-supplied X-Forwarded-*, Forwarded, X-Request-Id and X-Hookguard-* removed, the
/// gateway's own added. Fails (code "bad_request") on header bytes that cannot be forwarded.
Result<UpstreamRequest> build_upstream_request(std::string_view method,
                                               const policy::HeaderList& inbound_headers,
                                               std::string body, std::string_view suffix,
                                               std::string_view query,
                                               const policy::CompiledTrigger& trigger,
                                               const ForwardContext& context);

/// Response headers that must not be relayed to the sender (hop-by-hop and framing).
bool is_hop_by_hop_header(std::string_view name);

}  // namespace hookguard::gateway
