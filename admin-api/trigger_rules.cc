#include "admin-api/trigger_rules.h"

#include <nlohmann/json.hpp>

#include "admin-api/api_values.h"
#include "policy/compiled_trigger.h"
#include "policy/trigger_codec.h"

namespace hookguard::admin {
namespace {

tl::unexpected<Error> invalid(const std::string& field, const std::string& reason) {
  return fail("invalid_request", field + ": " + reason, field);
}

}  // namespace

std::optional<policy::IpAddress> upstream_literal_ip(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  std::string_view authority = url.substr(scheme_end + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  std::string_view host = authority;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
  } else {
    host = authority.substr(0, authority.find(':'));
  }
  auto ip = policy::IpAddress::parse(host);
  if (!ip) return std::nullopt;
  return *ip;
}

Result<void> check_deployment_limits(const policy::TriggerSpec& spec,
                                     const DeploymentLimits& limits) {
  if (static_cast<std::int64_t>(spec.policy.payload_size_limit_kb) * 1024 > limits.max_body_bytes) {
    return invalid("policy.payload_size_limit_kb",
                   "exceeds this gateway's ingress.max_body_bytes (" +
                       std::to_string(limits.max_body_bytes / 1024) + " KiB)");
  }
  // The upstream must answer before the sender's request times out on the ingress side.
  if (spec.upstream_timeout_ms >= limits.upstream_timeout_below_ms) {
    return invalid("upstream_timeout_ms", "must be below the ingress header and body timeouts (" +
                                              std::to_string(limits.upstream_timeout_below_ms) +
                                              " ms)");
  }
  // Names are checked at connect time by the forwarder; a literal can be refused right here.
  if (auto ip = upstream_literal_ip(spec.upstream_url); ip && limits.deny_networks.contains(*ip)) {
    return invalid("upstream_url", "host is inside upstream.deny_networks");
  }
  return {};
}

Result<RotateRequest> parse_rotate_request(std::string_view body, std::int64_t now_ms,
                                           std::int64_t default_grace_ms) {
  RotateRequest out;
  out.previous_valid_until_ms = now_ms + default_grace_ms;
  std::string_view trimmed = body;
  while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\n' ||
                              trimmed.front() == '\r' || trimmed.front() == '\t')) {
    trimmed.remove_prefix(1);
  }
  if (trimmed.empty()) return out;
  // The trigger codec's parser: an unbounded DOM would let 1 MiB of "[" hold the admin thread,
  // and of two "secret" keys a plain parser silently keeps one.
  auto doc = policy::parse_bounded_json(body);
  if (!doc) return tl::unexpected(doc.error());
  if (!doc->is_object()) return fail("invalid_request", "expected a JSON object");
  bool until_given = false;
  bool for_given = false;
  for (const auto& [key, value] : doc->items()) {
    if (key == "secret") {
      if (!value.is_string()) return invalid(key, "expected a string");
      out.secret = value.get<std::string>();
      if (auto ok = policy::validate_secret(*out.secret, "secret"); !ok) {
        return tl::unexpected(ok.error());
      }
    } else if (key == "previous_valid_until") {
      if (!value.is_string()) return invalid(key, "expected a string");
      auto us = parse_rfc3339_us(value.get<std::string>(), key);
      if (!us) return tl::unexpected(us.error());
      if (*us / 1000 > now_ms + kMaxPreviousValidSeconds * 1000) {
        return invalid(key, "at most 30 days ahead");
      }
      out.previous_valid_until_ms = *us / 1000;
      until_given = true;
    } else if (key == "previous_valid_for_seconds") {
      if (!value.is_number_integer()) return invalid(key, "expected an integer");
      if (value.is_number_unsigned() &&
          value.get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxPreviousValidSeconds)) {
        return invalid(key, "must be between 0 and " + std::to_string(kMaxPreviousValidSeconds));
      }
      const auto seconds = value.get<std::int64_t>();
      if (seconds < 0 || seconds > kMaxPreviousValidSeconds) {
        return invalid(key, "must be between 0 and " + std::to_string(kMaxPreviousValidSeconds));
      }
      out.previous_valid_until_ms = now_ms + seconds * 1000;
      for_given = true;
    } else {
      std::string shown;
      for (char c : key.substr(0, 64)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
      return invalid(shown, "unknown field");
    }
  }
  if (until_given && for_given) {
    return invalid("previous_valid_for_seconds",
                   "give either previous_valid_until or previous_valid_for_seconds, not both");
  }
  return out;
}

Result<void> check_secret_for(const policy::TriggerSpec& spec, const std::string& secret,
                              const std::string& field) {
  policy::TriggerSpec probe = spec;
  // Checked as if HMAC were on, so a secret stored for later is already one that will work.
  probe.policy.hmac.enabled = true;
  auto compiled = policy::CompiledTrigger::compile(probe, policy::TriggerSecrets{secret, {}, 0});
  if (compiled) return {};
  Error error = compiled.error();
  if (error.field == "policy.hmac.secret" && field != error.field) {
    error.message.replace(0, error.field.size(), field);
    error.field = field;
  }
  return tl::unexpected(error);
}

}  // namespace hookguard::admin
