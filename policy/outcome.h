// Every way a webhook request can end, with its status, log string, safe message and metric.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace hookguard::policy {

/// The outcome of one webhook request; one `webhook_event_log.outcome` value each.
enum class Outcome : std::uint8_t {
  kForwarded,
  kNotFound,
  kMethodNotAllowed,
  kPayloadTooLarge,
  kIpDenied,
  kRateLimited,
  kRateLimitStoreError,  // on_store_error: closed and Redis unreachable
  kSignatureMissing,
  kSignatureInvalid,
  kUpstreamError,
  kUpstreamTimeout,
  kUpstreamDenied,  // upstream address inside upstream.deny_networks (SSRF guard)
  kUpstreamBusy,    // too many requests in flight to the upstream
  kBadRequest,  // request the gateway cannot forward safely (bad header bytes, too many headers)
  kDuplicate,
  kFiltered,
  kChallenge,
  kDeliveryInFlight,  // replay: the same delivery id is being forwarded right now
  kShuttingDown,
};

inline constexpr std::size_t kOutcomeCount = static_cast<std::size_t>(Outcome::kShuttingDown) + 1;

/// The fixed facts about one Outcome: one row of the table in outcome.cc.
struct OutcomeInfo {
  Outcome outcome;
  std::string_view name;     // stable snake_case: the `outcome` column and the error body
  int http_status;           // the status the sender gets (0 for kForwarded: the upstream's)
  std::string_view message;  // safe human text for the error body
};

/// The table row for `outcome`.
const OutcomeInfo& outcome_info(Outcome outcome);

/// Shorthand for outcome_info(outcome).name.
std::string_view outcome_name(Outcome outcome);

/// Looks an outcome up by its stable name; nullopt for an unknown name.
std::optional<Outcome> outcome_from_name(std::string_view name);

}  // namespace hookguard::policy
