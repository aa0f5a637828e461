#include "policy/trigger_policy.h"

#include <array>
#include <charconv>

#include "policy/cidr_set.h"
#include "policy/headers.h"

namespace hookguard::policy {
namespace {

constexpr std::string_view kCode = "invalid_request";

// Every validation error names its path twice: in `field` for machines and as the message's
// prefix for humans reading a log or a CLI error.
tl::unexpected<Error> invalid(const std::string& field, const std::string& message) {
  return fail(std::string(kCode), field + ": " + message, field);
}

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

bool has_control(std::string_view text) {
  for (char c : text) {
    if (is_control(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

constexpr std::array<std::string_view, 7> kKnownMethods{"GET",    "POST", "PUT",    "PATCH",
                                                        "DELETE", "HEAD", "OPTIONS"};

Result<void> check_range(const std::string& field, std::int64_t value, std::int64_t min,
                         std::int64_t max) {
  if (value < min || value > max) {
    return invalid(field, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                              " (got " + std::to_string(value) + ")");
  }
  return {};
}

bool is_header_name(std::string_view name) {
  if (name.empty() || name.size() > PolicyLimits::kMaxHeaderNameBytes) return false;
  for (char c : name) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

Result<void> validate_replay(const ReplayPolicy& replay, const HmacPolicy& hmac) {
  if (auto ok = check_range("policy.replay.window_seconds", replay.window_seconds, 1,
                            PolicyLimits::kMaxReplayWindowSeconds);
      !ok) {
    return ok;
  }
  if (!replay.header.empty() && !is_header_name(replay.header)) {
    return invalid("policy.replay.header", "not a valid header name");
  }
  // The id is recorded only once the signature verified; without one, anyone who can reach
  // the endpoint could burn the ids of real deliveries before they arrive.
  if (replay.enabled && !hmac.enabled) {
    return invalid("policy.replay.enabled", "requires policy.hmac.enabled");
  }
  return {};
}

Result<void> validate_events(const EventFilterPolicy& events) {
  const std::string field = "policy.events.allow";
  if (events.allow.size() > PolicyLimits::kMaxEventAllowEntries) {
    return invalid(field, "at most " + std::to_string(PolicyLimits::kMaxEventAllowEntries) +
                              " entries (got " + std::to_string(events.allow.size()) + ")");
  }
  // An enabled filter with nothing allowed drops every delivery: a mistake, not a wish.
  if (events.enabled && events.allow.empty()) {
    return invalid(field, "must not be empty when events are enabled");
  }
  for (std::size_t i = 0; i < events.allow.size(); ++i) {
    const auto& entry = events.allow[i];
    const std::string at = field + "[" + std::to_string(i) + "]";
    if (entry.empty() || entry.size() > PolicyLimits::kMaxEventTypeBytes) {
      return invalid(at,
                     "must be 1-" + std::to_string(PolicyLimits::kMaxEventTypeBytes) + " bytes");
    }
    if (has_control(entry)) return invalid(at, "contains a control character");
    for (std::size_t j = 0; j < i; ++j) {
      if (events.allow[j] == entry) return invalid(at, "duplicate event type");
    }
  }
  const std::string_view source = events.source;
  if (source.empty()) return {};
  if (source.starts_with("header:")) {
    if (!is_header_name(source.substr(7))) {
      return invalid("policy.events.source", "header:<Name> needs a valid header name");
    }
    return {};
  }
  if (source.starts_with("json:")) {
    const auto name = source.substr(5);
    if (name.empty() || name.size() > PolicyLimits::kMaxEventJsonFieldBytes || has_control(name)) {
      return invalid("policy.events.source",
                     "json:<field> needs a field name of 1-" +
                         std::to_string(PolicyLimits::kMaxEventJsonFieldBytes) +
                         " bytes without control characters");
    }
    return {};
  }
  return invalid("policy.events.source", "must be header:<Name> or json:<top-level field>");
}

bool is_host_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
         c == '.';
}

std::string lower_ascii(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Result<void> validate_upstream_url(std::string_view url) {
  const std::string field = "upstream_url";
  if (url.empty()) return invalid(field, "must not be empty");
  if (url.size() > 2048) return invalid(field, "longer than 2048 bytes");
  for (char ch : url) {
    const auto c = static_cast<unsigned char>(ch);
    // Whitespace, controls and raw non-ASCII would let a URL mean different things to the
    // validator and to libcurl: percent-encode them instead.
    if (c <= 0x20 || c >= 0x7f) return invalid(field, "contains whitespace or a control character");
  }
  std::size_t rest = 0;
  const std::string scheme = lower_ascii(url.substr(0, 8));
  if (scheme.starts_with("http://")) {
    rest = 7;
  } else if (scheme.starts_with("https://")) {
    rest = 8;
  } else {
    return invalid(field, "must start with http:// or https://");
  }
  if (url.find('#') != std::string_view::npos) return invalid(field, "must not have a fragment");
  const auto authority_end = url.find_first_of("/?", rest);
  const auto authority =
      url.substr(rest, authority_end == std::string_view::npos ? std::string_view::npos
                                                               : authority_end - rest);
  if (authority.find('@') != std::string_view::npos) {
    return invalid(field, "must not contain userinfo (user:password@)");
  }
  std::string_view host = authority;
  std::string_view port;
  bool has_port = false;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return invalid(field, "unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return invalid(field, "unexpected characters after IPv6 literal");
      port = after.substr(1);
      has_port = true;
    }
    auto ip = IpAddress::parse(host);
    if (!ip || ip->is_v4()) return invalid(field, "bad IPv6 literal host");
  } else {
    const auto colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) return invalid(field, "must have a host");
    for (char c : host) {
      if (!is_host_char(c)) return invalid(field, "bad character in host");
    }
  }
  if (host.empty()) return invalid(field, "must have a host");
  if (has_port) {
    int number = 0;
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string_view::npos) {
      return invalid(field, "bad port");
    }
    std::from_chars(port.data(), port.data() + port.size(), number);
    if (number < 1 || number > 65535) return invalid(field, "port out of range (1-65535)");
  }
  return {};
}

// Provider schemes fix their algorithm; accepting another would only produce signatures that
// no real sender makes (or, for sha1 on GitHub's sha256 header, a downgrade).
bool scheme_supports(SignatureScheme scheme, HmacAlgorithm algorithm) {
  switch (scheme) {
    case SignatureScheme::kGeneric:
      return true;
    case SignatureScheme::kGithub:
      return algorithm != HmacAlgorithm::kSha512;
    case SignatureScheme::kStripe:
    case SignatureScheme::kSlack:
    case SignatureScheme::kStandardWebhooks:
    case SignatureScheme::kShopify:
      return algorithm == HmacAlgorithm::kSha256;
  }
  return false;
}

}  // namespace

std::string_view to_string(Mode mode) {
  switch (mode) {
    case Mode::kEnforce:
      return "enforce";
    case Mode::kMonitor:
      return "monitor";
  }
  return "";
}

std::string_view to_string(StoreErrorMode mode) {
  switch (mode) {
    case StoreErrorMode::kOpen:
      return "open";
    case StoreErrorMode::kClosed:
      return "closed";
  }
  return "";
}

std::string_view to_string(HmacAlgorithm algorithm) {
  switch (algorithm) {
    case HmacAlgorithm::kSha1:
      return "sha1";
    case HmacAlgorithm::kSha256:
      return "sha256";
    case HmacAlgorithm::kSha512:
      return "sha512";
  }
  return "";
}

std::string_view to_string(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kGeneric:
      return "generic";
    case SignatureScheme::kGithub:
      return "github";
    case SignatureScheme::kStripe:
      return "stripe";
    case SignatureScheme::kSlack:
      return "slack";
    case SignatureScheme::kStandardWebhooks:
      return "standard-webhooks";
    case SignatureScheme::kShopify:
      return "shopify";
  }
  return "";
}

std::string_view to_string(Handshake handshake) {
  switch (handshake) {
    case Handshake::kNone:
      return "none";
    case Handshake::kTmi:
      return "tmi";
    case Handshake::kSlack:
      return "slack";
  }
  return "";
}

Result<Mode> parse_mode(std::string_view text) {
  for (auto value : {Mode::kEnforce, Mode::kMonitor}) {
    if (to_string(value) == text) return value;
  }
  return fail(std::string(kCode), "unknown mode (expected enforce or monitor)");
}

Result<StoreErrorMode> parse_store_error_mode(std::string_view text) {
  for (auto value : {StoreErrorMode::kOpen, StoreErrorMode::kClosed}) {
    if (to_string(value) == text) return value;
  }
  return fail(std::string(kCode), "unknown on_store_error (expected open or closed)");
}

Result<HmacAlgorithm> parse_hmac_algorithm(std::string_view text) {
  for (auto value : {HmacAlgorithm::kSha1, HmacAlgorithm::kSha256, HmacAlgorithm::kSha512}) {
    if (to_string(value) == text) return value;
  }
  return fail(std::string(kCode), "unknown algorithm (expected sha256, sha512 or sha1)");
}

Result<SignatureScheme> parse_signature_scheme(std::string_view text) {
  for (auto value :
       {SignatureScheme::kGeneric, SignatureScheme::kGithub, SignatureScheme::kStripe,
        SignatureScheme::kSlack, SignatureScheme::kStandardWebhooks, SignatureScheme::kShopify}) {
    if (to_string(value) == text) return value;
  }
  return fail(std::string(kCode),
              "unknown scheme (expected generic, github, stripe, slack, standard-webhooks or "
              "shopify)");
}

Result<Handshake> parse_handshake(std::string_view text) {
  for (auto value : {Handshake::kNone, Handshake::kTmi, Handshake::kSlack}) {
    if (to_string(value) == text) return value;
  }
  return fail(std::string(kCode), "unknown handshake (expected none, tmi or slack)");
}

bool is_valid_trigger_key(std::string_view key) {
  if (key.empty() || key.size() > 128) return false;
  for (char c : key) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<void> validate_secret(std::string_view secret, std::string_view field) {
  // The message gives only the length: a secret must never reach a log or an error body.
  if (secret.size() < PolicyLimits::kMinSecretBytes ||
      secret.size() > PolicyLimits::kMaxSecretBytes) {
    return invalid(std::string(field), "must be between " +
                                           std::to_string(PolicyLimits::kMinSecretBytes) + " and " +
                                           std::to_string(PolicyLimits::kMaxSecretBytes) +
                                           " bytes (got " + std::to_string(secret.size()) + ")");
  }
  return {};
}

Result<void> validate(const TriggerSpec& spec) {
  if (!is_valid_trigger_key(spec.key)) {
    return invalid("key", "must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'");
  }
  if (spec.name.empty()) return invalid("name", "must not be empty");
  if (spec.name.size() > PolicyLimits::kMaxNameBytes) {
    return invalid("name", "longer than " + std::to_string(PolicyLimits::kMaxNameBytes) + " bytes");
  }
  if (has_control(spec.name)) return invalid("name", "contains a control character");
  if (spec.description.size() > PolicyLimits::kMaxDescriptionBytes) {
    return invalid("description",
                   "longer than " + std::to_string(PolicyLimits::kMaxDescriptionBytes) + " bytes");
  }
  for (char ch : spec.description) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_control(c) && c != '\n' && c != '\t') {
      return invalid("description", "contains a control character");
    }
  }
  if (to_string(spec.mode).empty()) return invalid("mode", "unknown mode");

