// End-to-end: the admin REST API of the real hookguard binary, driving real webhooks through
// real gateways (PostgreSQL, Redis and an upstream on loopback).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "policy/signature.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/http_client.h"
#include "tests/support/test_env.h"
#include "tests/support/upstream_server.h"

namespace hookguard::testing {
namespace {

using Json = nlohmann::json;

constexpr const char* kToken = "e2e-admin-token-0123456789abcdef";

std::string github_signature(const std::string& body, const std::string& secret) {
  return "sha256=" + policy::hmac_hex(policy::HmacAlgorithm::kSha256, secret, body);
}

Json json_of(const HttpResponse& r) {
  auto j = Json::parse(r.body, nullptr, false);
  return j.is_discarded() ? Json("<not json: " + r.body + ">") : j;
}

// Polls `attempt` (which returns a status) until it gives `want` or `timeout` passes.
template <class F>
int eventually(int want, F attempt,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int got = attempt();
  while (got != want && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    got = attempt();
  }
  return got;
}

class AdminApiE2E : public ::testing::Test {
 protected:
  std::unique_ptr<GatewayProcess> start_gateway(const std::string& token = kToken) {
    std::vector<std::pair<std::string, std::string>> env;
    env.emplace_back("HOOKGUARD_ADMIN_TOKEN", token);
    auto gateway = std::make_unique<GatewayProcess>(db_.dsn(), "", env);
    EXPECT_TRUE(gateway->start()) << gateway->log();
    return gateway;
  }

  void SetUp() override { gateway_ = start_gateway(); }

  HttpResponse api(const std::string& method, const std::string& path, const std::string& body = "",
                   GatewayProcess* gateway = nullptr, const std::string& token = kToken) {
    policy::HeaderList headers{{"Content-Type", "application/json"}};
    if (!token.empty()) headers.add("Authorization", "Bearer " + token);
    return http_request(method, (gateway ? gateway : gateway_.get())->admin_url(path), headers,
                        body);
  }

  HttpResponse webhook(const std::string& key, const std::string& secret,
                       GatewayProcess* gateway = nullptr) {
    const std::string body = "{\"n\":1}";
    return http_request("POST",
                        (gateway ? gateway : gateway_.get())->ingress_url("/webhooks/" + key),
                        {{"X-Hub-Signature-256", github_signature(body, secret)}}, body);
  }

  // Creates a GitHub-signed trigger through the API; returns the 201 body (with "secret").
  Json create_github_trigger(const std::string& name) {
    Json request = {{"name", name},
                    {"upstream_url", upstream_.url("/hook")},
                    {"upstream_timeout_ms", 3000},
                    {"policy", {{"hmac", {{"enabled", true}, {"scheme", "github"}}}}}};
    auto r = api("POST", "/api/v1/triggers", request.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    return json_of(r);
  }

  static void expect_invalid(const HttpResponse& r, const std::string& field) {
    EXPECT_EQ(r.status, 400) << r.body;
    auto j = json_of(r);
    EXPECT_EQ(j.value("error", ""), "invalid_request") << r.body;
    EXPECT_EQ(j.value("field", Json()).is_string() ? j["field"].get<std::string>() : "", field)
        << r.body;
  }

  PgTestDb db_;
  UpstreamServer upstream_;
  std::unique_ptr<GatewayProcess> gateway_;
};

// Verifies the whole life of a trigger created through the API, as a sender sees it, on two
// gateway processes that share the database: create, tighten the allowlist, rotate the
// secret with a grace period, delete.
TEST_F(AdminApiE2E, TriggerLifecycleThroughTheApiReachesEveryGateway) {
  auto second = start_gateway();
  auto created = create_github_trigger("lifecycle");
  const std::string key = created.value("key", "");
  const std::string secret = created.value("secret", "");
  const auto id = created.value("id", 0);
  ASSERT_EQ(key.rfind("wh_", 0), 0u) << created.dump();
  ASSERT_GE(secret.size(), 32u);
  EXPECT_EQ(created["policy"]["hmac"]["secret_set"], true);

  EXPECT_EQ(eventually(200, [&] { return webhook(key, secret).status; }), 200);
  EXPECT_EQ(eventually(200, [&] { return webhook(key, secret, second.get()).status; }), 200);
  EXPECT_EQ(webhook(key, "wrong-secret-0123456789").status, 401);

  // The allowlist no longer admits loopback: both gateways deny within a second.
  auto patched = api("PATCH", "/api/v1/triggers/" + std::to_string(id),
                     R"({"version": 1, "policy": {"ip_allowlist": {"enabled": true,
                         "cidrs": ["192.0.2.0/24", "2001:db8::/32"]}}})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(json_of(patched)["version"], 2);
  EXPECT_EQ(json_of(patched).contains("secret"), false);
  EXPECT_EQ(eventually(403, [&] { return webhook(key, secret).status; }), 403);
  EXPECT_EQ(eventually(403, [&] { return webhook(key, secret, second.get()).status; }), 403);

