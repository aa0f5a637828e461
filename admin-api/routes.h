// The admin listener's route table: the one list that the router serves and that the OpenAPI
// document is checked against.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace hookguard::admin {

/// Every handler of the admin listener.
enum class Endpoint {
  kHealthz,
  kReadyz,
  kMetrics,
  kOpenApi,
  kListTriggers,
  kCreateTrigger,
  kGetTrigger,
  kPatchTrigger,
  kDeleteTrigger,
  kRotateSecret,
  kTriggerStats,
  kStats,
  kEvents,
};

/// One route: method, path template in OpenAPI form ("/api/v1/triggers/{id}"), handler, and
/// whether it needs the bearer token.
struct Route {
  std::string_view method;  // upper case
  std::string_view path;
  Endpoint endpoint;
  bool authenticated;
};

/// The table, in the order of DESIGN §5.
const std::vector<Route>& admin_routes();

/// A matched route with its path parameters.
struct RouteMatch {
  const Route* route;
  std::map<std::string, std::string> params;
};
/// The path exists, but not for this method: the methods it has (for 405 + Allow).
struct MethodNotAllowed {
  std::vector<std::string> allowed;
};
/// No route has this path.
struct NoRoute {};

/// Finds the route for `method` and `path` (no query string). A parameter segment matches one
/// non-empty segment of at most 64 bytes.
std::variant<RouteMatch, MethodNotAllowed, NoRoute> match_route(std::string_view method,
                                                                std::string_view path);

}  // namespace hookguard::admin
