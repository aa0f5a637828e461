// Source-IP resolution: the TCP peer, or the client named by trusted proxies in X-Forwarded-For.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "policy/cidr_set.h"
#include "policy/headers.h"
#include "policy/result.h"

namespace hookguard::gateway {

/// At most this many X-Forwarded-For entries, counted from the right, are examined.
inline constexpr std::size_t kMaxForwardedForEntries = 64;
/// At most this many bytes, counted from the right end of X-Forwarded-For, are examined.
inline constexpr std::size_t kMaxForwardedForBytes = 8192;

/// The address a request is attributed to (DESIGN §2). A peer outside `trusted_proxies` is the
/// source and its X-Forwarded-For is ignored. A trusted peer's X-Forwarded-For (a comma-separated
/// list; several header fields joined with ", ") is walked right to left, skipping trusted
/// proxies: the first untrusted entry is the source. Entries must be plain IP literals (no
/// "[v6]", no ":port", no "unknown"); a malformed entry, or the work bound above, stops the walk
/// and the last trusted hop (or the peer) is used, never an unverified value further left. If
/// every entry is trusted, the left-most one is used. Empty list elements are skipped.
/// Caveat: Pistache 0.0.5 keeps only the first of duplicate header fields, so the trusted proxy
/// must send one merged X-Forwarded-For field (nginx $proxy_add_x_forwarded_for does; HAProxy's
/// `option forwardfor` appends a second field, which the gateway would never see).
policy::IpAddress resolve_source_ip(const policy::IpAddress& peer,
                                    std::optional<std::string_view> x_forwarded_for,
                                    const policy::CidrSet& trusted_proxies);

/// Parses the peer host Pistache reports ("127.0.0.1", "::1", "::ffff:127.0.0.1" — which becomes
/// IPv4 — or a bracketed "[::1]").
Result<policy::IpAddress> parse_peer_address(std::string_view text);

/// Every X-Forwarded-For field of `headers`, in arrival order, joined with ", "; nullopt if none.
std::optional<std::string> joined_forwarded_for(const policy::HeaderList& headers);

}  // namespace hookguard::gateway
