#include "admin-api/admin_server.h"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "admin-api/api_reply.h"
#include "admin-api/audit_log.h"
#include "admin-api/auth.h"
#include "admin-api/events_api.h"
#include "admin-api/openapi.h"
#include "admin-api/pg_session.h"
#include "admin-api/routes.h"
#include "admin-api/stats_api.h"
#include "admin-api/triggers_api.h"

namespace hookguard::admin {

namespace {

using namespace Pistache;

// Pistache 0.0.5 writes only typed headers into a response (raw ones are silently dropped).
class NamedHeader final : public Http::Header::Header {
 public:
  NamedHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  // A hash no built-in header has, so Pistache's checked casts never mistake this for one.
  std::uint64_t hash() const override { return Http::Header::detail::hash(name_.c_str()) ^ 1; }
  void parse(const std::string& data) override { value_ = data; }
  void write(std::ostream& os) const override { os << value_; }

 private:
  std::string name_, value_;
};

std::string host_for_pistache(const std::string& address, int port) {
  std::string host = address;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(port);
}

std::optional<std::string> authorization_of(const Http::Request& req) {
  if (auto typed = req.headers().tryGet<Http::Header::Authorization>()) {
    std::ostringstream value;
    typed->write(value);
    return value.str();
  }
  if (auto raw = req.headers().tryGetRaw("Authorization")) return raw->value();
  return std::nullopt;
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

class AdminHandler final : public Http::Handler {
 public:
  HTTP_PROTOTYPE(AdminHandler)

  explicit AdminHandler(std::function<void(const Http::Request&, Http::ResponseWriter)> handle)
      : handle_(std::move(handle)) {}

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
    Address addr(host_for_pistache(impl->options.address, impl->options.port));
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
