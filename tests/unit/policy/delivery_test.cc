#include "policy/delivery.h"

#include <gtest/gtest.h>

#include <string>

namespace hookguard::policy {
namespace {

TriggerPolicy with_scheme(SignatureScheme scheme) {
  TriggerPolicy policy;
  policy.hmac.scheme = scheme;
  return policy;
}

TEST(DeliveryIdHeader, DefaultsPerScheme) {
  const HeaderList none;
  EXPECT_EQ(delivery_id_header(with_scheme(SignatureScheme::kGithub), none), "X-GitHub-Delivery");
  EXPECT_EQ(delivery_id_header(with_scheme(SignatureScheme::kStandardWebhooks), none),
            "webhook-id");
  for (auto scheme : {SignatureScheme::kGeneric, SignatureScheme::kStripe, SignatureScheme::kSlack,
                      SignatureScheme::kShopify}) {
    EXPECT_EQ(delivery_id_header(with_scheme(scheme), none), "X-Webhook-Delivery-Id");
  }
}

// Verifies the id read is the one the signature covered: the svix family only when the
// request is signed with it.
TEST(DeliveryIdHeader, StandardWebhooksFollowsTheSignedHeaderFamily) {
  const auto policy = with_scheme(SignatureScheme::kStandardWebhooks);
  const HeaderList svix{{"svix-id", "msg_s"}, {"svix-signature", "v1,x"}};
  EXPECT_EQ(delivery_id(policy, svix), "msg_s");
  const HeaderList mixed{
      {"svix-id", "msg_s"}, {"webhook-id", "msg_w"}, {"webhook-signature", "v1,x"}};
  EXPECT_EQ(delivery_id(policy, mixed), "msg_w");
}

TEST(DeliveryIdHeader, AConfiguredHeaderWins) {
  auto policy = with_scheme(SignatureScheme::kGithub);
  policy.replay.header = "X-Custom-Id";
  const HeaderList headers{{"X-GitHub-Delivery", "g"}, {"x-custom-id", "  c-1 "}};
  EXPECT_EQ(delivery_id(policy, headers), "c-1");
  EXPECT_EQ(delivery_id(policy, HeaderList{{"X-Custom-Id", " "}}), std::nullopt);
}

TEST(EventSource, DefaultsPerSchemeAndParsesBothKinds) {
  auto github = with_scheme(SignatureScheme::kGithub);
  EXPECT_EQ(event_source(github).name, "X-GitHub-Event");
  EXPECT_EQ(event_source(with_scheme(SignatureScheme::kStripe)).name, "X-Webhook-Event");
  github.events.source = "json:event.type";
  EXPECT_EQ(event_source(github).kind, EventSource::Kind::kJson);
  EXPECT_EQ(event_source(github).name, "event.type");  // one top-level field, dots included
  github.events.source = "header:X-Topic";
  EXPECT_EQ(event_source(github).kind, EventSource::Kind::kHeader);
  EXPECT_EQ(event_source(github).name, "X-Topic");
}

TEST(EventType, ReadsAHeaderWithoutTouchingTheBody) {
  const EventSource source{EventSource::Kind::kHeader, "X-GitHub-Event"};
  EXPECT_EQ(event_type(source, HeaderList{{"x-github-event", "push"}}, "not json"), "push");
  EXPECT_EQ(header_event_type({EventSource::Kind::kJson, "type"}, HeaderList{{"type", "x"}}),
            std::nullopt);
}

struct JsonCase {
  std::string body;
  std::optional<std::string> expected;
};

class TopLevelJsonString : public ::testing::TestWithParam<JsonCase> {};

TEST_P(TopLevelJsonString, ExtractsOnlyAnUnambiguousTopLevelString) {
  EXPECT_EQ(top_level_json_string(GetParam().body, "type"), GetParam().expected) << GetParam().body;
}

INSTANTIATE_TEST_SUITE_P(
    Bodies, TopLevelJsonString,
    ::testing::Values(JsonCase{R"({"type":"push"})", "push"},
                      JsonCase{R"({"a":{"type":"x"},"b":[{"type":"y"}],"type":"push"})", "push"},
                      JsonCase{R"({"type":"caf\u00e9"})", "caf\xc3\xa9"},
                      JsonCase{R"({"a":{"type":"x"}})", std::nullopt},
                      JsonCase{R"({"type":1})", std::nullopt},
                      JsonCase{R"({"type":{"type":"x"}})", std::nullopt},
                      JsonCase{R"({"type":"push","type":"delete"})", std::nullopt},
                      JsonCase{R"(["type","push"])", std::nullopt},
                      JsonCase{R"("push")", std::nullopt},
                      JsonCase{R"({"type":"push")", std::nullopt},
                      JsonCase{R"({"type":"push"} trailing)", std::nullopt},
                      JsonCase{"", std::nullopt}, JsonCase{"{\"type\":\"\xff\"}", std::nullopt}));

// Verifies nesting is bounded (no deep recursion, no DOM) and past the bound nothing is found.
TEST(TopLevelJsonStringLimits, RefusesNestingDeeperThan64) {
  const auto nested = [](std::size_t depth) {
    return "{\"type\":\"push\",\"x\":" + std::string(depth - 1, '[') + std::string(depth - 1, ']') +
           "}";
  };
  EXPECT_EQ(top_level_json_string(nested(64), "type"), "push");
  EXPECT_EQ(top_level_json_string(nested(65), "type"), std::nullopt);
  EXPECT_EQ(top_level_json_string(std::string(100000, '['), "type"), std::nullopt);
}

TEST(CheckHandshake, RecognisesEachKindOnlyWhenConfigured) {
  const std::string tmi = R"({"type":"webhook.challenge","challenge":"abc"})";
  const std::string slack = R"({"token":"x","challenge":"def","type":"url_verification"})";
  EXPECT_EQ(check_handshake(Handshake::kTmi, tmi).kind, HandshakeCheck::Kind::kChallenge);
  EXPECT_EQ(check_handshake(Handshake::kTmi, tmi).challenge, "abc");
  EXPECT_EQ(check_handshake(Handshake::kSlack, slack).challenge, "def");
  EXPECT_EQ(check_handshake(Handshake::kTmi, slack).kind, HandshakeCheck::Kind::kNotHandshake);
  EXPECT_EQ(check_handshake(Handshake::kSlack, tmi).kind, HandshakeCheck::Kind::kNotHandshake);
  EXPECT_EQ(check_handshake(Handshake::kNone, tmi).kind, HandshakeCheck::Kind::kNotHandshake);
}

TEST(CheckHandshake, RejectsAMissingEmptyOrOversizeChallenge) {
  using Kind = HandshakeCheck::Kind;
  const auto body = [](const std::string& challenge_json) {
    return R"({"type":"url_verification","challenge":)" + challenge_json + "}";
  };
  EXPECT_EQ(check_handshake(Handshake::kSlack, R"({"type":"url_verification"})").kind,
            Kind::kBadChallenge);
  EXPECT_EQ(check_handshake(Handshake::kSlack, body("\"\"")).kind, Kind::kBadChallenge);
  EXPECT_EQ(check_handshake(Handshake::kSlack, body("42")).kind, Kind::kBadChallenge);
  EXPECT_EQ(check_handshake(Handshake::kSlack, body('"' + std::string(512, 'c') + '"')).kind,
            Kind::kChallenge);
  EXPECT_EQ(check_handshake(Handshake::kSlack, body('"' + std::string(513, 'c') + '"')).kind,
            Kind::kBadChallenge);
}

TEST(CheckHandshake, IgnoresBodiesLargerThan4KiB) {
  const std::string big =
      R"({"type":"url_verification","challenge":"c","pad":")" + std::string(4096, 'p') + "\"}";
  EXPECT_EQ(check_handshake(Handshake::kSlack, big).kind, HandshakeCheck::Kind::kNotHandshake);
}

TEST(ReplayKey, HashesTheIdUnderTheTriggersHashTag) {
  CompiledTrigger trigger;
  trigger.spec.id = 7;
  const auto key = replay_key(trigger, "d-1");
  EXPECT_TRUE(key.starts_with("hg:rp:{t7}:")) << key;
  EXPECT_EQ(key.size(), std::string("hg:rp:{t7}:").size() + 64);
  EXPECT_NE(key, replay_key(trigger, "d-2"));
  EXPECT_EQ(replay_key(trigger, std::string(256, '\n')).size(), key.size());
}

}  // namespace
}  // namespace hookguard::policy
