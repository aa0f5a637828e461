#include "admin-api/routes.h"

namespace hookguard::admin {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.starts_with('/')) path.remove_prefix(1);
  while (true) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool match_path(std::string_view pattern, std::string_view path,
                std::map<std::string, std::string>& params) {
  const auto want = split_path(pattern);
  const auto got = split_path(path);
  if (want.size() != got.size()) return false;
  std::map<std::string, std::string> found;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i].starts_with('{') && want[i].ends_with('}')) {
      if (got[i].empty() || got[i].size() > 64) return false;
      found[std::string(want[i].substr(1, want[i].size() - 2))] = std::string(got[i]);
    } else if (want[i] != got[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

}  // namespace

const std::vector<Route>& admin_routes() {
  static const std::vector<Route> kRoutes{
      {"GET", "/api/v1/triggers", Endpoint::kListTriggers, true},
      {"POST", "/api/v1/triggers", Endpoint::kCreateTrigger, true},
      {"GET", "/api/v1/triggers/{id}", Endpoint::kGetTrigger, true},
      {"PATCH", "/api/v1/triggers/{id}", Endpoint::kPatchTrigger, true},
      {"DELETE", "/api/v1/triggers/{id}", Endpoint::kDeleteTrigger, true},
      {"POST", "/api/v1/triggers/{id}/secret/rotate", Endpoint::kRotateSecret, true},
      {"GET", "/api/v1/triggers/{id}/stats", Endpoint::kTriggerStats, true},
      {"GET", "/api/v1/stats", Endpoint::kStats, true},
      {"GET", "/api/v1/events", Endpoint::kEvents, true},
      {"GET", "/api/v1/openapi.yaml", Endpoint::kOpenApi, true},
      {"GET", "/healthz", Endpoint::kHealthz, false},
      {"GET", "/readyz", Endpoint::kReadyz, false},
      {"GET", "/metrics", Endpoint::kMetrics, false},
  };
  return kRoutes;
}

std::variant<RouteMatch, MethodNotAllowed, NoRoute> match_route(std::string_view method,
                                                                std::string_view path) {
  MethodNotAllowed other;
  for (const auto& route : admin_routes()) {
    std::map<std::string, std::string> params;
    if (!match_path(route.path, path, params)) continue;
    if (route.method == method) return RouteMatch{&route, std::move(params)};
    other.allowed.emplace_back(route.method);
  }
  if (!other.allowed.empty()) return other;
  return NoRoute{};
}

}  // namespace hookguard::admin
