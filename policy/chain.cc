#include "policy/chain.h"

#include <algorithm>
#include <array>

#include "policy/delivery.h"
#include "policy/encoding.h"
#include "policy/signature.h"

namespace hookguard::policy {
namespace {

using Step = ChainRun::Step;

// What one stage decided: pass, the outcome enforce mode answers with, or that it needs a
// store's answer first (and runs again once it has it). Stages record their log flags in the
// ChainResult; they never answer, log, count or do I/O.
struct Decision {
  bool pass = true;
  Outcome outcome = Outcome::kForwarded;
  std::string note;  // for ChainResult::detail; never secrets
  Step need = Step::kDone;
};

Decision pass_with(std::string note = {}) { return {true, Outcome::kForwarded, std::move(note)}; }
Decision reject(Outcome outcome, std::string note) { return {false, outcome, std::move(note)}; }
Decision need(Step step) { return {true, Outcome::kForwarded, {}, step}; }

// A stage's view of the run: the request, and the store answers so far. A stage that needs a
// store writes its question and returns need(); it runs again once the answer is in.
struct StageInput {
  const RequestView& request;
  const HeaderList& headers;
  const CompiledTrigger& trigger;
  const std::optional<RateLimitReply>& rate_reply;
  const std::optional<ReplayReply>& replay_reply;
  RateLimitQuery& rate_query;
  ReplayQuestion& replay_question;
};

using StageFn = Decision (*)(const StageInput&, ChainResult&);

Decision check_method(const StageInput& in, ChainResult&) {
  if (in.trigger.allows_method(in.request.method)) return pass_with();
  return reject(Outcome::kMethodNotAllowed, "method_not_allowed");
}

Decision check_size(const StageInput& in, ChainResult&) {
  const std::uint64_t limit =
      static_cast<std::uint64_t>(in.trigger.spec.policy.payload_size_limit_kb) * 1024;
  if (in.request.content_length && *in.request.content_length > limit) {
    return reject(Outcome::kPayloadTooLarge, "payload_too_large: content-length " +
                                                 std::to_string(*in.request.content_length) +
                                                 " > " + std::to_string(limit));
  }
  if (in.request.body.size() > limit) {
    return reject(Outcome::kPayloadTooLarge, "payload_too_large: body " +
                                                 std::to_string(in.request.body.size()) + " > " +
                                                 std::to_string(limit));
  }
  return pass_with();
}

Decision check_ip(const StageInput& in, ChainResult& result) {
  if (!in.trigger.spec.policy.ip_allowlist.enabled) return pass_with();
  const bool allowed = in.trigger.allowlist.contains(in.request.source_ip);
  result.ip_allowed = allowed;
  if (allowed) return pass_with();
  return reject(Outcome::kIpDenied, "ip_denied: " + in.request.source_ip.to_string());
}

void add_rate_headers(HeaderList& headers, std::int64_t limit, std::int64_t remaining,
                      std::int64_t reset) {
  headers.set("RateLimit-Limit", std::to_string(limit));
  headers.set("RateLimit-Remaining", std::to_string(remaining));
  headers.set("RateLimit-Reset", std::to_string(reset));
}

Decision check_rate(const StageInput& in, ChainResult& result) {
  const auto& rate = in.trigger.spec.policy.rate_limit;
  if (!rate.enabled) return pass_with();
  if (!in.rate_reply) {
    in.rate_query = RateLimitQuery{rate_limit_key(in.trigger, in.request.source_ip), rate.requests,
                                   rate.window_seconds};
    return need(Step::kNeedRateLimit);
  }
  const RateLimitReply& reply = *in.rate_reply;
  const std::int64_t limit = reply.limit > 0 ? reply.limit : rate.requests;
  switch (reply.kind) {
    case RateLimitReply::Kind::kAllowed:
      add_rate_headers(result.response_headers, limit, std::max<std::int64_t>(reply.remaining, 0),
                       std::max<std::int64_t>(reply.reset_seconds, 1));
      return pass_with();
    case RateLimitReply::Kind::kLimited: {
      result.rate_limited = true;
      const std::int64_t retry_after = std::max<std::int64_t>(reply.retry_after_seconds, 1);
      const std::int64_t reset = reply.reset_seconds > 0 ? reply.reset_seconds : retry_after;
      add_rate_headers(result.response_headers, limit, 0, reset);
      result.response_headers.set("Retry-After", std::to_string(retry_after));
      return reject(Outcome::kRateLimited,
                    "rate_limited: retry after " + std::to_string(retry_after) + "s");
    }
    case RateLimitReply::Kind::kStoreError:
      break;
  }
  result.rate_limit_store_error = true;
  std::string note = "rate_limit_store_error: " + reply.error;
  // DESIGN §2: on_store_error decides, like Envoy's failure_mode_allow.
  if (rate.on_store_error == StoreErrorMode::kOpen) return pass_with(std::move(note));
  return reject(Outcome::kRateLimitStoreError, std::move(note));
}

Decision check_hmac(const StageInput& in, ChainResult& result) {
  const auto& hmac = in.trigger.spec.policy.hmac;
  if (!hmac.enabled) return pass_with();
  const std::int64_t now_ms = in.request.now_unix_ms;
  // Floor division: a timestamp is compared in whole seconds, also before 1970 in tests.
  const std::int64_t now_s = now_ms >= 0 ? now_ms / 1000 : (now_ms - 999) / 1000;
  const auto status =
      verify_signature(hmac, in.headers, in.request.body, in.trigger.secrets_at(now_ms), now_s);
  result.hmac_verified = status == SignatureStatus::kValid;
  switch (status) {
    case SignatureStatus::kValid:
      return pass_with();
    case SignatureStatus::kMissing:
      return reject(Outcome::kSignatureMissing, "signature_missing: no " + signature_header(hmac));
    case SignatureStatus::kInvalid:
      break;
  }
  return reject(Outcome::kSignatureInvalid, "signature_invalid");
}

Decision check_handshake(const StageInput& in, ChainResult& result) {
  const auto handshake = in.trigger.spec.policy.handshake;
  if (handshake == Handshake::kNone) return pass_with();
  auto check = policy::check_handshake(handshake, in.request.body);
  switch (check.kind) {
    case HandshakeCheck::Kind::kNotHandshake:
      return pass_with();
    case HandshakeCheck::Kind::kBadChallenge:
      return reject(Outcome::kBadRequest, "handshake: challenge missing, empty or too long");
    case HandshakeCheck::Kind::kChallenge:
      break;
  }
  result.challenge = std::move(check.challenge);
  return reject(Outcome::kChallenge, "challenge: " + std::string(to_string(handshake)));
}

Decision check_events(const StageInput& in, ChainResult& result) {
  const auto& events = in.trigger.spec.policy.events;
  if (!events.enabled) return pass_with();
  const auto source = event_source(in.trigger.spec.policy);
  // A JSON source is parsed only here: after the signature, and only when the filter is on.
  if (source.kind == EventSource::Kind::kJson) {
    result.event_type = event_type(source, in.headers, in.request.body);
  }
  if (!result.event_type) return reject(Outcome::kFiltered, "filtered: no event type");
  if (std::find(events.allow.begin(), events.allow.end(), *result.event_type) ==
      events.allow.end()) {
    return reject(Outcome::kFiltered, "filtered: event type not allowed");
  }
  return pass_with();
}

Decision check_replay(const StageInput& in, ChainResult& result) {
  const auto& replay = in.trigger.spec.policy.replay;
  if (!replay.enabled) return pass_with();
  // Only a verified signature may record an id: a forged copy must not burn a real delivery.
  if (result.hmac_verified != true) return pass_with("replay: not checked, signature unverified");
  if (!result.delivery_id) return pass_with("replay: no delivery id");
  if (result.delivery_id->size() > DeliveryLimits::kMaxDeliveryIdBytes) {
    return reject(Outcome::kBadRequest, "replay: delivery id longer than " +
                                            std::to_string(DeliveryLimits::kMaxDeliveryIdBytes) +
                                            " bytes");
  }
  const std::int64_t pending_ms = in.trigger.spec.upstream_timeout_ms + kReplayPendingMarginMs;
  if (!in.replay_reply) {
    in.replay_question = ReplayQuestion{
        replay_key(in.trigger, *result.delivery_id),
        in.request.request_id.empty() ? generate_uuid_v4() : std::string(in.request.request_id),
        pending_ms};
    return need(Step::kNeedReplay);
  }
  const ReplayReply& reply = *in.replay_reply;
  switch (reply.kind) {
    case ReplayReply::Kind::kReserved:
      result.replay = ReplayReservation{in.replay_question.key, in.replay_question.token,
                                        replay.window_seconds * 1000};
      return pass_with();
    case ReplayReply::Kind::kDone:
      return reject(Outcome::kDuplicate, "duplicate: delivery already forwarded");
    case ReplayReply::Kind::kPending: {
      // 409, not 200: if the copy in flight fails, the sender must still have a retry left.
      const std::int64_t retry_after = std::clamp<std::int64_t>((reply.pending_ttl_ms + 999) / 1000,
                                                                1, (pending_ms + 999) / 1000);
      result.response_headers.set("Retry-After", std::to_string(retry_after));
      return reject(Outcome::kDeliveryInFlight, "delivery_in_flight: another copy is forwarding");
    }
    case ReplayReply::Kind::kStoreError:
      break;
  }
  // Fail open: a Redis outage must not stop deliveries; at worst a duplicate gets through.
  result.replay_store_error = true;
  return pass_with("replay_store_error: " + reply.error);
}

struct Stage {
  StageFn run;
  bool enforced_in_monitor_mode;
};

// DESIGN §2, stages 0b-4, then §4. Cheapest and least trusting first, so that every stage only
// spends work on requests the earlier ones let through.
constexpr std::array<Stage, 8> kStages{{
    {check_method, true},     // 0b: routing, not policy: a wrong method is never forwarded
    {check_size, false},      // 1: costs nothing, and caps what every later stage may touch
    {check_ip, false},        // 2: one lookup; an unlisted sender spends no Redis call and no hash
    {check_rate, false},      // 3: before HMAC so a flood costs one Redis call, not a body hash
    {check_hmac, false},      // 4: the dearest check (hashes the body), on what survived the rest
    {check_handshake, true},  // signed by the sender, so after HMAC; answered even in monitor mode
    {check_events, false},    // before replay: a filtered event must not record its delivery id
    {check_replay, false},    // last: records the id only for what will really be forwarded
}};

void append_detail(std::string& detail, const std::string& note) {
  if (note.empty()) return;
  if (!detail.empty()) detail += "; ";
  detail += note;
}

}  // namespace

ChainRun::ChainRun(const RequestView& request, const CompiledTrigger& trigger)
    : request_(request), trigger_(trigger) {}

ChainRun::Step ChainRun::advance() {
  try {
    static const HeaderList kNoHeaders;
    const StageInput input{request_,        request_.headers ? *request_.headers : kNoHeaders,
                           trigger_,        rate_reply_,
                           replay_reply_,   rate_query_,
                           replay_question_};
    if (next_stage_ == 0) {
      // Header reads only (no body parsing), so that every log row of this trigger carries them.
      result_.delivery_id = delivery_id(trigger_.spec.policy, input.headers);
      result_.event_type = header_event_type(event_source(trigger_.spec.policy), input.headers);
    }
    const bool monitor = trigger_.spec.mode == Mode::kMonitor;
    for (; next_stage_ < kStages.size(); ++next_stage_) {
      const Stage& stage = kStages[next_stage_];
      Decision decision = stage.run(input, result_);
      if (decision.need != Step::kDone) return decision.need;  // runs again with the answer
      append_detail(result_.detail, decision.note);
      if (decision.pass) continue;
      if (!monitor || stage.enforced_in_monitor_mode) {
        result_.outcome = decision.outcome;
        result_.forward = false;
        result_.monitor_override = false;
        next_stage_ = kStages.size();
        return Step::kDone;
      }
      // Monitor mode: remember the first would-be failure, keep running the rest.
      if (!failed_) result_.outcome = decision.outcome;
      failed_ = true;
      result_.monitor_override = true;
    }
    result_.forward = true;
    // The sender gets the upstream's answer, not our 429: a Retry-After on it would mislead.
    if (monitor && failed_) result_.response_headers.remove("Retry-After");
    return Step::kDone;
  } catch (...) {
    // Only allocation can throw here; refuse rather than forward an unchecked request.
    result_ = ChainResult{};
    result_.outcome = Outcome::kUpstreamBusy;
    result_.forward = false;
    result_.detail = "internal: chain failed";
    next_stage_ = kStages.size();
    return Step::kDone;
  }
}

ChainResult run_chain(const RequestView& request, const CompiledTrigger& trigger,
                      RateLimitStore& store, ReplayStore& replays) {
  ChainRun run(request, trigger);
  while (true) {
    switch (run.advance()) {
      case Step::kDone:
        return std::move(run.result());
      case Step::kNeedRateLimit:
        run.answer(hit_nothrow(store, run.rate_query()));
        break;
      case Step::kNeedReplay: {
        const auto& q = run.replay_question();
        run.answer(reserve_nothrow(replays, q.key, q.token, q.pending_ttl_ms));
        break;
      }
    }
  }
}

std::string rate_limit_key(const CompiledTrigger& trigger, const IpAddress& source_ip) {
  std::string key = "hg:rl:{t" + std::to_string(trigger.spec.id) + "}";
  if (!trigger.spec.policy.rate_limit.per_source_ip) return key;
  // One IPv6 host usually owns a whole /64; per-address buckets would be trivially evaded.
  const IpAddress bucket = source_ip.is_v4() ? source_ip : source_ip.masked(64);
  return key + ":" + bucket.to_string();
}

}  // namespace hookguard::policy
