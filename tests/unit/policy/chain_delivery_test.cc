// The chain's DESIGN §4 stages — handshake, event filter, replay — and their place in the order
// size -> IP -> rate -> HMAC -> handshake -> events -> replay, with fake ports.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "policy/chain.h"
#include "policy/delivery.h"
#include "policy/encoding.h"
#include "policy/signature.h"
#include "tests/support/fake_rate_limit_store.h"
#include "tests/support/fake_replay_store.h"
#include "tests/support/manual_clock.h"

namespace hookguard::policy {
namespace {

using testing::FakeRateLimitStore;
using testing::FakeReplayStore;
using testing::ManualClock;

const std::string kSecret = "delivery-secret-0123456789";
constexpr const char* kDeliveryHeader = "X-GitHub-Delivery";
constexpr const char* kRequestId = "3b241101-e2bb-4255-8caf-4136c566a962";

struct Options {
  Mode mode = Mode::kEnforce;
  bool rate = false;
  bool replay = true;
  bool events = false;
  std::vector<std::string> allow{"push", "ping"};
  std::string source = "";
  Handshake handshake = Handshake::kNone;
};

CompiledTrigger make_trigger(const Options& o = {}) {
  TriggerSpec spec;
  spec.id = 42;
  spec.key = "wh_delivery0123456789abcdefghijklm";
  spec.name = "delivery";
  spec.mode = o.mode;
  spec.upstream_url = "http://127.0.0.1:9000/";
  spec.upstream_timeout_ms = 3000;
  spec.policy.rate_limit.enabled = o.rate;
  spec.policy.hmac.enabled = true;
  spec.policy.hmac.scheme = SignatureScheme::kGithub;
  spec.policy.replay.enabled = o.replay;
  spec.policy.replay.window_seconds = 600;
  spec.policy.events.enabled = o.events;
  spec.policy.events.allow = o.allow;
  spec.policy.events.source = o.source;
  spec.policy.handshake = o.handshake;
  auto compiled = CompiledTrigger::compile(spec, TriggerSecrets{kSecret, std::nullopt, 0});
  EXPECT_TRUE(compiled.has_value()) << compiled.error().message;
  return std::move(*compiled);
}

struct Request {
  HeaderList headers;
  std::string body = R"({"action":"opened"})";
  std::string request_id = kRequestId;
  ManualClock clock{1'700'000'000'000};