  if (spec.methods.empty()) return invalid("methods", "must list at least one method");
  for (std::size_t i = 0; i < spec.methods.size(); ++i) {
    const std::string field = "methods[" + std::to_string(i) + "]";
    const auto& method = spec.methods[i];
    bool token = !method.empty() && method.size() <= 16;
    for (char c : method) token = token && is_tchar(c);
    if (!token) return invalid(field, "not an HTTP method token");
    bool known = false;
    for (auto k : kKnownMethods) known = known || k == method;
    if (!known) {
      return invalid(field,
                     "unknown method (expected upper-case GET, POST, PUT, PATCH, DELETE, "
                     "HEAD or OPTIONS)");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (spec.methods[j] == method) return invalid(field, "duplicate method");
    }
  }

  if (auto ok = validate_upstream_url(spec.upstream_url); !ok) return ok;
  if (auto ok =
          check_range("upstream_timeout_ms", spec.upstream_timeout_ms,
                      PolicyLimits::kMinUpstreamTimeoutMs, PolicyLimits::kMaxUpstreamTimeoutMs);
      !ok) {
    return ok;
  }

  const auto& policy = spec.policy;
  if (auto ok = check_range("policy.payload_size_limit_kb", policy.payload_size_limit_kb,
                            PolicyLimits::kMinPayloadKb, PolicyLimits::kMaxPayloadKb);
      !ok) {
    return ok;
  }

