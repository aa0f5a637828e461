// End-to-end: the real hookguard binary, real PostgreSQL and Redis, a real upstream.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "policy/signature.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_servers.h"
#include "tests/support/test_env.h"
#include "tests/support/upstream_server.h"

namespace hookguard::testing {
namespace {

constexpr const char* kSecret = "e2e-secret-0123456789abcdef";

std::string github_signature(const std::string& body, const std::string& secret = kSecret) {
  return "sha256=" + policy::hmac_hex(policy::HmacAlgorithm::kSha256, secret, body);
}

class IngressE2E : public ::testing::Test {
 protected:
  void start_gateway(const std::string& extra_yaml = "") {
    gateway_ = std::make_unique<GatewayProcess>(db_.dsn(), extra_yaml);
    ASSERT_TRUE(gateway_->start()) << gateway_->log();
  }

  db::StoredTrigger add(policy::TriggerSpec spec, const std::string& secret = "") {
    return insert_trigger(db_.dsn(), std::move(spec), secret);
  }

  HttpResponse post(const std::string& key, const std::string& body,
                    const policy::HeaderList& headers = {}, const std::string& suffix = "") {
    return http_request("POST", gateway_->ingress_url("/webhooks/" + key + suffix), headers, body);
  }

  // The log row of a response, found by the X-Request-Id the gateway answered with.
  LogRow row_of(const HttpResponse& r) {
    auto id = r.headers.get("X-Request-Id");
    EXPECT_TRUE(id.has_value()) << "no X-Request-Id in the answer";
    if (!id) return {};
    auto row = wait_for_log_row(db_.dsn(), std::string(*id));
    EXPECT_TRUE(row.has_value()) << "no log row for " << *id;
    return row.value_or(LogRow{});
  }

  static std::string error_of(const HttpResponse& r) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    return j.is_object() ? j.value("error", "") : "<not json: " + r.body + ">";
  }

  PgTestDb db_;
  UpstreamServer upstream_;
  std::unique_ptr<GatewayProcess> gateway_;
};

TEST_F(IngressE2E, UnknownKeyGets404JsonAndOneLogRow) {
  start_gateway();
  auto r = post("wh_doesnotexist", "{}");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r), "not_found");
  EXPECT_NE(r.body.find("request_id"), std::string::npos);
  auto row = row_of(r);
  EXPECT_EQ(row["outcome"], "not_found");
  EXPECT_EQ(row["status_code"], "404");
  EXPECT_EQ(row["trigger_id"], std::nullopt);
  EXPECT_EQ(row["webhook_key"], "wh_doesnotexist");
}