  auto reopened = api("PATCH", "/api/v1/triggers/" + std::to_string(id),
                      R"({"policy": {"ip_allowlist": {"enabled": false}}})");
  ASSERT_EQ(reopened.status, 200) << reopened.body;
  ASSERT_EQ(eventually(200, [&] { return webhook(key, secret).status; }), 200);

  // Rotation: both secrets pass during the grace period, only the new one afterwards.
  auto rotated = api("POST", "/api/v1/triggers/" + std::to_string(id) + "/secret/rotate",
                     R"({"previous_valid_for_seconds": 3})");
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  const std::string new_secret = json_of(rotated).value("secret", "");
  ASSERT_GE(new_secret.size(), 32u);
  EXPECT_NE(new_secret, secret);
  EXPECT_TRUE(json_of(rotated)["previous_valid_until"].is_string());
  EXPECT_EQ(eventually(200, [&] { return webhook(key, new_secret).status; }), 200);
  EXPECT_EQ(eventually(200, [&] { return webhook(key, new_secret, second.get()).status; }), 200);
  EXPECT_EQ(webhook(key, secret).status, 200);
  EXPECT_EQ(webhook(key, secret, second.get()).status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(3200));
  EXPECT_EQ(webhook(key, secret).status, 401);
  EXPECT_EQ(webhook(key, secret, second.get()).status, 401);
  EXPECT_EQ(webhook(key, new_secret).status, 200);
  EXPECT_EQ(webhook(key, new_secret, second.get()).status, 200);

  auto deleted = api("DELETE", "/api/v1/triggers/" + std::to_string(id));
  EXPECT_EQ(deleted.status, 204);
  EXPECT_EQ(api("GET", "/api/v1/triggers/" + std::to_string(id)).status, 404);
  EXPECT_EQ(eventually(404, [&] { return webhook(key, new_secret).status; }), 404);
  EXPECT_EQ(eventually(404, [&] { return webhook(key, new_secret, second.get()).status; }), 404);

  // One audit row per mutation, none of them holding a secret.
  EXPECT_EQ(query_value(db_.dsn(),
                        "SELECT string_agg(action, ',' ORDER BY id) FROM admin_audit_log"
                        " WHERE trigger_id = " +
                            std::to_string(id)),
            "trigger.create,trigger.update,trigger.update,trigger.secret.rotate,trigger.delete");
  const std::string diffs =
      query_value(db_.dsn(), "SELECT string_agg(diff::text, ' ') FROM admin_audit_log");
  EXPECT_EQ(diffs.find(secret), std::string::npos);
  EXPECT_EQ(diffs.find(new_secret), std::string::npos);
  EXPECT_EQ(query_value(db_.dsn(), "SELECT DISTINCT actor FROM admin_audit_log"), "token");
}

