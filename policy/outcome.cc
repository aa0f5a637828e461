#include "policy/outcome.h"

namespace hookguard::policy {
namespace {

// The one table of DESIGN §2/§4: a new outcome is one new row. Messages are safe to send to
// anyone: they never say which part of a check failed.
constexpr std::array<OutcomeInfo, kOutcomeCount> kOutcomes{{
    {Outcome::kForwarded, "forwarded", 0, "forwarded"},
    {Outcome::kNotFound, "not_found", 404, "no such webhook"},
    {Outcome::kMethodNotAllowed, "method_not_allowed", 405, "method not allowed for this webhook"},
    {Outcome::kPayloadTooLarge, "payload_too_large", 413, "payload exceeds this webhook's limit"},
    {Outcome::kIpDenied, "ip_denied", 403, "source address not allowed"},
    {Outcome::kRateLimited, "rate_limited", 429, "rate limit exceeded; retry later"},
    {Outcome::kRateLimitStoreError, "rate_limit_store_error", 503,
     "rate limiter unavailable; retry later"},
    {Outcome::kSignatureMissing, "signature_missing", 401, "signature required"},
    {Outcome::kSignatureInvalid, "signature_invalid", 401, "signature verification failed"},
    {Outcome::kUpstreamError, "upstream_error", 502, "upstream unavailable"},
    {Outcome::kUpstreamTimeout, "upstream_timeout", 504, "upstream timed out"},
    {Outcome::kUpstreamDenied, "upstream_denied", 502, "upstream address not allowed"},
    {Outcome::kUpstreamBusy, "upstream_busy", 503, "upstream busy; retry later"},
    {Outcome::kBadRequest, "bad_request", 400, "request cannot be forwarded"},
    {Outcome::kDuplicate, "duplicate", 200, "duplicate delivery"},
    {Outcome::kFiltered, "filtered", 200, "event filtered"},
    {Outcome::kChallenge, "challenge", 200, "handshake answered"},
    {Outcome::kDeliveryInFlight, "delivery_in_flight", 409,
     "this delivery is being processed; retry later"},
    {Outcome::kShuttingDown, "shutting_down", 503, "gateway shutting down; retry later"},
}};

// Rows are looked up by index, so the table must list the enumerators in declaration order.
constexpr bool table_in_enum_order() {
  for (std::size_t i = 0; i < kOutcomes.size(); ++i) {
    if (static_cast<std::size_t>(kOutcomes[i].outcome) != i) return false;
  }
  return true;
}
static_assert(table_in_enum_order(), "kOutcomes must follow the order of enum Outcome");

}  // namespace

const OutcomeInfo& outcome_info(Outcome outcome) {
  const auto index = static_cast<std::size_t>(outcome);
  // An out-of-range value can only come from a bad cast; answer as the safest failure.
  if (index >= kOutcomes.size()) return kOutcomes[static_cast<std::size_t>(Outcome::kBadRequest)];
  return kOutcomes[index];
}

std::string_view outcome_name(Outcome outcome) { return outcome_info(outcome).name; }

std::optional<Outcome> outcome_from_name(std::string_view name) {
  for (const auto& row : kOutcomes) {
    if (row.name == name) return row.outcome;
  }
  return std::nullopt;
}

}  // namespace hookguard::policy
