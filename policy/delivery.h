// What a request says about itself — delivery id, event type, handshake challenge — as pure reads.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "policy/compiled_trigger.h"
#include "policy/headers.h"
#include "policy/trigger_policy.h"

namespace hookguard::policy {

/// Bounds on what the gateway reads out of a request for replay, events and handshakes.
struct DeliveryLimits {
  static constexpr std::size_t kMaxDeliveryIdBytes = 256;
  static constexpr std::size_t kMaxChallengeBytes = 512;
  static constexpr std::size_t kMaxHandshakeBodyBytes = 4096;  // larger bodies are no handshake
  static constexpr std::size_t kMaxJsonDepth = 64;
};

/// The header a trigger reads its delivery id from: `replay.header`, else the scheme's default
/// (standard-webhooks: webhook-id, or svix-id for a request of the svix-* family; github:
/// X-GitHub-Delivery; any other: X-Webhook-Delivery-Id).
std::string delivery_id_header(const TriggerPolicy& policy, const HeaderList& headers);

/// The request's delivery id (surrounding whitespace trimmed); nullopt when absent or empty.
/// Unbounded: callers compare its size with DeliveryLimits::kMaxDeliveryIdBytes.
std::optional<std::string> delivery_id(const TriggerPolicy& policy, const HeaderList& headers);

/// Where a trigger reads the event type from, after applying the scheme's default.
struct EventSource {
  enum class Kind { kHeader, kJson };
  Kind kind = Kind::kHeader;
  std::string name;  // header name, or top-level JSON field name
};

/// `events.source` parsed; empty means header:X-GitHub-Event for github, else
/// header:X-Webhook-Event. Assumes a validated policy.
EventSource event_source(const TriggerPolicy& policy);

/// The event type from a header source, without touching the body; nullopt for a JSON source.
std::optional<std::string> header_event_type(const EventSource& source, const HeaderList& headers);

/// The event type from either source. A JSON source parses the body (bounded depth, never
/// throws); a missing, non-string or duplicated field, or a body that is not a JSON object,
/// gives nullopt.
std::optional<std::string> event_type(const EventSource& source, const HeaderList& headers,
                                      std::string_view body);

/// The top-level string field `field` of the JSON object `body`; nullopt when the body is not
/// a well-formed JSON object (nested at most kMaxJsonDepth), or the field is absent, not a
/// string, or present more than once (parsers disagree on which duplicate wins).
std::optional<std::string> top_level_json_string(std::string_view body, std::string_view field);

/// What a body is, for a trigger's `handshake` setting.
struct HandshakeCheck {
  enum class Kind { kNotHandshake, kChallenge, kBadChallenge };
  Kind kind = Kind::kNotHandshake;
  std::string challenge;  // for kChallenge: the value to echo (≤ kMaxChallengeBytes)
};

/// Recognises TMI ({"type":"webhook.challenge","challenge":X}) and Slack
/// ({"type":"url_verification","challenge":X}) handshakes. kBadChallenge: the type matches but
/// the challenge is missing, not a string, empty or longer than kMaxChallengeBytes.
HandshakeCheck check_handshake(Handshake handshake, std::string_view body);

/// The replay key of a delivery: "hg:rp:{t<id>}:<sha256 hex of the id>". The hash bounds the
/// key and keeps sender bytes out of Redis key names; the hash tag keeps a trigger on one slot.
std::string replay_key(const CompiledTrigger& trigger, std::string_view delivery_id);

}  // namespace hookguard::policy