TEST_F(AdminApiE2E, SecretsAppearOnlyInTheCreateAnswer) {
  auto created = create_github_trigger("secretive");
  const std::string secret = created.value("secret", "");
  ASSERT_FALSE(secret.empty());
  const auto id = std::to_string(created.value("id", 0));
  auto one = api("GET", "/api/v1/triggers/" + id);
  auto list = api("GET", "/api/v1/triggers");
  auto bad = api("PATCH", "/api/v1/triggers/" + id, R"({"policy": {"hmac": {"secret": "short"}}})");
  ASSERT_EQ(one.status, 200);
  ASSERT_EQ(list.status, 200);
  for (const auto* r : {&one, &list, &bad}) {
    EXPECT_EQ(r->body.find(secret), std::string::npos) << r->body;
    EXPECT_EQ(r->body.find("\"secret\""), std::string::npos) << r->body;
  }
  EXPECT_EQ(json_of(one)["policy"]["hmac"]["secret_set"], true);
  expect_invalid(bad, "policy.hmac.secret");
  EXPECT_EQ(gateway_->log().find(secret), std::string::npos);
}

TEST_F(AdminApiE2E, SuppliedSecretIsAcceptedAndChecked) {
  const std::string secret = "supplied-secret-0123456789";
  Json request = {
      {"name", "supplied"},
      {"upstream_url", upstream_.url("/")},
      {"upstream_timeout_ms", 3000},
      {"policy", {{"hmac", {{"enabled", true}, {"scheme", "github"}, {"secret", secret}}}}}};
  auto r = api("POST", "/api/v1/triggers", request.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json_of(r)["secret"], secret);
  EXPECT_EQ(eventually(200, [&] { return webhook(json_of(r)["key"], secret).status; }), 200);
}

TEST_F(AdminApiE2E, MissingOrWrongTokenGets401WithoutDetail) {
  for (const std::string& token :
       std::vector<std::string>{"", "wrong", std::string(kToken) + "x", "e2e-admin-token"}) {
    auto r = api("GET", "/api/v1/triggers", "", nullptr, token);
    EXPECT_EQ(r.status, 401) << token;
    EXPECT_EQ(json_of(r), Json({{"error", "unauthorized"}})) << r.body;
  }
  auto basic = http_request("GET", gateway_->admin_url("/api/v1/triggers"),
                            {{"Authorization", "Basic ZTJlOmUyZQ=="}});
  EXPECT_EQ(basic.status, 401);
  // Unknown API paths do not answer 404 to a caller without the token.
  EXPECT_EQ(api("GET", "/api/v1/nothing-here", "", nullptr, "").status, 401);
  EXPECT_EQ(api("GET", "/api/v1/nothing-here").status, 404);
  EXPECT_EQ(api("GET", "/api/v1/triggers", "", nullptr, kToken).status, 200);
  EXPECT_EQ(http_request("GET", gateway_->admin_url("/healthz")).status, 200);
  EXPECT_EQ(http_request("GET", gateway_->admin_url("/metrics")).status, 200);
}

TEST_F(AdminApiE2E, WithoutAConfiguredTokenTheApiIsLockedButHealthStaysOpen) {
  auto locked = start_gateway("");
  EXPECT_EQ(api("GET", "/api/v1/triggers", "", locked.get(), "").status, 401);
  EXPECT_EQ(api("GET", "/api/v1/triggers", "", locked.get(), "anything").status, 401);
  EXPECT_EQ(http_request("GET", locked->admin_url("/healthz")).status, 200);
  // Readiness may take a moment after start (the trigger listener connects); it never asks
  // for the token.
  EXPECT_EQ(eventually(
                200, [&] { return http_request("GET", locked->admin_url("/readyz")).status; },
                std::chrono::seconds(10)),
            200);
  EXPECT_NE(locked->log().find("HOOKGUARD_ADMIN_TOKEN is not set"), std::string::npos);
}

