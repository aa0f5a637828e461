// Tests admin-api/trigger_rules.cc and the audit diff of admin-api/audit_log.cc.
#include "admin-api/trigger_rules.h"

#include <gtest/gtest.h>

#include "admin-api/audit_log.h"

namespace hookguard::admin {
namespace {

DeploymentLimits limits() {
  DeploymentLimits l;
  l.max_body_bytes = 1024 * 1024;
  l.upstream_timeout_below_ms = 10000;
  l.deny_networks = policy::CidrSet::parse({"169.254.0.0/16", "fe80::/10"}).value();
  return l;
}

policy::TriggerSpec spec(const std::string& url = "http://127.0.0.1:9000/x") {
  policy::TriggerSpec s;
  s.key = "wh_test";
  s.name = "t";
  s.upstream_url = url;
  s.upstream_timeout_ms = 8000;
  return s;
}

void expect_field(const Result<void>& r, const std::string& field) {
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "invalid_request");
  EXPECT_EQ(r.error().field, field);
  EXPECT_EQ(r.error().message.rfind(field + ": ", 0), 0u) << r.error().message;
}

TEST(DeploymentLimits, AcceptsATriggerWithinEveryLimit) {
  auto s = spec();
  s.policy.payload_size_limit_kb = 1024;
  s.upstream_timeout_ms = 9999;
  EXPECT_TRUE(check_deployment_limits(s, limits()));
}

TEST(DeploymentLimits, RejectsPayloadLimitAboveTheIngressBodyLimit) {
  auto s = spec();
  s.policy.payload_size_limit_kb = 1025;
  expect_field(check_deployment_limits(s, limits()), "policy.payload_size_limit_kb");
}

TEST(DeploymentLimits, RejectsUpstreamTimeoutNotBelowTheIngressTimeouts) {
  auto s = spec();
  s.upstream_timeout_ms = 10000;
  expect_field(check_deployment_limits(s, limits()), "upstream_timeout_ms");
}

// Verifies the SSRF guard on literal hosts, IPv4, IPv6 and IPv4-mapped IPv6 alike.
TEST(DeploymentLimits, RejectsLiteralUpstreamHostsInsideDenyNetworks) {
  for (const char* url : {"http://169.254.169.254/latest", "https://169.254.1.1:8443/",
                          "http://[fe80::1]/", "http://[::ffff:169.254.169.254]/x"}) {
    SCOPED_TRACE(url);
    expect_field(check_deployment_limits(spec(url), limits()), "upstream_url");
  }
  EXPECT_TRUE(check_deployment_limits(spec("http://[::1]:9000/"), limits()));
  EXPECT_TRUE(check_deployment_limits(spec("http://metadata.internal/"), limits()));
}

TEST(UpstreamLiteralIp, FindsIpLiteralsOnly) {
  EXPECT_EQ(upstream_literal_ip("http://10.1.2.3:80/a")->to_string(), "10.1.2.3");
  EXPECT_EQ(upstream_literal_ip("https://[2001:db8::1]/")->to_string(), "2001:db8::1");
  EXPECT_FALSE(upstream_literal_ip("http://example.com/"));
  EXPECT_FALSE(upstream_literal_ip("not a url"));
}

TEST(GenerateSecret, IsLongRandomAndShapedForTheScheme) {
  const auto a = generate_secret(policy::SignatureScheme::kGithub);
  const auto b = generate_secret(policy::SignatureScheme::kGithub);
  EXPECT_GE(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
            std::string::npos);
  const auto w = generate_secret(policy::SignatureScheme::kStandardWebhooks);
  EXPECT_EQ(w.rfind("whsec_", 0), 0u);
  auto s = spec();
  s.policy.hmac.scheme = policy::SignatureScheme::kStandardWebhooks;
  EXPECT_TRUE(check_secret_for(s, w));
  EXPECT_FALSE(check_secret_for(s, "not base64 at all!!"));
}

TEST(RotateRequest, DefaultsToTheGracePeriodWhenBodyIsEmpty) {
  auto r = parse_rotate_request("", 1000, 500);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->previous_valid_until_ms, 1500);
  EXPECT_FALSE(r->secret);
  EXPECT_EQ(parse_rotate_request("{}", 1000, 500)->previous_valid_until_ms, 1500);
}

TEST(RotateRequest, TakesSecondsOrAnAbsoluteTime) {
  EXPECT_EQ(parse_rotate_request(R"({"previous_valid_for_seconds": 2})", 1000, 500)
                ->previous_valid_until_ms,
            3000);
  EXPECT_EQ(parse_rotate_request(R"({"previous_valid_until": "1970-01-01T00:00:05Z"})", 1000, 500)
                ->previous_valid_until_ms,
            5000);
  auto with_secret = parse_rotate_request(R"({"secret": "0123456789abcdefXYZ"})", 0, 1);
  ASSERT_TRUE(with_secret);
  EXPECT_EQ(with_secret->secret, "0123456789abcdefXYZ");
}

TEST(RotateRequest, RejectsBadBodiesNamingTheField) {
  struct Case {
    const char* body;
    const char* field;
  };
  for (const auto& c :
       {Case{R"({"previous_valid_for_seconds": -1})", "previous_valid_for_seconds"},
        Case{R"({"previous_valid_for_seconds": 2592001})", "previous_valid_for_seconds"},
        Case{R"({"previous_valid_for_seconds": "2"})", "previous_valid_for_seconds"},
        Case{R"({"previous_valid_until": "soon"})", "previous_valid_until"},
        Case{R"({"previous_valid_until": "2999-01-01T00:00:00Z"})", "previous_valid_until"},
        Case{R"({"previous_valid_until": "1970-01-01T00:00:05Z",
                                 "previous_valid_for_seconds": 1})",
             "previous_valid_for_seconds"},
        Case{R"({"secret": "short"})", "secret"}, Case{R"({"grace": 1})", "grace"}}) {
    auto r = parse_rotate_request(c.body, 1000, 500);
    ASSERT_FALSE(r) << c.body;
    EXPECT_EQ(r.error().code, "invalid_request");
    EXPECT_EQ(r.error().field, c.field) << c.body;
  }
  auto not_json = parse_rotate_request(R"({"secret": "leaky-secret-value)", 0, 1);
  ASSERT_FALSE(not_json);
  EXPECT_EQ(not_json.error().message.find("leaky"), std::string::npos);
}

TEST(TriggerDiff, ListsChangedLeavesOnlyAndIgnoresBookkeeping) {
  nlohmann::ordered_json before = {{"name", "a"},
                                   {"version", 1},
                                   {"updated", "x"},
                                   {"policy", {{"ip_allowlist", {{"enabled", false}}}}}};
  nlohmann::ordered_json after = before;
  after["version"] = 2;
  after["updated"] = "y";
  after["policy"]["ip_allowlist"]["enabled"] = true;
  const auto diff = trigger_diff(before, after);
  ASSERT_EQ(diff.size(), 1u) << diff.dump();
  EXPECT_EQ(diff["policy.ip_allowlist.enabled"]["from"], false);
  EXPECT_EQ(diff["policy.ip_allowlist.enabled"]["to"], true);
}

}  // namespace
}  // namespace hookguard::admin
