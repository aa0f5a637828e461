// Pure rules of the triggers API that go beyond policy::validate: limits of this deployment,
// secret generation and the rotate request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/cidr_set.h"
#include "policy/encoding.h"
#include "policy/result.h"
#include "policy/trigger_policy.h"

namespace hookguard::admin {

/// What this gateway deployment allows a trigger to ask for (from gateway.yaml).
struct DeploymentLimits {
  std::int64_t max_body_bytes = 10485760;  // ingress.max_body_bytes
  int upstream_timeout_below_ms = 10000;   // min(ingress.header_timeout_ms, body_timeout_ms)
  policy::CidrSet deny_networks;           // upstream.deny_networks
};

/// Checks `spec` against `limits`: payload limit within the ingress body limit, upstream timeout
/// below the ingress timeouts, upstream literal IP host outside deny_networks. Errors are
/// "invalid_request" naming the field.
Result<void> check_deployment_limits(const policy::TriggerSpec& spec,
                                     const DeploymentLimits& limits);

/// The host of an http(s) URL when it is an IP literal ("10.0.0.1", "[::1]"); nullopt for a
/// name or a URL without a host.
std::optional<policy::IpAddress> upstream_literal_ip(std::string_view url);

/// A fresh CSPRNG secret for `scheme`: the same rule as `hookguard apply`.
using policy::generate_secret;

/// A parsed rotate request body.
struct RotateRequest {
  std::optional<std::string> secret;         // supplied new secret, else generate one
  std::int64_t previous_valid_until_ms = 0;  // Unix ms until which the old secret stays valid
};

/// The longest grace period a rotation may give the previous secret.
inline constexpr std::int64_t kMaxPreviousValidSeconds = 30LL * 24 * 3600;

/// Parses the optional rotate body: {} or {"previous_valid_until": "<RFC 3339>"} or
/// {"previous_valid_for_seconds": N}, optionally with "secret". An empty body means the
/// default grace period. Unknown fields, both grace fields at once, wrong types and values out
/// of range (past now + 30 days) are errors naming the field.
Result<RotateRequest> parse_rotate_request(std::string_view body, std::int64_t now_ms,
                                           std::int64_t default_grace_ms);

/// Checks a secret for `spec`'s scheme the way the gateway will when it loads the trigger.
Result<void> check_secret_for(const policy::TriggerSpec& spec, const std::string& secret,
                              const std::string& field = "policy.hmac.secret");

}  // namespace hookguard::admin
