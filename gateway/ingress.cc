#include "gateway/ingress.h"

#include <chrono>
#include <memory>

#include "gateway/source_ip.h"
#include "gateway/upstream_request.h"
#include "policy/chain.h"
#include "policy/delivery.h"
#include "policy/encoding.h"
#include "policy/outcome.h"
#include "policy/request_view.h"

namespace hookguard::gateway {

namespace {

using policy::Outcome;

constexpr std::string_view kWebhookPrefix = "/webhooks/";

// Stands in when no replay store is wired: every question is a store error, so replay fails
// open (and says so in the log) instead of silently passing.
class NoReplayStore final : public policy::ReplayStore {
 public:
  policy::ReplayReply reserve(const std::string&, const std::string&, std::int64_t) override {
    policy::ReplayReply reply;
    reply.error = "no replay store configured";
    return reply;
  }
  Result<void> complete(const std::string&, std::int64_t) override {
    return fail("replay_store_error", "no replay store configured");
  }
  Result<void> release(const std::string&, const std::string&) override {
    return fail("replay_store_error", "no replay store configured");
  }
};

void json_escape_into(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

}  // namespace

// Everything the answer and the log row need, shared with the store and forwarder callbacks.
struct Exchange {
  InboundRequest request;
  policy::TriggerPtr trigger;
  std::string_view suffix;              // into request.target: the path after the key
  std::optional<policy::ChainRun> run;  // the checks, resumed as the stores answer
  Ingress::Respond respond;
  db::AuditRow row;
  std::string trigger_name;
  Metrics* metrics = nullptr;
  AuditSink audit;
  policy::HeaderList extra_headers;  // RateLimit-*, Retry-After

  // Sends the answer and writes the one log row for this request.
  void finish(Outcome outcome, OutboundResponse response, std::optional<std::string> error = {}) {
    const auto total_us = steady_now_us() - request.arrived_steady_us;
    response.headers.set("X-Request-Id", row.request_id);
    for (const auto& [name, value] : extra_headers.fields()) response.headers.set(name, value);
    row.status_code = response.status;
    if (!row.monitor || row.outcome.empty())
      row.outcome = std::string(policy::outcome_name(outcome));
    if (error && !row.error_message) row.error_message = std::move(error);
    row.processing_time_ms = static_cast<int>(total_us / 1000);
    if (metrics) metrics->record(trigger_name, outcome, static_cast<double>(total_us) / 1e6);
    if (audit.write_then) {
      // audit.durability: strict. The answer is ready; it leaves once its row is durable.
      audit.write_then(std::move(row),
                       [send = std::move(respond), answer = std::move(response)]() mutable {
                         send(std::move(answer));
                       });
      return;
    }
    respond(std::move(response));
    if (audit.write) audit.write(std::move(row));
  }

  void reject(Outcome outcome, std::optional<std::string> error = {}) {
    const auto& info = policy::outcome_info(outcome);
    OutboundResponse response;
    response.status = info.http_status;
    response.headers.add("Content-Type", "application/json");
    response.body = error_body(info.name, info.message, row.request_id);
    finish(outcome, std::move(response), std::move(error));
  }

  // The 200 answers of DESIGN §4 that end a request without forwarding it.
  void answer(Outcome outcome, std::string_view challenge) {
    OutboundResponse response;
    response.status = policy::outcome_info(outcome).http_status;
    response.headers.add("Content-Type", "application/json");
    if (outcome == Outcome::kChallenge) {
      response.body = "{\"challenge\":\"";
      json_escape_into(response.body, challenge);
      response.body += "\"}";
    } else {
      response.body = "{\"status\":\"" + std::string(policy::outcome_name(outcome)) + "\"}";
    }
    finish(outcome, std::move(response));
  }

  void note(std::string_view text) {
    if (!row.error_message || row.error_message->empty()) {
      row.error_message = std::string(text);
    } else {
      *row.error_message += "; ";
      *row.error_message += text;
    }
  }