  Request& sign(std::string_view secret = kSecret) {
    headers.set("X-Hub-Signature-256", "sha256=" + hmac_hex(HmacAlgorithm::kSha256, secret, body));
    return *this;
  }
  Request& with(std::string name, std::string value) {
    headers.set(std::move(name), std::move(value));
    return *this;
  }
  RequestView view() const {
    return RequestView{
        "POST",    &headers, body, body.size(), *IpAddress::parse("192.0.2.1"), clock.now_unix_ms(),
        request_id};
  }
};

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  return to_hex(std::string_view(reinterpret_cast<const char*>(digest), size));
}

void expect_answer(const ChainResult& r, Outcome outcome, int status, std::string_view name) {
  EXPECT_FALSE(r.forward);
  EXPECT_EQ(r.outcome, outcome);
  EXPECT_EQ(outcome_info(r.outcome).http_status, status);
  EXPECT_EQ(outcome_name(r.outcome), name);
}

// ---- replay ----------------------------------------------------------------------------------

TEST(ChainReplay, ReservesAVerifiedDeliveryUnderAHashedTaggedKey) {
  const auto trigger = make_trigger();
  Request req;
  req.sign().with(kDeliveryHeader, "d-1");
  FakeRateLimitStore store;
  FakeReplayStore replays;
  const auto r = run_chain(req.view(), trigger, store, replays);
  EXPECT_TRUE(r.forward);
  EXPECT_EQ(r.outcome, Outcome::kForwarded);
  ASSERT_TRUE(r.replay.has_value());
  EXPECT_EQ(r.replay->key, "hg:rp:{t42}:" + sha256_hex("d-1"));
  EXPECT_EQ(r.replay->token, kRequestId);
  EXPECT_EQ(r.replay->window_ms, 600'000);
  EXPECT_EQ(replays.last_pending_ttl_ms(), 3000 + kReplayPendingMarginMs);
  EXPECT_EQ(r.delivery_id, "d-1");
  EXPECT_FALSE(r.replay_store_error);
}

TEST(ChainReplay, AnswersADoneDeliveryAsDuplicate200) {
  const auto trigger = make_trigger();
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request first;
  first.sign().with(kDeliveryHeader, "d-1");
  const auto r1 = run_chain(first.view(), trigger, store, replays);
  ASSERT_TRUE(r1.replay.has_value());
  ASSERT_TRUE(replays.complete(r1.replay->key, r1.replay->window_ms));

  Request second = first;
  second.request_id = "other-request";
  const auto r2 = run_chain(second.view(), trigger, store, replays);
  expect_answer(r2, Outcome::kDuplicate, 200, "duplicate");
  EXPECT_FALSE(r2.replay.has_value());
  EXPECT_NE(r2.detail.find("duplicate"), std::string::npos);
}

// Verifies the in-flight choice: 409 with Retry-After, so the sender keeps a retry in case the
// copy being forwarded fails.
TEST(ChainReplay, AnswersACopyOfAPendingDeliveryWith409AndRetryAfter) {
  const auto trigger = make_trigger();
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request first;
  first.sign().with(kDeliveryHeader, "d-1");
  ASSERT_TRUE(run_chain(first.view(), trigger, store, replays).replay.has_value());
  replays.advance_ms(1500);  // 6500 ms of the 8000 ms reservation left

  Request second = first;
  second.request_id = "other-request";
  const auto r = run_chain(second.view(), trigger, store, replays);
  expect_answer(r, Outcome::kDeliveryInFlight, 409, "delivery_in_flight");
  EXPECT_EQ(r.response_headers.get("Retry-After"), "7");
}

TEST(ChainReplay, LetsTheRetryThroughOnceTheFailedCopyReleasedItsReservation) {
  const auto trigger = make_trigger();
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request first;
  first.sign().with(kDeliveryHeader, "d-1");
  const auto r1 = run_chain(first.view(), trigger, store, replays);
  ASSERT_TRUE(r1.replay.has_value());
  ASSERT_TRUE(replays.release(r1.replay->key, r1.replay->token));

  Request retry = first;
  retry.request_id = "retry-request";
  const auto r2 = run_chain(retry.view(), trigger, store, replays);
  EXPECT_TRUE(r2.forward);
  ASSERT_TRUE(r2.replay.has_value());
  EXPECT_EQ(r2.replay->token, "retry-request");
}

TEST(ChainReplay, ReleaseDropsOnlyItsOwnReservation) {
  FakeReplayStore replays;
  ASSERT_EQ(replays.reserve("k", "a", 1000).kind, ReplayReply::Kind::kReserved);
  ASSERT_TRUE(replays.release("k", "b"));
  EXPECT_EQ(replays.reserve("k", "c", 1000).kind, ReplayReply::Kind::kPending);
}

// Verifies that a forged copy cannot burn a delivery id: the store is never asked.
TEST(ChainReplay, AForgedSignatureIsRejectedBeforeTheIdIsRecorded) {
  const auto trigger = make_trigger();
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request forged;
  forged.sign("wrong-secret-0123456789").with(kDeliveryHeader, "d-1");
  const auto r = run_chain(forged.view(), trigger, store, replays);
  expect_answer(r, Outcome::kSignatureInvalid, 401, "signature_invalid");
  EXPECT_TRUE(replays.calls().empty());
  EXPECT_EQ(r.delivery_id, "d-1");  // still logged

  Request real;
  real.sign().with(kDeliveryHeader, "d-1");
  EXPECT_TRUE(run_chain(real.view(), trigger, store, replays).replay.has_value());
}

TEST(ChainReplay, MonitorModeWithAnUnverifiedSignatureRecordsNothing) {
  const auto trigger = make_trigger({.mode = Mode::kMonitor});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request forged;
  forged.sign("wrong-secret-0123456789").with(kDeliveryHeader, "d-1");
  const auto r = run_chain(forged.view(), trigger, store, replays);
  EXPECT_TRUE(r.forward);
  EXPECT_EQ(outcome_name(r.outcome), "signature_invalid");
  EXPECT_TRUE(replays.calls().empty());
  EXPECT_FALSE(r.replay.has_value());
}

TEST(ChainReplay, MonitorModeForwardsADuplicateAndLogsIt) {
  const auto trigger = make_trigger({.mode = Mode::kMonitor});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.sign().with(kDeliveryHeader, "d-1");
  const auto r1 = run_chain(req.view(), trigger, store, replays);
  ASSERT_TRUE(replays.complete(r1.replay->key, r1.replay->window_ms));
  const auto r2 = run_chain(req.view(), trigger, store, replays);
  EXPECT_TRUE(r2.forward);
  EXPECT_TRUE(r2.monitor_override);
  EXPECT_EQ(outcome_name(r2.outcome), "duplicate");
  EXPECT_FALSE(r2.replay.has_value());
}

// Verifies the documented failure mode: replay store errors fail open, whatever on_store_error.
TEST(ChainReplay, AStoreErrorFailsOpenAndIsFlagged) {
  const auto trigger = make_trigger();
  FakeRateLimitStore store;
  FakeReplayStore replays;
  replays.set_failing(true);
  Request req;
  req.sign().with(kDeliveryHeader, "d-1");
  const auto r = run_chain(req.view(), trigger, store, replays);
  EXPECT_TRUE(r.forward);
  EXPECT_EQ(r.outcome, Outcome::kForwarded);
  EXPECT_TRUE(r.replay_store_error);
  EXPECT_FALSE(r.replay.has_value());
  EXPECT_NE(r.detail.find("replay_store_error"), std::string::npos);
}

TEST(ChainReplay, ForwardsARequestWithoutADeliveryIdUnchecked) {
  const auto trigger = make_trigger();
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.sign();
  const auto r = run_chain(req.view(), trigger, store, replays);
  EXPECT_TRUE(r.forward);
  EXPECT_TRUE(replays.calls().empty());
  EXPECT_NE(r.detail.find("replay: no delivery id"), std::string::npos);
}

TEST(ChainReplay, BoundsTheDeliveryIdAt256Bytes) {
  const auto trigger = make_trigger();
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request ok;
  ok.sign().with(kDeliveryHeader, std::string(256, 'a'));
  EXPECT_TRUE(run_chain(ok.view(), trigger, store, replays).forward);
  Request too_long;
  too_long.sign().with(kDeliveryHeader, std::string(257, 'a'));
  expect_answer(run_chain(too_long.view(), trigger, store, replays), Outcome::kBadRequest, 400,
                "bad_request");
}

TEST(ChainReplay, DisabledReplayNeverAsksTheStore) {
  const auto trigger = make_trigger({.replay = false});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.sign().with(kDeliveryHeader, "d-1");
  EXPECT_TRUE(run_chain(req.view(), trigger, store, replays).forward);
  EXPECT_TRUE(run_chain(req.view(), trigger, store, replays).forward);
  EXPECT_TRUE(replays.calls().empty());
}

// Verifies rate limiting comes first: a flood of copies is limited before replay is consulted.
TEST(ChainOrder, RateLimitComesBeforeReplay) {
  const auto trigger = make_trigger({.rate = true});
  FakeRateLimitStore store;
  store.push(FakeRateLimitStore::limited(100, 5));
  FakeReplayStore replays;
  Request req;
  req.sign().with(kDeliveryHeader, "d-1");
  expect_answer(run_chain(req.view(), trigger, store, replays), Outcome::kRateLimited, 429,
                "rate_limited");
  EXPECT_TRUE(replays.calls().empty());
}

// ---- events ----------------------------------------------------------------------------------

TEST(ChainEvents, ForwardsAListedEventFromTheSchemesDefaultHeader) {
  const auto trigger = make_trigger({.events = true});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.sign().with("X-GitHub-Event", "push").with(kDeliveryHeader, "d-1");
  const auto r = run_chain(req.view(), trigger, store, replays);
  EXPECT_TRUE(r.forward);
  EXPECT_EQ(r.event_type, "push");
}

// Verifies that events run before replay: a filtered delivery does not record its id.
TEST(ChainEvents, FiltersAnUnlistedEventWith200BeforeReplay) {
  const auto trigger = make_trigger({.events = true});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.sign().with("X-GitHub-Event", "issues").with(kDeliveryHeader, "d-1");
  const auto r = run_chain(req.view(), trigger, store, replays);
  expect_answer(r, Outcome::kFiltered, 200, "filtered");
  EXPECT_EQ(r.event_type, "issues");
  EXPECT_TRUE(replays.calls().empty());
}

TEST(ChainEvents, FiltersARequestWithoutAnEventType) {
  const auto trigger = make_trigger({.events = true});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.sign();
  const auto r = run_chain(req.view(), trigger, store, replays);
  expect_answer(r, Outcome::kFiltered, 200, "filtered");
  EXPECT_FALSE(r.event_type.has_value());
  EXPECT_NE(r.detail.find("no event type"), std::string::npos);
}

// Verifies the signature is checked before the event filter: a forged event gets 401.
TEST(ChainEvents, SignatureComesBeforeTheFilter) {
  const auto trigger = make_trigger({.events = true});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.sign("wrong-secret-0123456789").with("X-GitHub-Event", "issues");
  expect_answer(run_chain(req.view(), trigger, store, replays), Outcome::kSignatureInvalid, 401,
                "signature_invalid");
}

TEST(ChainEvents, ReadsATopLevelJsonField) {
  const auto trigger = make_trigger({.replay = false, .events = true, .source = "json:type"});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request listed;
  listed.body = R"({"type":"push","data":{"type":"nested"}})";
  listed.sign();
  const auto r1 = run_chain(listed.view(), trigger, store, replays);
  EXPECT_TRUE(r1.forward);
  EXPECT_EQ(r1.event_type, "push");

  Request nested_only;
  nested_only.body = R"({"data":{"type":"push"}})";
  nested_only.sign();
  expect_answer(run_chain(nested_only.view(), trigger, store, replays), Outcome::kFiltered, 200,
                "filtered");
}

TEST(ChainEvents, MonitorModeForwardsAFilteredEventAndLogsIt) {
  const auto trigger = make_trigger({.mode = Mode::kMonitor, .replay = false, .events = true});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.sign().with("X-GitHub-Event", "issues");
  const auto r = run_chain(req.view(), trigger, store, replays);
  EXPECT_TRUE(r.forward);
  EXPECT_TRUE(r.monitor_override);
  EXPECT_EQ(outcome_name(r.outcome), "filtered");
}

// ---- handshakes ------------------------------------------------------------------------------

TEST(ChainHandshake, AnswersASignedTmiChallenge) {
  const auto trigger = make_trigger({.handshake = Handshake::kTmi});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.body = R"({"type":"webhook.challenge","challenge":"abc\"123"})";
  req.sign().with(kDeliveryHeader, "d-1");
  const auto r = run_chain(req.view(), trigger, store, replays);
  expect_answer(r, Outcome::kChallenge, 200, "challenge");
  EXPECT_EQ(r.challenge, "abc\"123");
  EXPECT_TRUE(replays.calls().empty());  // a handshake is no delivery
}

