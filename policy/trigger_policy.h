// The per-trigger policy model (what operators configure) and its validation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/result.h"

namespace hookguard::policy {

enum class Mode { kEnforce, kMonitor };
enum class StoreErrorMode { kOpen, kClosed };
enum class HmacAlgorithm { kSha1, kSha256, kSha512 };
enum class SignatureScheme { kGeneric, kGithub, kStripe, kSlack, kStandardWebhooks, kShopify };
enum class Handshake { kNone, kTmi, kSlack };

std::string_view to_string(Mode);
std::string_view to_string(StoreErrorMode);
std::string_view to_string(HmacAlgorithm);
std::string_view to_string(SignatureScheme);
std::string_view to_string(Handshake);
Result<Mode> parse_mode(std::string_view);
Result<StoreErrorMode> parse_store_error_mode(std::string_view);
Result<HmacAlgorithm> parse_hmac_algorithm(std::string_view);
Result<SignatureScheme> parse_signature_scheme(std::string_view);
Result<Handshake> parse_handshake(std::string_view);

/// Limits every validated policy stays within.
struct PolicyLimits {
  static constexpr int kMinPayloadKb = 1;
  static constexpr int kMaxPayloadKb = 102400;
  static constexpr std::int64_t kMaxRateRequests = 1000000;
  static constexpr std::int64_t kMaxRateWindowSeconds = 86400;
  static constexpr std::size_t kMinSecretBytes = 16;
  static constexpr std::size_t kMaxSecretBytes = 256;
  static constexpr std::size_t kMaxCidrs = 1000;
  static constexpr int kMinUpstreamTimeoutMs = 1;
  static constexpr int kMaxUpstreamTimeoutMs = 300000;
  static constexpr int kMaxTimestampToleranceSeconds = 86400;
  static constexpr std::size_t kMaxNameBytes = 128;
  static constexpr std::size_t kMaxDescriptionBytes = 1024;
  static constexpr std::int64_t kMaxReplayWindowSeconds = 604800;  // 7 days
  static constexpr std::size_t kMaxHeaderNameBytes = 128;
  static constexpr std::size_t kMaxEventAllowEntries = 100;
  static constexpr std::size_t kMaxEventTypeBytes = 128;
  static constexpr std::size_t kMaxEventJsonFieldBytes = 128;
};

struct IpAllowlistPolicy {
  bool enabled = false;
  std::vector<std::string> cidrs;
  bool operator==(const IpAllowlistPolicy&) const = default;
};

struct RateLimitPolicy {
  bool enabled = false;
  std::int64_t requests = 100;
  std::int64_t window_seconds = 60;
  bool per_source_ip = false;
  StoreErrorMode on_store_error = StoreErrorMode::kOpen;
  bool operator==(const RateLimitPolicy&) const = default;
};

struct HmacPolicy {
  bool enabled = false;
  SignatureScheme scheme = SignatureScheme::kGeneric;
  HmacAlgorithm algorithm = HmacAlgorithm::kSha256;
  std::string header;  // empty: the scheme's default header
  int timestamp_tolerance_seconds = 300;
  bool operator==(const HmacPolicy&) const = default;
};

/// Replay protection: a delivery id already forwarded within the window is not forwarded again.
struct ReplayPolicy {
  bool enabled = false;
  std::int64_t window_seconds = 86400;
  std::string header;  // empty: the scheme's default (see delivery_id_header())
  bool operator==(const ReplayPolicy&) const = default;
};

/// Event-type allowlist: unlisted (or missing) event types are answered 200 "filtered".
struct EventFilterPolicy {
  bool enabled = false;
  std::vector<std::string> allow;
  std::string source;  // "header:<Name>" | "json:<top-level field>"; empty: the scheme's default
  bool operator==(const EventFilterPolicy&) const = default;
};

/// The check-chain policy of one trigger.
struct TriggerPolicy {
  int payload_size_limit_kb = 1024;
  IpAllowlistPolicy ip_allowlist;
  RateLimitPolicy rate_limit;
  HmacPolicy hmac;
  ReplayPolicy replay;
  EventFilterPolicy events;
  Handshake handshake = Handshake::kNone;
  bool operator==(const TriggerPolicy&) const = default;
};

/// One trigger as stored and configured (secrets excluded: they travel separately).
struct TriggerSpec {
  std::int64_t id = 0;
  std::string key;  // wh_ + 32 base62
  std::string name;
  std::string description;
  bool enabled = true;
  Mode mode = Mode::kEnforce;
  std::vector<std::string> methods{"POST"};
  std::string upstream_url;
  int upstream_timeout_ms = 8000;
  TriggerPolicy policy;
  std::int64_t version = 0;
  bool operator==(const TriggerSpec&) const = default;
};

/// Checks every field of `spec`; the error's `field` is the JSON/YAML path of the culprit
/// (e.g. "policy.rate_limit.requests") and its message starts with that path.
Result<void> validate(const TriggerSpec& spec);

/// Checks an HMAC secret's length (16-256 bytes).
Result<void> validate_secret(std::string_view secret,
                             std::string_view field = "policy.hmac.secret");

/// True when `key` is a well-formed trigger key: 1-128 chars of [A-Za-z0-9_-].
bool is_valid_trigger_key(std::string_view key);

}  // namespace hookguard::policy
