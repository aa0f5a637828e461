#include "policy/chain.h"

#include <gtest/gtest.h>

#include "policy/signature.h"
#include "tests/support/fake_rate_limit_store.h"
#include "tests/support/fake_replay_store.h"
#include "tests/support/manual_clock.h"

namespace hookguard::policy {
namespace {

using testing::FakeRateLimitStore;
using testing::FakeReplayStore;
using testing::ManualClock;

const std::string kSecret = "chain-secret-0123456789";
const std::string kPrevious = "chain-previous-0123456789";
const std::string kBody = R"({"action":"opened"})";

struct Options {
  Mode mode = Mode::kEnforce;
  bool ip = true;
  bool rate = true;
  bool hmac = true;
  bool per_source_ip = false;
  StoreErrorMode on_store_error = StoreErrorMode::kOpen;
  SignatureScheme scheme = SignatureScheme::kGithub;
  std::optional<std::string> previous = std::nullopt;
  std::int64_t previous_valid_until_ms = 0;
};

CompiledTrigger make_trigger(const Options& o = {}) {
  TriggerSpec spec;
  spec.id = 42;
  spec.key = "wh_chain0123456789abcdefghijklmnop";
  spec.name = "chain";
  spec.mode = o.mode;
  spec.upstream_url = "http://127.0.0.1:9000/";
  spec.policy.payload_size_limit_kb = 1;
  spec.policy.ip_allowlist = {o.ip, {"192.30.252.0/22", "2001:db8::/32"}};
  spec.policy.rate_limit.enabled = o.rate;
  spec.policy.rate_limit.requests = 100;
  spec.policy.rate_limit.window_seconds = 60;
  spec.policy.rate_limit.per_source_ip = o.per_source_ip;
  spec.policy.rate_limit.on_store_error = o.on_store_error;
  spec.policy.hmac.enabled = o.hmac;
  spec.policy.hmac.scheme = o.scheme;
  auto compiled = CompiledTrigger::compile(
      spec, TriggerSecrets{kSecret, o.previous, o.previous_valid_until_ms});
  EXPECT_TRUE(compiled.has_value()) << compiled.error().message;
  return std::move(*compiled);
}

// One request as the gateway would hand it over; owns what the view points at.
struct Request {
  std::string method = "POST";
  HeaderList headers;
  std::string body = kBody;
  std::optional<std::uint64_t> content_length = kBody.size();
  std::string source = "192.30.252.10";
  ManualClock clock{1'700'000'000'000};

  void sign(const CompiledTrigger& trigger, std::string_view secret = kSecret) {
    auto signed_headers =
        sign_request(trigger.spec.policy.hmac, secret, body, clock.now_unix_ms() / 1000, "msg_1");
    ASSERT_TRUE(signed_headers.has_value());
    for (const auto& [name, value] : signed_headers->fields()) headers.set(name, value);
  }

