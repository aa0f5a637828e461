#include "gateway/ingress.h"

#include <chrono>
#include <memory>

#include "gateway/source_ip.h"
#include "gateway/upstream_request.h"
#include "policy/chain.h"
#include "policy/encoding.h"
#include "policy/outcome.h"
#include "policy/request_view.h"

namespace hookguard::gateway {

namespace {

using policy::Outcome;

constexpr std::string_view kWebhookPrefix = "/webhooks/";

// Headers that carry a delivery id or an event type, in the order they are looked for.
constexpr std::string_view kDeliveryIdHeaders[] = {"X-GitHub-Delivery", "webhook-id", "svix-id",
                                                   "X-Webhook-Delivery-Id", "X-Request-Id"};
constexpr std::string_view kEventTypeHeaders[] = {"X-GitHub-Event", "X-Webhook-Event",
                                                  "X-Event-Type", "X-Shopify-Topic"};

std::optional<std::string> first_header(const policy::HeaderList& headers,
                                        std::initializer_list<std::string_view> names) {
  for (auto name : names) {
    if (auto v = headers.get(name)) return std::string(*v);
  }
  return std::nullopt;
}

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

// Everything the answer and the log row need, shared with the forwarder's callback.
struct Exchange {
  InboundRequest request;
  Ingress::Respond respond;
  db::AuditRow row;
  std::string trigger_name;
  Metrics* metrics = nullptr;
  std::function<void(db::AuditRow)> audit;
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
    respond(std::move(response));
    if (metrics) metrics->record(trigger_name, outcome, static_cast<double>(total_us) / 1e6);
    if (audit) audit(std::move(row));
  }

  void reject(Outcome outcome, std::optional<std::string> error = {}) {
    const auto& info = policy::outcome_info(outcome);
    OutboundResponse response;
    response.status = info.http_status;
    response.headers.add("Content-Type", "application/json");
    response.body = error_body(info.name, info.message, row.request_id);
    finish(outcome, std::move(response), std::move(error));
  }
};

}  // namespace

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

void Ingress::handle(InboundRequest request, Respond respond) const {
  auto ex = std::make_shared<Exchange>();
  ex->respond = std::move(respond);
  ex->metrics = deps_.metrics;
  ex->audit = deps_.audit;
  auto& row = ex->row;
  row.created_unix_us = request.arrived_unix_ms * 1000;
  row.request_id = policy::generate_uuid_v4();
  row.method = request.method;
  row.payload_size_bytes = static_cast<std::int64_t>(request.body.size());
  row.peer_ip = request.peer;
  if (auto ua = request.headers.get("User-Agent")) row.user_agent = std::string(*ua);
  row.delivery_id = first_header(request.headers, {kDeliveryIdHeaders[0], kDeliveryIdHeaders[1],
                                                   kDeliveryIdHeaders[2], kDeliveryIdHeaders[3]});
  row.event_type = first_header(request.headers, {kEventTypeHeaders[0], kEventTypeHeaders[1],
                                                  kEventTypeHeaders[2], kEventTypeHeaders[3]});

  auto peer = parse_peer_address(request.peer);
  if (!peer) {
    row.peer_ip.reset();
    ex->request = std::move(request);
    return ex->reject(Outcome::kBadRequest, "unparseable peer address");
  }
  const auto source =
      resolve_source_ip(*peer, joined_forwarded_for(request.headers), deps_.trusted_proxies);
  row.source_ip = source.to_string();
  row.peer_ip = peer->to_string();

  // Stage 0: resolve the trigger by key. Unknown and disabled look the same from outside.
  std::string_view target = request.target;
  std::string_view key, suffix;
  if (target.substr(0, kWebhookPrefix.size()) == kWebhookPrefix) {
    auto rest = target.substr(kWebhookPrefix.size());
    auto slash = rest.find('/');
    key = rest.substr(0, slash);
    if (slash != std::string_view::npos) suffix = rest.substr(slash);
  }
  row.webhook_key = std::string(key.substr(0, deps_.limits.max_key_bytes));
  if (deps_.draining && deps_.draining->load()) {
    ex->request = std::move(request);
    return ex->reject(Outcome::kShuttingDown);
  }
  policy::TriggerPtr trigger;
  if (!key.empty() && key.size() <= deps_.limits.max_key_bytes) trigger = deps_.cache->find(key);
  if (trigger) row.trigger_id = trigger->spec.id;
  if (!trigger || !trigger->spec.enabled) {
    ex->request = std::move(request);
    return ex->reject(Outcome::kNotFound, trigger ? "trigger disabled" : "unknown key");
  }
  ex->trigger_name = trigger->spec.name;

  // The HTTP library puts no bound on header count or size below its whole-request limit.
  std::size_t header_bytes = 0;
  for (const auto& [n, v] : request.headers.fields()) header_bytes += n.size() + v.size() + 4;
  if (request.headers.size() > deps_.limits.max_header_fields ||
      header_bytes > deps_.limits.max_header_bytes) {
    ex->request = std::move(request);
    return ex->reject(Outcome::kBadRequest, "too many or too large request headers");
  }

  policy::RequestView view;
  view.method = request.method;
  view.headers = &request.headers;
  view.body = request.body;
  view.content_length = request.content_length;
  view.source_ip = source;
  view.now_unix_ms = request.arrived_unix_ms;
  auto result = policy::run_chain(view, *trigger, *deps_.rate_limits);

  row.hmac_verified = result.hmac_verified;
  row.ip_allowed = result.ip_allowed;
  row.rate_limited = result.rate_limited;
  row.monitor = result.monitor_override;
  if (!result.detail.empty()) row.error_message = result.detail;
  ex->extra_headers = std::move(result.response_headers);
  if (result.monitor_override) row.outcome = std::string(policy::outcome_name(result.outcome));

  if (!result.forward) {
    ex->request = std::move(request);
    return ex->reject(result.outcome);
  }

  ForwardContext fwd{row.source_ip.value_or(""), row.request_id, result.hmac_verified};
  auto upstream = build_upstream_request(request.method, request.headers, std::move(request.body),
                                         suffix, request.query, *trigger, fwd);
  ex->request = std::move(request);
  if (!upstream) return ex->reject(Outcome::kBadRequest, upstream.error().message);

  deps_.forwarder->submit(std::move(*upstream), [ex](UpstreamResult r) {
    ex->row.upstream_ms = r.elapsed_ms;
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