TEST_F(AdminApiE2E, InvalidRequestsGet400NamingTheField) {
  auto base = [&](Json patch) {
    Json j = {{"name", "v"}, {"upstream_url", upstream_.url("/")}, {"upstream_timeout_ms", 3000}};
    j.merge_patch(patch);
    return api("POST", "/api/v1/triggers", j.dump());
  };
  expect_invalid(base({{"surprise", 1}}), "surprise");
  expect_invalid(base({{"enabled", "yes"}}), "enabled");
  expect_invalid(base({{"id", 7}}), "id");
  expect_invalid(base({{"policy", {{"rate_limit", {{"requests", 0}}}}}}),
                 "policy.rate_limit.requests");
  expect_invalid(base({{"policy", {{"ip_allowlist", {{"cidrs", {"10.0.0.1/8"}}}}}}}),
                 "policy.ip_allowlist.cidrs[0]");
  expect_invalid(base({{"upstream_url", "file:///etc/passwd"}}), "upstream_url");
  expect_invalid(base({{"upstream_url", "http://169.254.169.254/latest"}}), "upstream_url");
  expect_invalid(base({{"upstream_url", "http://[fe80::1]/"}}), "upstream_url");
  // Beyond this gateway's ingress.max_body_bytes (10 MiB) and ingress timeouts (10 s).
  expect_invalid(base({{"policy", {{"payload_size_limit_kb", 20000}}}}),
                 "policy.payload_size_limit_kb");
  expect_invalid(base({{"upstream_timeout_ms", 10000}}), "upstream_timeout_ms");
  auto not_json = api("POST", "/api/v1/triggers", "{\"name\": ");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(json_of(not_json)["error"], "invalid_request");
  expect_invalid(api("GET", "/api/v1/events?limit=0"), "limit");
  expect_invalid(api("GET", "/api/v1/events?since=yesterday"), "since");
  expect_invalid(api("GET", "/api/v1/events?outcome=x%27%20OR%201=1--"), "outcome");
  expect_invalid(api("GET", "/api/v1/events?cursor=forged"), "cursor");
  expect_invalid(api("GET", "/api/v1/events?source_ip=not-an-ip"), "source_ip");
  expect_invalid(api("GET", "/api/v1/triggers/abc"), "id");
  EXPECT_EQ(query_value(db_.dsn(), "SELECT count(*) FROM webhook_trigger"), "0");
  EXPECT_EQ(query_value(db_.dsn(), "SELECT count(*) FROM admin_audit_log"), "0");
}

TEST_F(AdminApiE2E, UnknownIdGets404AndStaleVersionGets409) {
  EXPECT_EQ(api("GET", "/api/v1/triggers/999").status, 404);
  EXPECT_EQ(api("PATCH", "/api/v1/triggers/999", "{}").status, 404);
  EXPECT_EQ(api("DELETE", "/api/v1/triggers/999").status, 404);
  EXPECT_EQ(api("POST", "/api/v1/triggers/999/secret/rotate").status, 404);
  EXPECT_EQ(api("GET", "/api/v1/triggers/999/stats").status, 404);

  auto created = create_github_trigger("versioned");
  const auto path = "/api/v1/triggers/" + std::to_string(created.value("id", 0));
  ASSERT_EQ(api("PATCH", path, R"({"version": 1, "description": "first"})").status, 200);
  auto stale = api("PATCH", path, R"({"version": 1, "description": "second"})");
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(json_of(stale)["error"], "conflict");
  EXPECT_EQ(json_of(stale)["field"], "version");
  EXPECT_EQ(json_of(api("GET", path))["description"], "first");
  auto duplicate = api("POST", "/api/v1/triggers",
                       Json({{"name", "versioned"},
                             {"upstream_url", upstream_.url("/")},
                             {"upstream_timeout_ms", 3000}})
                           .dump());
  EXPECT_EQ(duplicate.status, 409);
  EXPECT_EQ(json_of(duplicate)["field"], "name");
}

TEST_F(AdminApiE2E, BodyOverOneMebibyteGets413) {
  auto r = api("POST", "/api/v1/triggers", std::string(1024 * 1024 + 1, ' '));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(json_of(r)["error"], "payload_too_large");
}