  const auto& cidrs = policy.ip_allowlist.cidrs;
  if (cidrs.size() > PolicyLimits::kMaxCidrs) {
    return invalid("policy.ip_allowlist.cidrs",
                   "at most " + std::to_string(PolicyLimits::kMaxCidrs) + " entries (got " +
                       std::to_string(cidrs.size()) + ")");
  }
  // An enabled, empty allowlist denies every sender: far more often a mistake than a wish.
  if (policy.ip_allowlist.enabled && cidrs.empty()) {
    return invalid("policy.ip_allowlist.cidrs", "must not be empty when the allowlist is enabled");
  }
  for (std::size_t i = 0; i < cidrs.size(); ++i) {
    if (auto cidr = Cidr::parse(cidrs[i]); !cidr) {
      return invalid("policy.ip_allowlist.cidrs[" + std::to_string(i) + "]", cidr.error().message);
    }
  }

  const auto& rate = policy.rate_limit;
  if (auto ok = check_range("policy.rate_limit.requests", rate.requests, 1,
                            PolicyLimits::kMaxRateRequests);
      !ok) {
    return ok;
  }
  if (auto ok = check_range("policy.rate_limit.window_seconds", rate.window_seconds, 1,
                            PolicyLimits::kMaxRateWindowSeconds);
      !ok) {
    return ok;
  }
  if (to_string(rate.on_store_error).empty()) {
    return invalid("policy.rate_limit.on_store_error", "unknown value");
  }