  RequestView view() const {
    return RequestView{
        method, &headers, body, content_length, *IpAddress::parse(source), clock.now_unix_ms()};
  }
};

void expect_rejected(const ChainResult& r, Outcome outcome, int status, std::string_view name) {
  EXPECT_FALSE(r.forward);
  EXPECT_FALSE(r.monitor_override);
  EXPECT_EQ(r.outcome, outcome);
  EXPECT_EQ(outcome_info(r.outcome).http_status, status);
  EXPECT_EQ(outcome_name(r.outcome), name);
}

TEST(RunChain, ForwardsARequestThatPassesEveryStage) {
  const auto trigger = make_trigger();
  Request req;
  req.sign(trigger);
  FakeRateLimitStore store;
  FakeReplayStore replays;
  store.push(FakeRateLimitStore::allowed(100, 73, 12));

  const auto r = run_chain(req.view(), trigger, store, replays);
  EXPECT_TRUE(r.forward);
  EXPECT_FALSE(r.monitor_override);
  EXPECT_EQ(r.outcome, Outcome::kForwarded);
  EXPECT_EQ(r.ip_allowed, true);
  EXPECT_EQ(r.hmac_verified, true);
  EXPECT_FALSE(r.rate_limited);
  EXPECT_FALSE(r.rate_limit_store_error);
  EXPECT_EQ(*r.response_headers.get("RateLimit-Limit"), "100");
  EXPECT_EQ(*r.response_headers.get("RateLimit-Remaining"), "73");
  EXPECT_EQ(*r.response_headers.get("RateLimit-Reset"), "12");
  EXPECT_FALSE(r.response_headers.get("Retry-After").has_value());
  ASSERT_EQ(store.calls(), 1u);
  EXPECT_EQ(store.queries()[0].key, "hg:rl:{t42}");
  EXPECT_EQ(store.queries()[0].limit, 100);
  EXPECT_EQ(store.queries()[0].window_seconds, 60);
}

TEST(RunChain, DisabledStagesAreNotCheckedAndLeaveTheirFlagsUnset) {
  const auto trigger = make_trigger({.ip = false, .rate = false, .hmac = false});
  Request req;
  req.source = "203.0.113.1";
  FakeRateLimitStore store;
  FakeReplayStore replays;
  const auto r = run_chain(req.view(), trigger, store, replays);
  EXPECT_TRUE(r.forward);
  EXPECT_FALSE(r.ip_allowed.has_value());
  EXPECT_FALSE(r.hmac_verified.has_value());
  EXPECT_EQ(store.calls(), 0u);
  EXPECT_TRUE(r.response_headers.empty());
}

TEST(RunChain, RejectsAMethodTheTriggerDoesNotAllowWith405) {
  const auto trigger = make_trigger();
  Request req;
  req.method = "GET";
  FakeRateLimitStore store;
  FakeReplayStore replays;
  const auto r = run_chain(req.view(), trigger, store, replays);
  expect_rejected(r, Outcome::kMethodNotAllowed, 405, "method_not_allowed");
  EXPECT_EQ(store.calls(), 0u);
}

// Verifies the method check is routing, not policy: monitor mode does not forward a GET.
TEST(RunChain, EnforcesTheMethodEvenInMonitorMode) {
  const auto trigger = make_trigger({.mode = Mode::kMonitor});
  Request req;
  req.method = "DELETE";
  FakeRateLimitStore store;
  FakeReplayStore replays;
  const auto r = run_chain(req.view(), trigger, store, replays);
  expect_rejected(r, Outcome::kMethodNotAllowed, 405, "method_not_allowed");
  EXPECT_EQ(store.calls(), 0u);
  EXPECT_FALSE(r.ip_allowed.has_value());
}

TEST(RunChain, RejectsADeclaredContentLengthOverTheLimitWith413) {
  const auto trigger = make_trigger();
  Request req;
  req.content_length = 1025;
  FakeRateLimitStore store;
  FakeReplayStore replays;
  const auto r = run_chain(req.view(), trigger, store, replays);
  expect_rejected(r, Outcome::kPayloadTooLarge, 413, "payload_too_large");
  EXPECT_EQ(store.calls(), 0u);
  EXPECT_FALSE(r.ip_allowed.has_value());
  EXPECT_FALSE(r.hmac_verified.has_value());
}

TEST(RunChain, RejectsABodyOverTheLimitWithoutContentLengthWith413) {
  const auto trigger = make_trigger({.ip = false, .rate = false, .hmac = false});
  Request req;
  req.body = std::string(1025, 'x');
  req.content_length.reset();
  FakeRateLimitStore store;
  FakeReplayStore replays;
  expect_rejected(run_chain(req.view(), trigger, store, replays), Outcome::kPayloadTooLarge, 413,
                  "payload_too_large");
  req.body = std::string(1024, 'x');
  EXPECT_TRUE(run_chain(req.view(), trigger, store, replays).forward);
}

TEST(RunChain, RejectsABodyLargerThanItsDeclaredLength) {
  const auto trigger = make_trigger({.ip = false, .rate = false, .hmac = false});
  Request req;
  req.body = std::string(2000, 'x');
  req.content_length = 10;
  FakeRateLimitStore store;
  FakeReplayStore replays;
  expect_rejected(run_chain(req.view(), trigger, store, replays), Outcome::kPayloadTooLarge, 413,
                  "payload_too_large");
}

TEST(RunChain, RejectsAnUnlistedSourceWith403BeforeTouchingTheStore) {
  const auto trigger = make_trigger();
  Request req;
  req.source = "203.0.113.9";
  req.sign(trigger);
  FakeRateLimitStore store;
  FakeReplayStore replays;
  const auto r = run_chain(req.view(), trigger, store, replays);
  expect_rejected(r, Outcome::kIpDenied, 403, "ip_denied");
  EXPECT_EQ(r.ip_allowed, false);
  EXPECT_EQ(store.calls(), 0u);
  EXPECT_FALSE(r.hmac_verified.has_value());
  EXPECT_EQ(r.detail, "ip_denied: 203.0.113.9");
}

TEST(RunChain, AdmitsAnIpv4MappedPeerAndAnIpv6Member) {
  const auto trigger = make_trigger({.rate = false, .hmac = false});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  for (const std::string source : {"::ffff:192.30.252.1", "2001:db8::5"}) {
    Request req;
    req.source = source;
    const auto r = run_chain(req.view(), trigger, store, replays);
    EXPECT_TRUE(r.forward) << source;
    EXPECT_EQ(r.ip_allowed, true);
  }
  Request v6;
  v6.source = "::1";
  expect_rejected(run_chain(v6.view(), trigger, store, replays), Outcome::kIpDenied, 403,
                  "ip_denied");
}

TEST(RunChain, RejectsARateLimitedRequestWith429AndRetryAfter) {
  const auto trigger = make_trigger();
  Request req;
  req.sign(trigger);
  FakeRateLimitStore store;
  FakeReplayStore replays;
  store.push(FakeRateLimitStore::limited(100, 7, 30));
  const auto r = run_chain(req.view(), trigger, store, replays);
  expect_rejected(r, Outcome::kRateLimited, 429, "rate_limited");
  EXPECT_TRUE(r.rate_limited);
  EXPECT_EQ(*r.response_headers.get("Retry-After"), "7");
  EXPECT_EQ(*r.response_headers.get("RateLimit-Limit"), "100");
  EXPECT_EQ(*r.response_headers.get("RateLimit-Remaining"), "0");
  EXPECT_EQ(*r.response_headers.get("RateLimit-Reset"), "30");
  EXPECT_FALSE(r.hmac_verified.has_value());
  EXPECT_EQ(store.calls(), 1u);
}

TEST(RunChain, StoreErrorWithFailOpenPassesAndIsLogged) {
  const auto trigger = make_trigger({.on_store_error = StoreErrorMode::kOpen});
  Request req;
  req.sign(trigger);
  FakeRateLimitStore store;
  FakeReplayStore replays;
  store.push(FakeRateLimitStore::store_error("connection refused"));
  const auto r = run_chain(req.view(), trigger, store, replays);
  EXPECT_TRUE(r.forward);
  EXPECT_EQ(r.outcome, Outcome::kForwarded);
  EXPECT_TRUE(r.rate_limit_store_error);
  EXPECT_FALSE(r.rate_limited);
  EXPECT_EQ(r.detail, "rate_limit_store_error: connection refused");
  EXPECT_EQ(r.hmac_verified, true);
}

TEST(RunChain, StoreErrorWithFailClosedRejectsWith503) {
  const auto trigger = make_trigger({.on_store_error = StoreErrorMode::kClosed});
  Request req;
  req.sign(trigger);
  FakeRateLimitStore store;
  FakeReplayStore replays;
  store.push(FakeRateLimitStore::store_error("timeout"));
  const auto r = run_chain(req.view(), trigger, store, replays);
  expect_rejected(r, Outcome::kRateLimitStoreError, 503, "rate_limit_store_error");
  EXPECT_TRUE(r.rate_limit_store_error);
  EXPECT_FALSE(r.hmac_verified.has_value());
  EXPECT_EQ(r.detail, "rate_limit_store_error: timeout");
}

TEST(RunChain, RejectsAMissingSignatureWith401) {
  const auto trigger = make_trigger();
  Request req;
  FakeRateLimitStore store;
  FakeReplayStore replays;
  const auto r = run_chain(req.view(), trigger, store, replays);
  expect_rejected(r, Outcome::kSignatureMissing, 401, "signature_missing");
  EXPECT_EQ(r.hmac_verified, false);
}

TEST(RunChain, RejectsAnInvalidSignatureWith401) {
  const auto trigger = make_trigger();
  Request req;
  req.sign(trigger, "not-the-secret-0123456");
  FakeRateLimitStore store;
  FakeReplayStore replays;
  const auto r = run_chain(req.view(), trigger, store, replays);
  expect_rejected(r, Outcome::kSignatureInvalid, 401, "signature_invalid");
  EXPECT_EQ(r.hmac_verified, false);
  EXPECT_EQ(r.detail.find(kSecret), std::string::npos);
}

TEST(RunChain, TreatsAMissingHeaderListAsNoHeaders) {
  const auto trigger = make_trigger();
  Request req;
  RequestView view = req.view();
  view.headers = nullptr;
  FakeRateLimitStore store;
  FakeReplayStore replays;
  expect_rejected(run_chain(view, trigger, store, replays), Outcome::kSignatureMissing, 401,
                  "signature_missing");
}

TEST(RunChain, AcceptsThePreviousSecretOnlyUntilItsDeadline) {
  Request req;
  const std::int64_t deadline = req.clock.now_unix_ms() + 60'000;
  const auto trigger = make_trigger({.previous = kPrevious, .previous_valid_until_ms = deadline});
  req.sign(trigger, kPrevious);
  FakeRateLimitStore store;
  FakeReplayStore replays;
  EXPECT_TRUE(run_chain(req.view(), trigger, store, replays).forward);
  req.clock.set_unix_ms(deadline);
  req.headers = {};
  req.sign(trigger, kPrevious);
  expect_rejected(run_chain(req.view(), trigger, store, replays), Outcome::kSignatureInvalid, 401,
                  "signature_invalid");
}

TEST(RunChain, ChecksTimestampedSchemesAgainstTheRequestTime) {
  const auto trigger = make_trigger({.scheme = SignatureScheme::kStripe});
  Request req;
  req.sign(trigger);
  FakeRateLimitStore store;
  FakeReplayStore replays;
  EXPECT_TRUE(run_chain(req.view(), trigger, store, replays).forward);
  req.clock.advance_seconds(301);
  expect_rejected(run_chain(req.view(), trigger, store, replays), Outcome::kSignatureInvalid, 401,
                  "signature_invalid");
}

// Verifies monitor mode runs every stage, reports the first would-be failure and forwards.
TEST(RunChain, MonitorModeRunsEveryStageAndForwardsWithTheFirstFailure) {
  const auto trigger = make_trigger({.mode = Mode::kMonitor});
  Request req;
  req.source = "203.0.113.9";
  req.content_length = 5000;
  FakeRateLimitStore store;
  FakeReplayStore replays;
  store.push(FakeRateLimitStore::limited(100, 9, 9));
  const auto r = run_chain(req.view(), trigger, store, replays);
  EXPECT_TRUE(r.forward);
  EXPECT_TRUE(r.monitor_override);
  EXPECT_EQ(outcome_name(r.outcome), "payload_too_large");
  EXPECT_EQ(r.ip_allowed, false);
  EXPECT_TRUE(r.rate_limited);
  EXPECT_EQ(r.hmac_verified, false);
  EXPECT_EQ(store.calls(), 1u);
  EXPECT_FALSE(r.response_headers.get("Retry-After").has_value());
  EXPECT_NE(r.detail.find("ip_denied"), std::string::npos);
  EXPECT_NE(r.detail.find("rate_limited"), std::string::npos);
  EXPECT_NE(r.detail.find("signature_missing"), std::string::npos);
}

TEST(RunChain, MonitorModeWithStoreErrorClosedStillForwards) {
  const auto trigger =
      make_trigger({.mode = Mode::kMonitor, .on_store_error = StoreErrorMode::kClosed});
  Request req;
  req.sign(trigger);
  FakeRateLimitStore store;
  FakeReplayStore replays;
  store.push(FakeRateLimitStore::store_error("down"));
  const auto r = run_chain(req.view(), trigger, store, replays);
  EXPECT_TRUE(r.forward);
  EXPECT_TRUE(r.monitor_override);
  EXPECT_EQ(outcome_name(r.outcome), "rate_limit_store_error");
  EXPECT_EQ(r.hmac_verified, true);
}

TEST(RunChain, MonitorModeWithNothingWrongIsNoOverride) {
  const auto trigger = make_trigger({.mode = Mode::kMonitor});
  Request req;
  req.sign(trigger);
  FakeRateLimitStore store;
  FakeReplayStore replays;
  const auto r = run_chain(req.view(), trigger, store, replays);
  EXPECT_TRUE(r.forward);
  EXPECT_FALSE(r.monitor_override);
  EXPECT_EQ(r.outcome, Outcome::kForwarded);
}

TEST(RateLimitKey, IsPerTriggerWithAHashTag) {
  const auto trigger = make_trigger();
  EXPECT_EQ(rate_limit_key(trigger, *IpAddress::parse("203.0.113.7")), "hg:rl:{t42}");
}

TEST(RateLimitKey, PerSourceAddsIpv4AndTheIpv6Slash64) {
  const auto trigger = make_trigger({.per_source_ip = true});
  EXPECT_EQ(rate_limit_key(trigger, *IpAddress::parse("203.0.113.7")), "hg:rl:{t42}:203.0.113.7");
  EXPECT_EQ(rate_limit_key(trigger, *IpAddress::parse("::ffff:203.0.113.7")),
            "hg:rl:{t42}:203.0.113.7");
  EXPECT_EQ(rate_limit_key(trigger, *IpAddress::parse("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            "hg:rl:{t42}:2001:db8:1:2::");
  EXPECT_EQ(rate_limit_key(trigger, *IpAddress::parse("2001:db8:1:2::1")),
            rate_limit_key(trigger, *IpAddress::parse("2001:db8:1:2:ffff::9")));
}

TEST(RunChain, PerSourceRateLimitAsksTheStoreForThePerSourceKey) {
  const auto trigger = make_trigger({.per_source_ip = true});
  Request req;
  req.source = "2001:db8:0:7::99";
  req.sign(trigger);
  FakeRateLimitStore store;
  FakeReplayStore replays;
  EXPECT_TRUE(run_chain(req.view(), trigger, store, replays).forward);
  ASSERT_EQ(store.calls(), 1u);
  EXPECT_EQ(store.queries()[0].key, "hg:rl:{t42}:2001:db8:0:7::");
}

}  // namespace
}  // namespace hookguard::policy