TEST_F(AdminApiE2E, TriggerListIsPagedByCursor) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(api("POST", "/api/v1/triggers",
                  Json({{"name", "p" + std::to_string(i)},
                        {"upstream_url", upstream_.url("/")},
                        {"upstream_timeout_ms", 3000}})
                      .dump())
                  .status,
              201);
  }
  std::vector<std::string> names;
  std::string path = "/api/v1/triggers?limit=2";
  for (int page = 0; page < 5; ++page) {
    auto j = json_of(api("GET", path));
    for (const auto& item : j["items"]) names.push_back(item["name"]);
    if (j["next_cursor"].is_null()) break;
    path = "/api/v1/triggers?limit=2&cursor=" + j["next_cursor"].get<std::string>();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"p0", "p1", "p2", "p3", "p4"}));
}

TEST_F(AdminApiE2E, EventsAreFilteredAndPagedNewestFirstAndStatsCountThem) {
  auto created = create_github_trigger("observed");
  const std::string key = created["key"], secret = created["secret"];
  const auto id = std::to_string(created.value("id", 0));
  ASSERT_EQ(eventually(200, [&] { return webhook(key, secret).status; }), 200);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(webhook(key, "bad-secret-0123456789").status, 401);
  ASSERT_TRUE(wait_for_value(
      db_.dsn(), "SELECT count(*) FROM webhook_event_log WHERE trigger_id = " + id, "3"));

  auto all = json_of(api("GET", "/api/v1/events?trigger_id=" + id));
  ASSERT_EQ(all["items"].size(), 3u) << all.dump();
  EXPECT_EQ(all["items"][0]["outcome"], "signature_invalid");
  EXPECT_EQ(all["items"][2]["outcome"], "forwarded");
  auto denied = json_of(api("GET",
                            "/api/v1/events?outcome=signature_invalid&status_code=401"
                            "&source_ip=127.0.0.0/8&trigger_id=" +
                                id));
  EXPECT_EQ(denied["items"].size(), 2u);

  std::vector<std::int64_t> ids;
  std::string path = "/api/v1/events?limit=1&trigger_id=" + id;
  for (int page = 0; page < 5; ++page) {
    auto j = json_of(api("GET", path));
    for (const auto& item : j["items"]) ids.push_back(item["id"]);
    if (j["next_cursor"].is_null()) break;
    path = "/api/v1/events?limit=1&trigger_id=" + id +
           "&cursor=" + j["next_cursor"].get<std::string>();
  }
  // Pages of one row each give back the unpaged list, in the same newest-first order.
  std::vector<std::int64_t> unpaged;
  std::vector<std::string> times;
  for (const auto& item : all["items"]) {
    unpaged.push_back(item["id"]);
    times.push_back(item["created"]);
  }
  EXPECT_EQ(ids, unpaged);
  EXPECT_TRUE(std::is_sorted(times.rbegin(), times.rend())) << all.dump();
  EXPECT_EQ(json_of(api("GET", "/api/v1/events?since=2999-01-01T00:00:00Z"))["items"].size(), 0u);

  auto stats = json_of(api("GET", "/api/v1/triggers/" + id + "/stats"));
  EXPECT_EQ(stats["total_requests"], 3);
  EXPECT_EQ(stats["successful_requests"], 1);
  EXPECT_EQ(stats["signature_failures"], 2);
  auto window =
      json_of(api("GET", "/api/v1/triggers/" + id +
                             "/stats?since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z"));
  EXPECT_EQ(window["total_requests"], 0);
  auto open_window = json_of(api("GET", "/api/v1/stats?since=2000-01-01T00:00:00%2B02:00"));
  ASSERT_EQ(open_window["items"].size(), 1u);
  EXPECT_EQ(open_window["items"][0]["total_requests"], 3);
}

TEST_F(AdminApiE2E, OpenApiDocumentIsServed) {
  auto r = api("GET", "/api/v1/openapi.yaml");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.rfind("openapi: 3", 0), 0u);
  EXPECT_EQ(r.headers.get("Content-Type"), "application/yaml");
}

}  // namespace
}  // namespace hookguard::testing