TEST(ChainHandshake, AnswersASlackUrlVerification) {
  const auto trigger = make_trigger({.handshake = Handshake::kSlack});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.body = R"({"token":"t","challenge":"3eZbrw1aB","type":"url_verification"})";
  req.sign();
  const auto r = run_chain(req.view(), trigger, store, replays);
  expect_answer(r, Outcome::kChallenge, 200, "challenge");
  EXPECT_EQ(r.challenge, "3eZbrw1aB");
}

TEST(ChainHandshake, AnUnsignedChallengeIsRejectedBySignatureFirst) {
  const auto trigger = make_trigger({.handshake = Handshake::kSlack});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.body = R"({"challenge":"x","type":"url_verification"})";
  expect_answer(run_chain(req.view(), trigger, store, replays), Outcome::kSignatureMissing, 401,
                "signature_missing");
}

TEST(ChainHandshake, ComesBeforeTheEventFilter) {
  const auto trigger = make_trigger({.events = true, .handshake = Handshake::kTmi});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.body = R"({"type":"webhook.challenge","challenge":"c"})";
  req.sign();  // no event header: the filter would drop it
  expect_answer(run_chain(req.view(), trigger, store, replays), Outcome::kChallenge, 200,
                "challenge");
}

TEST(ChainHandshake, OnlyTheConfiguredKindIsAnswered) {
  const auto trigger = make_trigger({.replay = false, .handshake = Handshake::kTmi});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request slack;
  slack.body = R"({"type":"url_verification","challenge":"c"})";
  slack.sign();
  EXPECT_TRUE(run_chain(slack.view(), trigger, store, replays).forward);
  const auto none = make_trigger({.replay = false});
  Request tmi;
  tmi.body = R"({"type":"webhook.challenge","challenge":"c"})";
  tmi.sign();
  EXPECT_TRUE(run_chain(tmi.view(), none, store, replays).forward);
}