  // Settles this request's replay reservation once the upstream has answered (or not): an
  // accepted delivery (2xx-4xx: retrying would not change a 4xx) is marked done for the window;
  // a failed one is released so that the sender's retry is forwarded. Runs before the answer
  // is sent, so a sender retrying at once never finds its own stale reservation.
  void settle_replay(bool delivered) {
    if (!replay || !replays) return;
    const auto settled = delivered ? replays->complete(replay->key, replay->window_ms)
                                   : replays->release(replay->key, replay->token);
    if (!settled) note("replay_store_error: " + settled.error().message);
    replay.reset();
  }

  std::optional<policy::ReplayReservation> replay;
  policy::ReplayStore* replays = nullptr;
};

std::int64_t steady_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string error_body(std::string_view outcome, std::string_view message,
                       std::string_view request_id) {
  std::string out = "{\"error\":\"";
  json_escape_into(out, outcome);
  out += "\",\"message\":\"";
  json_escape_into(out, message);
  out += "\",\"request_id\":\"";
  json_escape_into(out, request_id);
  out += "\"}";
  return out;
}

void Ingress::handle(InboundRequest inbound, Respond respond) const {
  auto ex = std::make_shared<Exchange>();
  // The exchange owns the request from here on: the chain's view points into it while the
  // stores answer, possibly on another thread.
  ex->request = std::move(inbound);
  const InboundRequest& request = ex->request;
  ex->respond = std::move(respond);
  ex->metrics = deps_.metrics;
  ex->audit = deps_.audit;
  auto& row = ex->row;
  row.created_unix_us = request.arrived_unix_ms * 1000;
  row.request_id = policy::generate_uuid_v7(request.arrived_unix_ms);
  row.method = request.method;
  row.payload_size_bytes = static_cast<std::int64_t>(request.body.size());
  row.peer_ip = request.peer;
  if (auto ua = request.headers.get("User-Agent")) row.user_agent = std::string(*ua);

  auto peer = parse_peer_address(request.peer);
  if (!peer) {
    row.peer_ip.reset();
    return ex->reject(Outcome::kBadRequest, "unparseable peer address");
  }
  const auto source =
      resolve_source_ip(*peer, joined_forwarded_for(request.headers), deps_.trusted_proxies);
  row.peer_ip = peer->to_string();
  // Without a trusted proxy in front they are the same address: format it once.
  row.source_ip = source == *peer ? *row.peer_ip : source.to_string();

  // Stage 0: resolve the trigger by key. Unknown and disabled look the same from outside.
  std::string_view target = request.target;
  std::string_view key;
  if (target.substr(0, kWebhookPrefix.size()) == kWebhookPrefix) {
    auto rest = target.substr(kWebhookPrefix.size());
    auto slash = rest.find('/');
    key = rest.substr(0, slash);
    if (slash != std::string_view::npos) ex->suffix = rest.substr(slash);
  }
  row.webhook_key = std::string(key.substr(0, deps_.limits.max_key_bytes));
  if (deps_.draining && deps_.draining->load()) return ex->reject(Outcome::kShuttingDown);
  policy::TriggerPtr trigger;
  if (!key.empty() && key.size() <= deps_.limits.max_key_bytes) trigger = deps_.cache->find(key);
  if (trigger) row.trigger_id = trigger->spec.id;
  if (!trigger || !trigger->spec.enabled) {
    return ex->reject(Outcome::kNotFound, trigger ? "trigger disabled" : "unknown key");
  }
  ex->trigger_name = trigger->spec.name;
  // Where the trigger says to find them: every row of a known trigger carries them when sent.
  row.delivery_id = policy::delivery_id(trigger->spec.policy, request.headers);
  row.event_type =
      policy::header_event_type(policy::event_source(trigger->spec.policy), request.headers);

  // The HTTP library puts no bound on header count or size below its whole-request limit.
  std::size_t header_bytes = 0;
  for (const auto& [n, v] : request.headers.fields()) header_bytes += n.size() + v.size() + 4;
  if (request.headers.size() > deps_.limits.max_header_fields ||
      header_bytes > deps_.limits.max_header_bytes) {
    return ex->reject(Outcome::kBadRequest, "too many or too large request headers");
  }

  policy::RequestView view;
  view.method = request.method;
  view.headers = &request.headers;
  view.body = request.body;
  view.content_length = request.content_length;
  view.source_ip = source;
  view.now_unix_ms = request.arrived_unix_ms;
  view.request_id = row.request_id;
  ex->trigger = std::move(trigger);
  ex->run.emplace(view, *ex->trigger);
  run_chain(std::move(ex));
}

policy::ReplayStore& Ingress::replay_store() const {
  static NoReplayStore no_replays;
  return deps_.replays ? *deps_.replays : no_replays;
}

// Advances the chain; a stage that needs Redis is asked without blocking this thread, and the
// answer resumes the chain on whichever thread it arrives (the store's pipeline thread).
void Ingress::run_chain(std::shared_ptr<Exchange> ex) const {
  auto& run = *ex->run;
  switch (run.advance()) {
    case policy::ChainRun::Step::kNeedRateLimit:
      return deps_.rate_limits->hit_async(run.rate_query(),
                                          [this, ex](policy::RateLimitReply reply) mutable {
                                            ex->run->answer(std::move(reply));
                                            run_chain(std::move(ex));
                                          });
    case policy::ChainRun::Step::kNeedReplay: {
      const auto& q = run.replay_question();
      return replay_store().reserve_async(q.key, q.token, q.pending_ttl_ms,
                                          [this, ex](policy::ReplayReply reply) mutable {
                                            ex->run->answer(std::move(reply));
                                            run_chain(std::move(ex));
                                          });
    }
    case policy::ChainRun::Step::kDone:
      return conclude(std::move(ex));
  }
}

// Logs what the chain decided, then answers or forwards.
void Ingress::conclude(std::shared_ptr<Exchange> ex) const {
  auto& result = ex->run->result();
  auto& row = ex->row;
  auto& request = ex->request;
  if (result.event_type) row.event_type = result.event_type;
  ex->replay = std::move(result.replay);
  ex->replays = &replay_store();

  row.hmac_verified = result.hmac_verified;
  row.ip_allowed = result.ip_allowed;
  row.rate_limited = result.rate_limited;
  row.monitor = result.monitor_override;
  if (!result.detail.empty()) row.error_message = result.detail;
  ex->extra_headers = std::move(result.response_headers);
  if (result.monitor_override) row.outcome = std::string(policy::outcome_name(result.outcome));

  if (!result.forward) {
    switch (result.outcome) {
      case Outcome::kDuplicate:
      case Outcome::kFiltered:
      case Outcome::kChallenge:
        return ex->answer(result.outcome, result.challenge);
      default:
        return ex->reject(result.outcome);
    }
  }

  ForwardContext fwd{row.source_ip.value_or(""), row.request_id, result.hmac_verified};
  auto upstream = build_upstream_request(request.method, request.headers, std::move(request.body),
                                         ex->suffix, request.query, *ex->trigger, fwd);
  if (!upstream) {
    ex->settle_replay(false);
    return ex->reject(Outcome::kBadRequest, upstream.error().message);
  }

  deps_.forwarder->submit(std::move(*upstream), [ex](UpstreamResult r) {
    ex->row.upstream_ms = r.elapsed_ms;
    ex->settle_replay(r.kind == UpstreamResult::Kind::kOk && r.status < 500);
    switch (r.kind) {
      case UpstreamResult::Kind::kOk: {
        ex->row.upstream_status = r.status;
        OutboundResponse response;
        response.status = r.status;
        response.headers = std::move(r.headers);
        response.body = std::move(r.body);
        return ex->finish(Outcome::kForwarded, std::move(response));
      }
      case UpstreamResult::Kind::kTimeout:
        return ex->reject(Outcome::kUpstreamTimeout, r.error);
      case UpstreamResult::Kind::kDenied:
        return ex->reject(Outcome::kUpstreamDenied, r.error);
      case UpstreamResult::Kind::kBusy:
        return ex->reject(Outcome::kUpstreamBusy, r.error);
      case UpstreamResult::Kind::kShuttingDown:
        return ex->reject(Outcome::kShuttingDown, r.error);
      case UpstreamResult::Kind::kTooLarge:
      case UpstreamResult::Kind::kConnectError:
        return ex->reject(Outcome::kUpstreamError, r.error);
    }
  });
}

}  // namespace hookguard::gateway
