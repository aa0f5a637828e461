#include "admin-api/admin_server.h"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>
#include <string_view>

#include "admin-api/api_reply.h"
#include "admin-api/audit_log.h"
#include "admin-api/auth.h"
#include "admin-api/events_api.h"
#include "admin-api/openapi.h"
#include "admin-api/pg_session.h"
#include "admin-api/routes.h"
#include "admin-api/stats_api.h"
#include "admin-api/triggers_api.h"
#include "http/bounded_head_handler.h"
#include "http/listen_address.h"
#include "http/named_header.h"

namespace hookguard::admin {

namespace {

using namespace Pistache;

using http::NamedHeader;

std::optional<std::string> authorization_of(const Http::Request& req) {
  if (auto typed = req.headers().tryGet<Http::Header::Authorization>()) {
    std::ostringstream value;
    typed->write(value);
    return value.str();
  }
  if (auto raw = req.headers().tryGetRaw("Authorization")) return raw->value();
  return std::nullopt;
}

std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string lower_ascii(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Request bodies are JSON, which is UTF-8 (RFC 8259 §8.1). A form, multipart or text body is
// refused before parsing, whatever it holds, so no other media type is ever read as JSON. The
// charset is read from the raw value: Pistache matches parameter names case-sensitively and
// keeps only the first of two.
Result<void> check_json_content_type(const Http::Request& req) {
  const auto type = req.headers().tryGet<Http::Header::ContentType>();
  if (!type) {
    return fail("unsupported_media_type", "Content-Type: required with a body (application/json)",
                "Content-Type");
  }
  const auto& mime = type->mime();
  if (mime.top() != Http::Mime::Type::Application || mime.sub() != Http::Mime::Subtype::Json ||
      mime.suffix() != Http::Mime::Suffix::None) {
    return fail("unsupported_media_type", "Content-Type: expected application/json",
                "Content-Type");
  }
  const std::string raw = mime.raw();
  std::string_view params = raw;
  params.remove_prefix(std::min(params.size(), params.find(';')));
  while (!params.empty()) {
    params.remove_prefix(1);  // the ';'
    const std::string_view param = params.substr(0, params.find(';'));
    params.remove_prefix(param.size());
    const auto eq = param.find('=');
    if (eq == std::string_view::npos || lower_ascii(trim_ows(param.substr(0, eq))) != "charset") {
      continue;
    }
    std::string_view value = trim_ows(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    const std::string charset = lower_ascii(value);
    if (charset != "utf-8" && charset != "utf8") {
      return fail("unsupported_media_type", "Content-Type: only charset=utf-8 is accepted",
                  "Content-Type");
    }
  }
  return {};
}

bool takes_json_body(Endpoint endpoint) {
  return endpoint == Endpoint::kCreateTrigger || endpoint == Endpoint::kPatchTrigger ||
         endpoint == Endpoint::kRotateSecret;
}

void send_reply(Http::ResponseWriter& response, const ApiReply& reply, bool close) {
  // Pistache answers HTTP/1.1 clients without a Connection header with "Close": say it ourselves.
  response.headers().remove<Http::Header::Connection>();
  response.headers().add<Http::Header::Connection>(close ? Http::ConnectionControl::Close
                                                         : Http::ConnectionControl::KeepAlive);
  response.headers().add<Http::Header::CacheControl>(Http::CacheDirective::NoStore);
  for (const auto& [name, value] : reply.headers) {
    response.headers().add(std::make_shared<NamedHeader>(name, value));
  }
  const auto code = static_cast<Http::Code>(reply.status);
  if (reply.status == 204) {
    response.send(code);
  } else if (reply.text) {
    response.send(code, *reply.text, Http::Mime::MediaType::fromString(reply.text_type));
  } else {
    response.send(code,
                  reply.json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace),
                  MIME(Application, Json));
  }
}

}  // namespace

struct AdminServer::Impl {
  AdminOptions options;
  AdminDeps deps;
  std::unique_ptr<TokenAuth> auth;
  std::unique_ptr<PgSession> session;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<TriggersApi> triggers;
  std::unique_ptr<StatsApi> stats;
  std::unique_ptr<EventsApi> events;
  std::unique_ptr<Http::Endpoint> endpoint;