TEST(ChainHandshake, BoundsTheChallengeAt512Bytes) {
  const auto trigger = make_trigger({.handshake = Handshake::kTmi});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request ok;
  ok.body = R"({"type":"webhook.challenge","challenge":")" + std::string(512, 'c') + "\"}";
  ok.sign();
  EXPECT_EQ(run_chain(ok.view(), trigger, store, replays).outcome, Outcome::kChallenge);
  Request too_long;
  too_long.body = R"({"type":"webhook.challenge","challenge":")" + std::string(513, 'c') + "\"}";
  too_long.sign();
  expect_answer(run_chain(too_long.view(), trigger, store, replays), Outcome::kBadRequest, 400,
                "bad_request");
}

TEST(ChainHandshake, IsAnsweredInMonitorModeToo) {
  const auto trigger = make_trigger({.mode = Mode::kMonitor, .handshake = Handshake::kSlack});
  FakeRateLimitStore store;
  FakeReplayStore replays;
  Request req;
  req.body = R"({"type":"url_verification","challenge":"c"})";
  req.sign();
  expect_answer(run_chain(req.view(), trigger, store, replays), Outcome::kChallenge, 200,
                "challenge");
}

// ---- the chain as a resumable run (what the gateway drives with pipelined Redis calls) --------

using Step = ChainRun::Step;

