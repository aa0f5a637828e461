// Tests admin-api/routes.cc and that admin-api/openapi.yaml documents exactly the served routes.
#include "admin-api/routes.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <string>

#include "admin-api/openapi.h"

namespace hookguard::admin {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Verifies the contract between router and document: a route added to one and not the other
// fails here, in either direction.
TEST(AdminRoutes, OpenApiDocumentListsExactlyTheRoutesOfTheTable) {
  const YAML::Node doc = YAML::Load(std::string(openapi_yaml()));
  ASSERT_EQ(doc["openapi"].as<std::string>().rfind("3.", 0), 0u);
  static const std::set<std::string> kMethods{"get",   "put",  "post",    "delete",
                                              "patch", "head", "options", "trace"};
  std::set<std::string> documented;
  for (const auto& path : doc["paths"]) {
    for (const auto& op : path.second) {
      const auto name = op.first.as<std::string>();
      if (kMethods.contains(name)) documented.insert(name + " " + path.first.as<std::string>());
    }
  }
  std::set<std::string> served;
  for (const auto& route : admin_routes()) {
    served.insert(lower(route.method) + " " + std::string(route.path));
  }
  EXPECT_EQ(documented, served);
}

TEST(AdminRoutes, DocumentMarksExactlyTheOpenRoutesAsNeedingNoToken) {
  const YAML::Node doc = YAML::Load(std::string(openapi_yaml()));
  for (const auto& route : admin_routes()) {
    const auto op = doc["paths"][std::string(route.path)][lower(route.method)];
    ASSERT_TRUE(op) << route.path;
    const bool open = op["security"] && op["security"].size() == 0;
    EXPECT_EQ(open, !route.authenticated) << route.method << " " << route.path;
  }
}

TEST(AdminRoutes, MatchesParametersAndAnswersMethodNotAllowedWithTheAllowedMethods) {
  auto rotate = match_route("POST", "/api/v1/triggers/42/secret/rotate");
  ASSERT_TRUE(std::holds_alternative<RouteMatch>(rotate));
  EXPECT_EQ(std::get<RouteMatch>(rotate).route->endpoint, Endpoint::kRotateSecret);
  EXPECT_EQ(std::get<RouteMatch>(rotate).params.at("id"), "42");

  auto put = match_route("PUT", "/api/v1/triggers/42");
  ASSERT_TRUE(std::holds_alternative<MethodNotAllowed>(put));
  EXPECT_EQ(std::get<MethodNotAllowed>(put).allowed,
            (std::vector<std::string>{"GET", "PATCH", "DELETE"}));

  EXPECT_TRUE(std::holds_alternative<NoRoute>(match_route("GET", "/api/v1/triggers/42/nope")));
  EXPECT_TRUE(std::holds_alternative<NoRoute>(match_route("GET", "/api/v1/triggers//stats")));
  EXPECT_TRUE(std::holds_alternative<NoRoute>(match_route("GET", "/api/v1/triggers/")));
  EXPECT_TRUE(std::holds_alternative<NoRoute>(
      match_route("GET", "/api/v1/triggers/" + std::string(65, '1'))));
}

TEST(AdminRoutes, EveryApiRouteNeedsTheTokenAndOnlyHealthReadyMetricsAreOpen) {
  for (const auto& route : admin_routes()) {
    EXPECT_EQ(route.authenticated, route.path.starts_with("/api/")) << route.path;
  }
}

}  // namespace
}  // namespace hookguard::admin