// Request ids are UUID v7 of the arrival time (time-ordered, so the log's unique index grows at
// its right edge); the answer, the upstream and the log row carry the same id.
TEST_F(IngressE2E, RequestIdsAreUuidV7OfTheArrivalTimeInIncreasingOrder) {
  start_gateway();
  auto unix_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  std::string previous;
  for (int i = 0; i < 3; ++i) {
    const auto before = unix_ms();
    auto r = post("wh_doesnotexist", "{}");
    const auto after = unix_ms();
    const std::string id(r.headers.get("X-Request-Id").value_or(""));
    ASSERT_EQ(id.size(), 36u) << id;
    EXPECT_EQ(id[14], '7') << id;
    const auto ms = std::stoll(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
    EXPECT_GE(ms, before) << id;
    EXPECT_LE(ms, after) << id;
    EXPECT_LT(previous, id);
    EXPECT_EQ(row_of(r)["request_id"], id);
    previous = id;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Verifies that a disabled trigger cannot be told apart from an unknown key on the wire.
TEST_F(IngressE2E, DisabledTriggerAnswersExactlyLikeAnUnknownKey) {
  auto spec = basic_trigger("disabled", upstream_.url("/"));
  spec.enabled = false;
  auto t = add(spec);
  start_gateway();
  auto disabled = post(t.spec.key, "{}");
  auto unknown = post("wh_unknownunknownunknownunknown00", "{}");
  EXPECT_EQ(disabled.status, 404);
  EXPECT_EQ(unknown.status, 404);
  auto strip_id = [](const std::string& body) {
    auto j = nlohmann::json::parse(body);
    j.erase("request_id");
    return j.dump();
  };
  EXPECT_EQ(strip_id(disabled.body), strip_id(unknown.body));
  EXPECT_EQ(row_of(disabled)["trigger_id"], std::to_string(t.spec.id));
  EXPECT_EQ(upstream_.request_count(), 0u);
}

TEST_F(IngressE2E, ValidRequestIsForwardedWithExactBodyAndGatewayHeaders) {
  auto spec = basic_trigger("plain", upstream_.url("/in"));
  spec.policy.hmac.enabled = true;
  spec.policy.hmac.scheme = policy::SignatureScheme::kGithub;
  auto t = add(spec, kSecret);
  start_gateway();
  const std::string body = "{\"a\": 1,\n \"b\":\"\xc3\xa9\"}";
  auto r = post(t.spec.key, body,
                {{"X-Hub-Signature-256", github_signature(body)},
                 {"Content-Type", "application/json"},
                 {"X-Forwarded-For", "6.6.6.6"},
                 {"X-Hookguard-Trigger", "spoofed"},
                 {"X-Custom", "kept"}},
                "/sub/path?x=1&y=two");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"ok\":true}");
  EXPECT_EQ(r.headers.get("X-Upstream"), "test");
  ASSERT_EQ(upstream_.request_count(), 1u);
  auto got = upstream_.requests()[0];
  EXPECT_EQ(got.body, body);
  EXPECT_EQ(got.target.substr(0, 12), "/in/sub/path");
  EXPECT_NE(got.target.find("x=1"), std::string::npos);
  EXPECT_NE(got.target.find("y=two"), std::string::npos);
  EXPECT_EQ(got.headers.get("X-Forwarded-For"), "127.0.0.1");
  EXPECT_EQ(got.headers.get("X-Hookguard-Trigger"), "plain");
  EXPECT_EQ(got.headers.get("X-Hookguard-Signature-Verified"), "true");
  EXPECT_EQ(got.headers.get("X-Custom"), "kept");
  EXPECT_EQ(got.headers.get("X-Request-Id"), r.headers.get("X-Request-Id"));
  auto row = row_of(r);
  EXPECT_EQ(row["outcome"], "forwarded");
  EXPECT_EQ(row["status_code"], "200");
  EXPECT_EQ(row["upstream_status"], "200");
  EXPECT_EQ(row["hmac_verified"], "t");
  EXPECT_EQ(row["ip_allowed"], std::nullopt);
  EXPECT_EQ(row["rate_limited"], "f");
  EXPECT_EQ(row["payload_size_bytes"], std::to_string(body.size()));
}

TEST_F(IngressE2E, MethodNotInTheTriggersListGets405) {
  auto t = add(basic_trigger("post-only", upstream_.url("/")));
  start_gateway();
  auto r = http_request("PUT", gateway_->ingress_url("/webhooks/" + t.spec.key), {}, "{}");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(error_of(r), "method_not_allowed");
  EXPECT_EQ(row_of(r)["outcome"], "method_not_allowed");
  EXPECT_EQ(upstream_.request_count(), 0u);
}

TEST_F(IngressE2E, BodyOverTheTriggersLimitGets413) {
  auto spec = basic_trigger("small", upstream_.url("/"));
  spec.policy.payload_size_limit_kb = 1;
  auto t = add(spec);
  start_gateway();
  auto ok = post(t.spec.key, std::string(1024, 'a'));
  auto big = post(t.spec.key, std::string(1025, 'a'));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(error_of(big), "payload_too_large");
  auto row = row_of(big);
  EXPECT_EQ(row["outcome"], "payload_too_large");
  EXPECT_EQ(row["payload_size_bytes"], "1025");
  EXPECT_EQ(upstream_.request_count(), 1u);
}

// Verifies that X-Forwarded-For from an untrusted peer cannot buy its way past the allowlist.
TEST_F(IngressE2E, SpoofedForwardedForFromUntrustedPeerIsDenied) {
  auto spec = basic_trigger("allowlisted", upstream_.url("/"));
  spec.policy.ip_allowlist = {true, {"10.0.0.0/8"}};
  auto t = add(spec);
  start_gateway();
  auto r = post(t.spec.key, "{}", {{"X-Forwarded-For", "10.1.2.3"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(error_of(r), "ip_denied");
  auto row = row_of(r);
  EXPECT_EQ(row["outcome"], "ip_denied");
  EXPECT_EQ(row["ip_allowed"], "f");
  EXPECT_EQ(row["source_ip"], "127.0.0.1");
  EXPECT_EQ(row["peer_ip"], "127.0.0.1");
  EXPECT_EQ(upstream_.request_count(), 0u);
}

TEST_F(IngressE2E, TrustedProxyForwardedForIsTheSourceAddress) {
  auto spec = basic_trigger("behind-proxy", upstream_.url("/"));
  spec.policy.ip_allowlist = {true, {"10.0.0.0/8"}};
  auto t = add(spec);
  start_gateway("trusted_proxies: [127.0.0.1/32]\n");
  auto allowed = post(t.spec.key, "{}", {{"X-Forwarded-For", "203.0.113.9, 10.1.2.3"}});
  auto denied = post(t.spec.key, "{}", {{"X-Forwarded-For", "10.1.2.3, 203.0.113.9"}});
  EXPECT_EQ(allowed.status, 200);
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(row_of(allowed)["source_ip"], "10.1.2.3");
  EXPECT_EQ(row_of(denied)["source_ip"], "203.0.113.9");
  // The proxy itself stays on record as the peer.
  EXPECT_EQ(row_of(allowed)["peer_ip"], "127.0.0.1");
  EXPECT_EQ(row_of(denied)["peer_ip"], "127.0.0.1");
}

TEST_F(IngressE2E, IPv6LoopbackPeerMatchesIPv6AllowlistOnDualStackListener) {
  auto spec = basic_trigger("v6", upstream_.url("/"));
  spec.policy.ip_allowlist = {true, {"::1/128"}};
  auto t = add(spec);
  auto spec4 = basic_trigger("v4", upstream_.url("/"));
  spec4.policy.ip_allowlist = {true, {"127.0.0.0/8"}};
  auto t4 = add(spec4);
  start_gateway("ingress: {address: \"::\", port: 0, threads: 2}\n");
  auto url6 = "http://[::1]:" + std::to_string(gateway_->ingress_port()) + "/webhooks/";
  auto url4 = "http://127.0.0.1:" + std::to_string(gateway_->ingress_port()) + "/webhooks/";
  auto v6 = http_request("POST", url6 + t.spec.key, {}, "{}");
  auto v4_on_v6_rule = http_request("POST", url4 + t.spec.key, {}, "{}");
  // An IPv4 client on a dual-stack socket appears as ::ffff:127.0.0.1 and must match 127/8.
  auto v4 = http_request("POST", url4 + t4.spec.key, {}, "{}");
  EXPECT_EQ(v6.status, 200) << v6.body << v6.error;
  EXPECT_EQ(row_of(v6)["source_ip"], "::1");
  EXPECT_EQ(v4_on_v6_rule.status, 403);
  EXPECT_EQ(v4.status, 200) << v4.body;
  EXPECT_EQ(row_of(v4)["source_ip"], "127.0.0.1");
}

TEST_F(IngressE2E, MissingAndWrongSignaturesGet401WithoutDetail) {
  auto spec = basic_trigger("signed", upstream_.url("/"));
  spec.policy.hmac.enabled = true;
  spec.policy.hmac.scheme = policy::SignatureScheme::kGithub;
  auto t = add(spec, kSecret);
  start_gateway();
  auto missing = post(t.spec.key, "{}");
  auto wrong = post(t.spec.key, "{}", {{"X-Hub-Signature-256", github_signature("{ }")}});
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(error_of(missing), "signature_missing");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(error_of(wrong), "signature_invalid");
  EXPECT_EQ(wrong.body.find(kSecret), std::string::npos);
  auto row = row_of(wrong);
  EXPECT_EQ(row["outcome"], "signature_invalid");
  EXPECT_EQ(row["hmac_verified"], "f");
  EXPECT_EQ(row_of(missing)["outcome"], "signature_missing");
  EXPECT_EQ(upstream_.request_count(), 0u);
}

TEST_F(IngressE2E, RateLimitLetsExactlyNThroughThenAnswers429WithRetryAfter) {
  auto spec = basic_trigger("limited", upstream_.url("/"));
  spec.policy.rate_limit.enabled = true;
  spec.policy.rate_limit.requests = 3;
  spec.policy.rate_limit.window_seconds = 60;
  auto t = add(spec);
  start_gateway();
  std::vector<HttpResponse> answers;
  for (int i = 0; i < 4; ++i) answers.push_back(post(t.spec.key, "{}"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(answers[i].status, 200) << i;
    EXPECT_EQ(answers[i].headers.get("RateLimit-Limit"), "3");
    EXPECT_EQ(answers[i].headers.get("RateLimit-Remaining"), std::to_string(2 - i));
  }
  EXPECT_EQ(answers[3].status, 429);
  EXPECT_EQ(error_of(answers[3]), "rate_limited");
  ASSERT_TRUE(answers[3].headers.get("Retry-After").has_value());
  EXPECT_GE(std::stoi(std::string(*answers[3].headers.get("Retry-After"))), 1);
  auto row = row_of(answers[3]);
  EXPECT_EQ(row["outcome"], "rate_limited");
  EXPECT_EQ(row["rate_limited"], "t");
  EXPECT_EQ(upstream_.request_count(), 3u);
}

// The gateway's own threads carry names (top -H, perf, /proc/PID/task/*/comm), so that a
// profile says which part of the request path the time went to.
TEST_F(IngressE2E, ServiceThreadsAreNamed) {
  auto spec = basic_trigger("named-threads", upstream_.url("/"));
  spec.policy.rate_limit.enabled = true;  // starts the Redis pipeline
  auto t = add(spec);
  start_gateway();
  ASSERT_EQ(post(t.spec.key, "{}").status, 200);
  std::set<std::string> names;
  const auto tasks = "/proc/" + std::to_string(gateway_->pid()) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);
  }
  for (const char* expected :
       {"hg-forwarder", "hg-redis-pipe", "hg-audit", "hg-triggers", "hg-maintenance"}) {
    EXPECT_TRUE(names.count(expected)) << expected;
  }
}

// Verifies that two gateway processes on one Redis enforce one combined limit.
TEST_F(IngressE2E, TwoGatewayProcessesShareOneRateLimit) {
  auto spec = basic_trigger("shared-limit", upstream_.url("/"));
  spec.policy.rate_limit.enabled = true;
  spec.policy.rate_limit.requests = 4;
  auto t = add(spec);
  start_gateway();
  GatewayProcess second(db_.dsn());
  ASSERT_TRUE(second.start()) << second.log();
  int ok = 0, limited = 0;
  for (int i = 0; i < 8; ++i) {
    auto url = (i % 2 ? second.ingress_url("/webhooks/") : gateway_->ingress_url("/webhooks/")) +
               t.spec.key;
    auto r = http_request("POST", url, {}, "{}");
    ok += r.status == 200;
    limited += r.status == 429;
  }
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(limited, 4);
}

TEST_F(IngressE2E, MonitorModeForwardsAndLogsWhatWouldHaveFailed) {
  auto spec = basic_trigger("monitored", upstream_.url("/"));
  spec.mode = policy::Mode::kMonitor;
  spec.policy.hmac.enabled = true;
  spec.policy.hmac.scheme = policy::SignatureScheme::kGithub;
  spec.policy.ip_allowlist = {true, {"10.0.0.0/8"}};
  auto t = add(spec, kSecret);
  start_gateway();
  auto r = post(t.spec.key, "{}", {{"X-Hub-Signature-256", github_signature("other")}});
  EXPECT_EQ(r.status, 200);
  ASSERT_EQ(upstream_.request_count(), 1u);
  EXPECT_EQ(upstream_.requests()[0].headers.get("X-Hookguard-Signature-Verified"), "false");
  auto row = row_of(r);
  EXPECT_EQ(row["outcome"], "ip_denied");  // the first stage that would have rejected it
  EXPECT_EQ(row["monitor"], "t");
  EXPECT_EQ(row["ip_allowed"], "f");
  EXPECT_EQ(row["hmac_verified"], "f");
  EXPECT_EQ(row["status_code"], "200");
}

TEST_F(IngressE2E, UnreachableUpstreamGets502AndSlowUpstreamGets504) {
  auto refused = basic_trigger("refused", "http://127.0.0.1:1/");
  auto slow = basic_trigger("slow", upstream_.url("/delay/3000"));
  slow.upstream_timeout_ms = 500;
  auto tr = add(refused);
  auto ts = add(slow);
  start_gateway();
  auto r1 = post(tr.spec.key, "{}");
  auto r2 = post(ts.spec.key, "{}");
  EXPECT_EQ(r1.status, 502);
  EXPECT_EQ(error_of(r1), "upstream_error");
  EXPECT_EQ(r2.status, 504);
  EXPECT_EQ(error_of(r2), "upstream_timeout");
  EXPECT_EQ(row_of(r1)["outcome"], "upstream_error");
  auto row = row_of(r2);
  EXPECT_EQ(row["outcome"], "upstream_timeout");
  EXPECT_GE(std::stoi(row["upstream_ms"].value_or("0")), 450);
}

// Verifies the bulkhead: trigger A's upstream takes 5 s while trigger B answers at once.
TEST_F(IngressE2E, SlowUpstreamOfOneTriggerDoesNotDelayAnother) {
  auto slow = basic_trigger("slow-a", upstream_.url("/delay/5000"));
  slow.upstream_timeout_ms = 8000;
  auto ta = add(slow);
  auto tb = add(basic_trigger("fast-b", upstream_.url("/fast")));
  start_gateway();
  std::vector<std::thread> slow_senders;
  for (int i = 0; i < 4; ++i) {
    slow_senders.emplace_back([&] { post(ta.spec.key, "{}"); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int i = 0; i < 10; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = post(tb.spec.key, "{}");
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    EXPECT_EQ(r.status, 200);
    EXPECT_LT(ms, 1000) << "request " << i << " to the fast trigger waited on the slow one";
  }
  for (auto& th : slow_senders) th.join();
}

TEST_F(IngressE2E, TriggerChangeTakesEffectWithinOneSecondWithoutRestart) {
  auto spec = basic_trigger("changing", upstream_.url("/"));
  auto t = add(spec);
  start_gateway();
  ASSERT_EQ(post(t.spec.key, "{}").status, 200);
  spec.policy.ip_allowlist = {true, {"10.0.0.0/8"}};
  update_trigger(db_.dsn(), t, spec);
  const auto t0 = std::chrono::steady_clock::now();
  int status = 200;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1) && status != 403) {
    status = post(t.spec.key, "{}").status;
  }
  EXPECT_EQ(status, 403) << "allowlist change not in effect within 1 s";
}

TEST_F(IngressE2E, RedisDownFailsOpenOrClosedPerTrigger) {
  auto open_spec = basic_trigger("fail-open", upstream_.url("/"));
  open_spec.policy.rate_limit.enabled = true;
  auto closed_spec = basic_trigger("fail-closed", upstream_.url("/"));
  closed_spec.policy.rate_limit.enabled = true;
  closed_spec.policy.rate_limit.on_store_error = policy::StoreErrorMode::kClosed;
  auto to = add(open_spec);
  auto tc = add(closed_spec);
  start_gateway("redis: {host: 127.0.0.1, port: 1}\n");
  auto open = post(to.spec.key, "{}");
  auto closed = post(tc.spec.key, "{}");
  EXPECT_EQ(open.status, 200);
  EXPECT_EQ(closed.status, 503);
  EXPECT_EQ(error_of(closed), "rate_limit_store_error");
  auto row = row_of(open);
  EXPECT_EQ(row["outcome"], "forwarded");
  EXPECT_NE(row["error_message"].value_or("").find("rate_limit_store_error"), std::string::npos);
  EXPECT_EQ(row_of(closed)["outcome"], "rate_limit_store_error");
}

// Verifies that redis.breaker_open_ms reaches the stores: after a failure the gateway keeps
// failing fast for the configured time, although Redis is back after the default 1 s.
TEST_F(IngressE2E, RedisBreakerStaysOpenForTheConfiguredTime) {
  ThrowawayRedis redis;  // not started yet: the first call fails and opens the breaker
  auto spec = basic_trigger("breaker", upstream_.url("/"));
  spec.policy.rate_limit.enabled = true;  // on_store_error: open, the default
  auto t = add(spec);
  start_gateway("redis: {host: 127.0.0.1, port: " + std::to_string(redis.port()) +
                ", breaker_open_ms: 600000}\n");
  auto first = post(t.spec.key, "{}");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_NE(row_of(first)["error_message"].value_or("").find("rate_limit_store_error"),
            std::string::npos);
  ASSERT_TRUE(redis.start());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto second = post(t.spec.key, "{}");
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_NE(row_of(second)["error_message"].value_or("").find("circuit open"), std::string::npos);
}

TEST_F(IngressE2E, StatsViewCountsWhatWasSent) {
  auto spec = basic_trigger("counted", upstream_.url("/"));
  spec.policy.hmac.enabled = true;
  auto t = add(spec, kSecret);
  start_gateway();
  const std::string body = "{}";
  const auto sig = "sha256=" + policy::hmac_hex(policy::HmacAlgorithm::kSha256, kSecret, body);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(post(t.spec.key, body, {{"X-Webhook-Signature", sig}}).status, 200);
  }
  for (int i = 0; i < 2; ++i) EXPECT_EQ(post(t.spec.key, body).status, 401);
  const auto id = std::to_string(t.spec.id);
  ASSERT_TRUE(wait_for_value(
      db_.dsn(), "SELECT total_requests FROM webhook_stats_detailed WHERE trigger_id = " + id,
      "5"));
  EXPECT_EQ(query_value(db_.dsn(),
                        "SELECT successful_requests FROM webhook_stats_detailed "
                        "WHERE trigger_id = " +
                            id),
            "3");
  EXPECT_EQ(query_value(db_.dsn(),
                        "SELECT signature_failures FROM webhook_stats_detailed "
                        "WHERE trigger_id = " +
                            id),
            "2");
}

TEST_F(IngressE2E, NonWebhookPathGets404AndIsLogged) {
  start_gateway();
  auto r = http_request("GET", gateway_->ingress_url("/api/v1/triggers"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(row_of(r)["outcome"], "not_found");
}

TEST_F(IngressE2E, PathTraversalInSuffixIsRefused) {
  auto t = add(basic_trigger("traversal", upstream_.url("/base")));
  start_gateway();
  auto r = post(t.spec.key, "{}", {}, "/a/%2e%2e/admin");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r), "bad_request");
  EXPECT_EQ(upstream_.request_count(), 0u);
}

TEST_F(IngressE2E, SigtermDrainsAndEveryAnsweredRequestIsLogged) {
  auto t = add(basic_trigger("draining", upstream_.url("/delay/500")));
  start_gateway();
  std::vector<std::thread> senders;
  std::atomic<int> answered{0};
  for (int i = 0; i < 5; ++i) {
    senders.emplace_back([&] {
      if (post(t.spec.key, "{}").status == 200) ++answered;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(gateway_->stop(), 0) << gateway_->log();
  for (auto& th : senders) th.join();
  EXPECT_EQ(answered.load(), 5);
  EXPECT_EQ(query_value(db_.dsn(),
                        "SELECT count(*) FROM webhook_event_log WHERE outcome = "
                        "'forwarded'"),
            "5");
}

}  // namespace
}  // namespace hookguard::testing
