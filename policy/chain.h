// The check chain: size -> IP -> rate -> HMAC -> handshake -> events -> replay, as one pure
// function of plain values and two ports.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "policy/compiled_trigger.h"
#include "policy/headers.h"
#include "policy/outcome.h"
#include "policy/ports.h"
#include "policy/request_view.h"

namespace hookguard::policy {

/// A replay reservation the chain took: the caller completes it once the upstream accepted the
/// delivery (2xx-4xx), or releases it when the upstream failed, so that a retry goes through.
struct ReplayReservation {
  std::string key;    // policy::replay_key()
  std::string token;  // this request's id: release() only drops its own reservation
  std::int64_t window_ms = 0;
};

/// Extra time a "pending" reservation outlives the upstream timeout before it lapses by itself
/// (a gateway that dies mid-flight must not block the delivery's retries for long).
inline constexpr std::int64_t kReplayPendingMarginMs = 5000;

/// What the chain decided, and every log flag of DESIGN §2 that it determined.
struct ChainResult {
  /// kForwarded when the request goes on to the upstream; otherwise the rejection. In monitor
  /// mode this is the outcome enforce mode *would* have had, while `forward` is still true.
  Outcome outcome = Outcome::kForwarded;
  bool forward = true;                      // send it upstream (always true in monitor mode)
  bool monitor_override = false;            // monitor mode let a failing request through
  std::optional<bool> hmac_verified;        // nullopt: not checked
  std::optional<bool> ip_allowed;           // nullopt: not checked
  bool rate_limited = false;                // the limit was exceeded (even in monitor mode)
  bool rate_limit_store_error = false;      // Redis failed; on_store_error decided
  HeaderList response_headers;              // RateLimit-Limit/Remaining/Reset, Retry-After
  std::string detail;                       // internal note for the log's error_message; no secrets
  std::optional<std::string> delivery_id;   // from the trigger's delivery-id header, when sent
  std::optional<std::string> event_type;    // from the trigger's event source, when known
  std::string challenge;                    // for kChallenge: the value to echo
  bool replay_store_error = false;          // the replay store failed; the request went on
  std::optional<ReplayReservation> replay;  // held by this request: complete or release it
};

/// A replay reservation the chain asks the replay store for (ReplayStore::reserve).
struct ReplayQuestion {
  std::string key;
  std::string token;
  std::int64_t pending_ttl_ms = 0;
};

/// The chain as a resumable state machine that does no I/O itself: advance() runs the stages
/// until one needs a store's answer, the caller asks the store however it likes (blocking, or
/// pipelined on another thread) and hands the answer back with answer(), then advances again.
/// This keeps the reactor thread free while Redis answers, without a second copy of the rules.
/// `request` (and what it points to) and `trigger` must outlive the run.
class ChainRun {
 public:
  enum class Step {
    kDone,           // result() is final
    kNeedRateLimit,  // ask the rate-limit store rate_query(), then answer(RateLimitReply)
    kNeedReplay,     // ask the replay store replay_question(), then answer(ReplayReply)
  };

  ChainRun(const RequestView& request, const CompiledTrigger& trigger);

  /// Runs stages until the chain ends or needs a store. Never throws.
  Step advance();
  const RateLimitQuery& rate_query() const { return rate_query_; }
  const ReplayQuestion& replay_question() const { return replay_question_; }
  void answer(RateLimitReply reply) { rate_reply_ = std::move(reply); }
  void answer(ReplayReply reply) { replay_reply_ = std::move(reply); }
  /// The decision, once advance() answered kDone.
  ChainResult& result() { return result_; }

 private:
  RequestView request_;
  const CompiledTrigger& trigger_;
  ChainResult result_;
  std::size_t next_stage_ = 0;
  bool failed_ = false;  // monitor mode: a stage would have rejected
  RateLimitQuery rate_query_;
  std::optional<RateLimitReply> rate_reply_;
  ReplayQuestion replay_question_;
  std::optional<ReplayReply> replay_reply_;
};

/// Runs stages 0b-4 of DESIGN §2 and the handshake, event and replay stages of §4 for a
/// resolved, enabled trigger, asking the blocking store methods. Stops at the first reject in
/// enforce mode; runs every stage in monitor mode (the handshake is answered in both). Calls
/// each store at most once.
ChainResult run_chain(const RequestView& request, const CompiledTrigger& trigger,
                      RateLimitStore& store, ReplayStore& replays);

/// The Redis key for a request's rate-limit bucket: per trigger, or per trigger and source
/// (IPv6 aggregated to /64). The `{t<id>}` hash tag keeps a trigger's keys on one cluster slot.
std::string rate_limit_key(const CompiledTrigger& trigger, const IpAddress& source_ip);

}  // namespace hookguard::policy