  const auto& hmac = policy.hmac;
  if (to_string(hmac.scheme).empty()) return invalid("policy.hmac.scheme", "unknown scheme");
  if (to_string(hmac.algorithm).empty()) {
    return invalid("policy.hmac.algorithm", "unknown algorithm");
  }
  if (!scheme_supports(hmac.scheme, hmac.algorithm)) {
    return invalid("policy.hmac.algorithm", "scheme " + std::string(to_string(hmac.scheme)) +
                                                " does not support " +
                                                std::string(to_string(hmac.algorithm)));
  }
  if (!hmac.header.empty()) {
    bool token = hmac.header.size() <= 128;
    for (char c : hmac.header) token = token && is_tchar(c);
    if (!token) return invalid("policy.hmac.header", "not a valid header name");
  }
  if (auto ok =
          check_range("policy.hmac.timestamp_tolerance_seconds", hmac.timestamp_tolerance_seconds,
                      1, PolicyLimits::kMaxTimestampToleranceSeconds);
      !ok) {
    return ok;
  }
  if (auto ok = validate_replay(policy.replay, hmac); !ok) return ok;
  if (auto ok = validate_events(policy.events); !ok) return ok;
  if (to_string(policy.handshake).empty()) return invalid("policy.handshake", "unknown handshake");
  return {};
}

}  // namespace hookguard::policy