  void build() {
    auth = std::make_unique<TokenAuth>(options.token);
    if (options.dsn.empty() || !options.secret_box) return;
    session = std::make_unique<PgSession>(options.dsn);
    audit = std::make_unique<AuditLog>(*session, options.actor);
    triggers = std::make_unique<TriggersApi>(options.dsn, *options.secret_box, options.limits,
                                             *audit, options.default_previous_valid_ms);
    stats = std::make_unique<StatsApi>(*session);
    events = std::make_unique<EventsApi>(*session);
  }

  ApiReply healthz() { return json_reply(200, {{"status", "ok"}}); }

  ApiReply readyz() {
    auto checks = deps.readiness ? deps.readiness() : std::vector<ReadinessCheck>{};
    nlohmann::ordered_json body = {{"status", "ready"},
                                   {"checks", nlohmann::ordered_json::object()}};
    std::vector<std::string> failing;
    for (const auto& c : checks) {
      body["checks"][c.name] = c.ok ? "ok" : "unavailable";
      if (!c.ok) failing.push_back(c.name);
    }
    if (failing.empty()) return json_reply(200, std::move(body));
    body["status"] = "not_ready";
    body["failing"] = failing;
    return json_reply(503, std::move(body));
  }

  ApiReply text(std::string body, std::string type) {
    ApiReply reply;
    reply.text = std::move(body);
    reply.text_type = std::move(type);
    return reply;
  }

  ApiReply dispatch(Endpoint endpoint, const ApiRequest& request) {
    switch (endpoint) {
      case Endpoint::kHealthz:
        return healthz();
      case Endpoint::kReadyz:
        return readyz();
      case Endpoint::kMetrics:
        return text(deps.metrics_text ? deps.metrics_text() : "",
                    "text/plain; version=0.0.4; charset=utf-8");
      case Endpoint::kOpenApi:
        return text(std::string(openapi_yaml()), "application/yaml");
      default:
        break;
    }
    if (!triggers) return error_reply("not_configured", "admin API has no database configured");
    switch (endpoint) {
      case Endpoint::kListTriggers:
        return triggers->list(request);
      case Endpoint::kCreateTrigger:
        return triggers->create(request);
      case Endpoint::kGetTrigger:
        return triggers->get(request);
      case Endpoint::kPatchTrigger:
        return triggers->patch(request);
      case Endpoint::kDeleteTrigger:
        return triggers->remove(request);
      case Endpoint::kRotateSecret:
        return triggers->rotate(request);
      case Endpoint::kTriggerStats:
        return stats->one(request);
      case Endpoint::kStats:
        return stats->all(request);
      case Endpoint::kEvents:
        return events->list(request);
      default:
        return error_reply("internal", "unhandled endpoint");
    }
  }

  ApiReply route(const Http::Request& req) {
    const std::string method = Http::methodString(req.method());
    const std::string path = req.resource();
    const bool authorized = auth->check(authorization_of(req));
    // Unknown paths under /api/ reveal nothing to a caller without the token.
    const bool api_path = path.rfind("/api/", 0) == 0;
    auto match = match_route(method, path);
    if (std::holds_alternative<NoRoute>(match)) {
      if (api_path && !authorized) return unauthorized_reply();
      return error_reply("not_found", "no such route");
    }
    if (auto* other = std::get_if<MethodNotAllowed>(&match)) {
      if (api_path && !authorized) return unauthorized_reply();
      ApiReply reply = error_reply("method_not_allowed", method + " is not allowed here");
      std::string allow;
      for (const auto& m : other->allowed) allow += (allow.empty() ? "" : ", ") + m;
      reply.headers.emplace_back("Allow", allow);
      return reply;
    }
    auto& found = std::get<RouteMatch>(match);
    if (found.route->authenticated && !authorized) return unauthorized_reply();
    // Pistache has buffered the body already (bounded by maxRequestSize); this is the API's
    // own, smaller limit, checked before any parsing.
    if (req.body().size() > options.max_body_bytes) {
      return error_reply(
          "payload_too_large",
          "request body is larger than " + std::to_string(options.max_body_bytes) + " bytes");
    }
    // An empty body is no body (rotate takes none): only a body has to be JSON.
    if (takes_json_body(found.route->endpoint) && !req.body().empty()) {
      if (auto ok = check_json_content_type(req); !ok) return error_reply(ok.error());
    }
    ApiRequest request;
    request.params = std::move(found.params);
    request.body = req.body();
    const auto& query = req.query();
    for (auto it = query.parameters_begin(); it != query.parameters_end(); ++it) {
      auto name = percent_decode(it->first);
      auto value = percent_decode(it->second);
      if (!name || !value) {
        return error_reply("invalid_request", "query: malformed percent-encoding", "query");
      }
      request.query.emplace_back(std::move(*name), std::move(*value));
    }
    return dispatch(found.route->endpoint, request);
  }