ReplayReply replay_reply(ReplayReply::Kind kind, std::int64_t pending_ttl_ms = 0) {
  ReplayReply reply;
  reply.kind = kind;
  reply.pending_ttl_ms = pending_ttl_ms;
  return reply;
}

TEST(ChainRun, StopsForTheRateLimitBeforeTheSignatureAndForTheReplayStoreAfterIt) {
  const auto trigger = make_trigger({.rate = true});
  Request req;
  req.sign().with(kDeliveryHeader, "d-run");
  const RequestView view = req.view();
  ChainRun run(view, trigger);

  ASSERT_EQ(run.advance(), Step::kNeedRateLimit);
  EXPECT_EQ(run.rate_query().key, "hg:rl:{t42}");
  EXPECT_FALSE(run.result().hmac_verified.has_value()) << "the signature is checked after the rate";
  run.answer(FakeRateLimitStore::allowed(100, 99, 60));

  ASSERT_EQ(run.advance(), Step::kNeedReplay);
  EXPECT_EQ(run.result().hmac_verified, true);
  EXPECT_EQ(run.replay_question().key, "hg:rp:{t42}:" + sha256_hex("d-run"));
  EXPECT_EQ(run.replay_question().token, kRequestId);
  EXPECT_EQ(run.replay_question().pending_ttl_ms, 3000 + kReplayPendingMarginMs);
  run.answer(replay_reply(ReplayReply::Kind::kReserved));

  ASSERT_EQ(run.advance(), Step::kDone);
  const ChainResult& r = run.result();
  EXPECT_TRUE(r.forward);
  EXPECT_EQ(r.outcome, Outcome::kForwarded);
  EXPECT_EQ(*r.response_headers.get("RateLimit-Remaining"), "99");
  ASSERT_TRUE(r.replay.has_value());
  EXPECT_EQ(r.replay->key, run.replay_question().key);
  EXPECT_EQ(r.replay->window_ms, 600'000);
  // Finished: advancing again changes nothing and asks for nothing.
  EXPECT_EQ(run.advance(), Step::kDone);
  EXPECT_TRUE(run.result().forward);
}

TEST(ChainRun, ALimitedAnswerEndsTheRunWithoutHashingTheBody) {
  const auto trigger = make_trigger({.rate = true});
  Request req;
  req.sign().with(kDeliveryHeader, "d-limited");
  const RequestView view = req.view();
  ChainRun run(view, trigger);
  ASSERT_EQ(run.advance(), Step::kNeedRateLimit);
  run.answer(FakeRateLimitStore::limited(100, 7));
  ASSERT_EQ(run.advance(), Step::kDone);
  expect_answer(run.result(), Outcome::kRateLimited, 429, "rate_limited");
  EXPECT_TRUE(run.result().rate_limited);
  EXPECT_FALSE(run.result().hmac_verified.has_value());
  EXPECT_EQ(*run.result().response_headers.get("Retry-After"), "7");
}

TEST(ChainRun, AnUnsignedRequestNeverAsksTheReplayStore) {
  const auto trigger = make_trigger({.rate = true});
  Request req;
  req.with(kDeliveryHeader, "d-unsigned");
  const RequestView view = req.view();
  ChainRun run(view, trigger);
  ASSERT_EQ(run.advance(), Step::kNeedRateLimit);
  run.answer(FakeRateLimitStore::allowed(100, 99, 60));
  ASSERT_EQ(run.advance(), Step::kDone);
  expect_answer(run.result(), Outcome::kSignatureMissing, 401, "signature_missing");
}

TEST(ChainRun, MonitorModeAsksBothStoresAndForwardsWhatEnforceWouldHaveLimited) {
  const auto trigger = make_trigger({.mode = Mode::kMonitor, .rate = true});
  Request req;
  req.sign().with(kDeliveryHeader, "d-monitor");
  const RequestView view = req.view();
  ChainRun run(view, trigger);
  ASSERT_EQ(run.advance(), Step::kNeedRateLimit);
  run.answer(FakeRateLimitStore::limited(100, 7));
  ASSERT_EQ(run.advance(), Step::kNeedReplay);
  run.answer(replay_reply(ReplayReply::Kind::kPending, 2500));
  ASSERT_EQ(run.advance(), Step::kDone);
  const ChainResult& r = run.result();
  EXPECT_TRUE(r.forward);
  EXPECT_TRUE(r.monitor_override);
  EXPECT_EQ(r.outcome, Outcome::kRateLimited) << "the first stage that would have rejected";
  EXPECT_TRUE(r.rate_limited);
  EXPECT_FALSE(r.response_headers.get("Retry-After").has_value());
}

TEST(ChainRun, AStoreErrorAnswerFailsOpenOrClosedLikeTheBlockingChain) {
  for (const bool open : {true, false}) {
    TriggerSpec spec = make_trigger({.rate = true, .replay = false}).spec;
    spec.policy.rate_limit.on_store_error = open ? StoreErrorMode::kOpen : StoreErrorMode::kClosed;
    auto trigger = CompiledTrigger::compile(spec, TriggerSecrets{kSecret, std::nullopt, 0});
    ASSERT_TRUE(trigger.has_value());
    Request req;
    req.sign();
    const RequestView view = req.view();
    ChainRun run(view, *trigger);
    ASSERT_EQ(run.advance(), Step::kNeedRateLimit);
    run.answer(FakeRateLimitStore::store_error("redis io: timeout"));
    ASSERT_EQ(run.advance(), Step::kDone);

    FakeRateLimitStore store;
    store.push(FakeRateLimitStore::store_error("redis io: timeout"));
    FakeReplayStore replays;
    const auto blocking = run_chain(view, *trigger, store, replays);
    EXPECT_EQ(run.result().forward, open);
    EXPECT_EQ(run.result().forward, blocking.forward);
    EXPECT_EQ(run.result().outcome, blocking.outcome);
    EXPECT_EQ(run.result().detail, blocking.detail);
    EXPECT_TRUE(run.result().rate_limit_store_error);
  }
}

}  // namespace
}  // namespace hookguard::policy