  void handle(const Http::Request& req, Http::ResponseWriter response) {
    ApiReply reply;
    try {
      reply = route(req);
    } catch (const std::exception& e) {
      reply = error_reply("internal", std::string("unhandled exception: ") + e.what());
    }
    bool close = false;
    if (auto conn = req.headers().tryGet<Http::Header::Connection>()) {
      close = conn->control() == Http::ConnectionControl::Close;
    }
    if (reply.status >= 500 || reply.status == 401) {
      spdlog::warn("admin api: {} {} -> {}", Http::methodString(req.method()), req.resource(),
                   reply.status);
    }
    send_reply(response, reply, close);
  }
};

namespace {

// Request line and headers while they arrive; the API's own bodies are bounded separately.
constexpr std::size_t kMaxRequestHeadBytes = 64 * 1024;

class AdminHandler final : public http::BoundedHeadHandler {
 public:
  HTTP_PROTOTYPE(AdminHandler)

  explicit AdminHandler(std::function<void(const Http::Request&, Http::ResponseWriter)> handle)
      : BoundedHeadHandler(kMaxRequestHeadBytes), handle_(std::move(handle)) {}

  void onRequest(const Http::Request& req, Http::ResponseWriter response) override {
    handle_(req, std::move(response));
  }

 private:
  std::function<void(const Http::Request&, Http::ResponseWriter)> handle_;
};

}  // namespace

AdminServer::AdminServer(AdminOptions options, AdminDeps deps) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->deps = std::move(deps);
  impl_->build();
}

AdminServer::~AdminServer() { stop(); }

Result<void> AdminServer::start() {
  Impl* impl = impl_.get();
  try {
    Address addr(http::listen_address_text(impl->options.address, impl->options.port));
    impl->endpoint = std::make_unique<Http::Endpoint>(addr);
    // The library's own 413 (plain text) only hits bodies well past the API's JSON 413.
    impl->endpoint->init(Http::Endpoint::options()
                             .threads(1)
                             .flags(Tcp::Options::ReuseAddr)
                             .maxRequestSize(2 * impl->options.max_body_bytes + 16384)
                             .headerTimeout(std::chrono::seconds(10))
                             .bodyTimeout(std::chrono::seconds(30))
                             .keepaliveTimeout(std::chrono::seconds(30)));
    impl->endpoint->setHandler(Http::make_handler<AdminHandler>(
        [impl](const Http::Request& req, Http::ResponseWriter response) {
          impl->handle(req, std::move(response));
        }));
    impl->endpoint->serveThreaded();
  } catch (const std::exception& e) {
    impl->endpoint.reset();
    return fail("listen_failed", "admin " + impl->options.address + ":" +
                                     std::to_string(impl->options.port) + ": " + e.what());
  }
  return {};
}

std::uint16_t AdminServer::port() const {
  return impl_->endpoint ? static_cast<std::uint16_t>(impl_->endpoint->getPort()) : 0;
}

void AdminServer::stop() {
  if (!impl_ || !impl_->endpoint) return;
  try {
    impl_->endpoint->shutdown();
  } catch (const std::exception&) {
  }
  impl_->endpoint.reset();
}

}  // namespace hookguard::admin
