// The replay, events and handshake fields of the Trigger document (DESIGN §4): decoding with
// field paths, validation, PATCH, and the JSON/YAML round trips.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "policy/trigger_codec.h"
#include "policy/trigger_policy.h"

namespace hookguard::policy {
namespace {

const char* const kDelivery = R"({
  "name": "github-main", "upstream_url": "http://127.0.0.1:9000/github",
  "policy": {
    "hmac": {"enabled": true, "scheme": "standard-webhooks", "secret": "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="},
    "replay": {"enabled": true, "window_seconds": 3600, "header": "webhook-id"},
    "events": {"enabled": true, "allow": ["push", "ping"], "source": "header:X-GitHub-Event"},
    "handshake": "tmi"
  }
})";

TriggerSpec valid_spec() {
  TriggerSpec spec;
  spec.key = "wh_0123456789abcdefghijABCDEFGHIJ";
  spec.name = "n";
  spec.upstream_url = "http://127.0.0.1:9000/";
  spec.policy.hmac.enabled = true;
  return spec;
}

void expect_invalid(const TriggerSpec& spec, const std::string& field, const std::string& message) {
  auto result = validate(spec);
  ASSERT_FALSE(result.has_value()) << "expected an error on " << field;
  EXPECT_EQ(result.error().code, "invalid_request");
  EXPECT_EQ(result.error().field, field);
  EXPECT_EQ(result.error().message, message);
}

TEST(TriggerFromJsonDelivery, DecodesTheDesignSnippet) {
  auto input = trigger_from_json(kDelivery, DecodeMode::kCreate);
  ASSERT_TRUE(input.has_value()) << input.error().message;
  const auto& p = input->spec.policy;
  EXPECT_EQ(p.replay, (ReplayPolicy{true, 3600, "webhook-id"}));
  EXPECT_EQ(p.events, (EventFilterPolicy{true, {"push", "ping"}, "header:X-GitHub-Event"}));
  EXPECT_EQ(p.handshake, Handshake::kTmi);
  EXPECT_TRUE(input->present.contains("policy.replay.window_seconds"));
  EXPECT_TRUE(input->present.contains("policy.events.allow"));
  EXPECT_TRUE(input->present.contains("policy.handshake"));
  auto spec = input->spec;
  spec.key = "wh_0123456789abcdefghijABCDEFGHIJ";
  EXPECT_TRUE(validate(spec).has_value()) << validate(spec).error().message;
}

TEST(TriggerFromJsonDelivery, DefaultsWhenAbsent) {
  auto input =
      trigger_from_json(R"({"name": "n", "upstream_url": "http://h/"})", DecodeMode::kCreate);
  ASSERT_TRUE(input.has_value());
  EXPECT_EQ(input->spec.policy.replay, (ReplayPolicy{false, 86400, ""}));
  EXPECT_EQ(input->spec.policy.events, (EventFilterPolicy{}));
  EXPECT_EQ(input->spec.policy.handshake, Handshake::kNone);
}

TEST(TriggerFromJsonDelivery, NamesTheFieldOfEachDecodingError) {
  const auto decode = [](const std::string& policy) {
    return trigger_from_json(
        R"({"name": "n", "upstream_url": "http://h/", "policy": )" + policy + "}",
        DecodeMode::kCreate);
  };
  struct Case {
    std::string policy, field, message;
  };
  const Case cases[] = {
      {R"({"replay": {"enabled": "yes"}})", "policy.replay.enabled",
       "policy.replay.enabled: expected a boolean (true or false)"},
      {R"({"replay": {"window": 5}})", "policy.replay.window",
       "policy.replay.window: unknown field"},
      {R"({"replay": {"window_seconds": 1.5}})", "policy.replay.window_seconds",
       "policy.replay.window_seconds: expected an integer"},
      {R"({"events": {"allow": "push"}})", "policy.events.allow",
       "policy.events.allow: expected a list"},
      {R"({"events": {"allow": ["push", 3]}})", "policy.events.allow[1]",
       "policy.events.allow[1]: expected a string"},
      {R"({"handshake": "twitch"})", "policy.handshake",
       "policy.handshake: unknown handshake (expected none, tmi or slack)"},
      {R"({"handshake": {"kind": "tmi"}})", "policy.handshake",
       "policy.handshake: expected a string"},
  };
  for (const auto& c : cases) {
    auto result = decode(c.policy);
    ASSERT_FALSE(result.has_value()) << c.policy;
    EXPECT_EQ(result.error().field, c.field) << c.policy;
    EXPECT_EQ(result.error().message, c.message) << c.policy;
  }
}

TEST(ValidateDelivery, BoundsTheReplayWindowAndHeader) {
  auto spec = valid_spec();
  spec.policy.replay.window_seconds = 0;
  expect_invalid(spec, "policy.replay.window_seconds",
                 "policy.replay.window_seconds: must be between 1 and 604800 (got 0)");
  spec.policy.replay.window_seconds = 604801;
  expect_invalid(spec, "policy.replay.window_seconds",
                 "policy.replay.window_seconds: must be between 1 and 604800 (got 604801)");
  spec.policy.replay.window_seconds = 604800;
  EXPECT_TRUE(validate(spec).has_value());
  spec.policy.replay.header = "Bad Header";
  expect_invalid(spec, "policy.replay.header", "policy.replay.header: not a valid header name");
}

// Verifies replay cannot be enabled without a signature to verify before recording an id.
TEST(ValidateDelivery, ReplayNeedsHmac) {
  auto spec = valid_spec();
  spec.policy.replay.enabled = true;
  EXPECT_TRUE(validate(spec).has_value());
  spec.policy.hmac.enabled = false;
  expect_invalid(spec, "policy.replay.enabled",
                 "policy.replay.enabled: requires policy.hmac.enabled");
}

TEST(ValidateDelivery, BoundsTheEventAllowlist) {
  auto spec = valid_spec();
  spec.policy.events.enabled = true;
  expect_invalid(spec, "policy.events.allow",
                 "policy.events.allow: must not be empty when events are enabled");
  spec.policy.events.allow.assign(100, "");
  for (std::size_t i = 0; i < 100; ++i) spec.policy.events.allow[i] = "e" + std::to_string(i);
  EXPECT_TRUE(validate(spec).has_value());
  spec.policy.events.allow.push_back("e100");
  expect_invalid(spec, "policy.events.allow", "policy.events.allow: at most 100 entries (got 101)");
  spec.policy.events.allow = {"push", std::string(129, 'x')};
  expect_invalid(spec, "policy.events.allow[1]", "policy.events.allow[1]: must be 1-128 bytes");
  spec.policy.events.allow = {"push", std::string(128, 'x')};
  EXPECT_TRUE(validate(spec).has_value());
  spec.policy.events.allow = {"push", "push"};
  expect_invalid(spec, "policy.events.allow[1]", "policy.events.allow[1]: duplicate event type");
  spec.policy.events.allow = {"a\nb"};
  expect_invalid(spec, "policy.events.allow[0]",
                 "policy.events.allow[0]: contains a control character");
}

TEST(ValidateDelivery, AcceptsOnlyHeaderOrJsonSources) {
  auto spec = valid_spec();
  for (const char* ok : {"", "header:X-Event", "json:type", "json:event.type"}) {
    spec.policy.events.source = ok;
    EXPECT_TRUE(validate(spec).has_value()) << ok;
  }
  const std::string message =
      "policy.events.source: must be header:<Name> or json:<top-level field>";
  for (const char* bad : {"X-GitHub-Event", "body:type", "HEADER:X"}) {
    spec.policy.events.source = bad;
    expect_invalid(spec, "policy.events.source", message);
  }
  spec.policy.events.source = "header:Bad Name";
  expect_invalid(spec, "policy.events.source",
                 "policy.events.source: header:<Name> needs a valid header name");
  spec.policy.events.source = "json:";
  expect_invalid(spec, "policy.events.source",
                 "policy.events.source: json:<field> needs a field name of 1-128 bytes without "
                 "control characters");
}

TEST(ApplyPatchDelivery, CopiesOnlyTheGivenDeliveryFields) {
  TriggerSpec target = valid_spec();
  target.policy.events = {true, {"push"}, "header:X-GitHub-Event"};
  auto patch = trigger_from_json(R"({"policy": {"replay": {"window_seconds": 60},
                                                 "handshake": "slack"}})",
                                 DecodeMode::kPatch);
  ASSERT_TRUE(patch.has_value()) << patch.error().message;
  apply_patch(target, *patch);
  EXPECT_EQ(target.policy.replay, (ReplayPolicy{false, 60, ""}));
  EXPECT_EQ(target.policy.handshake, Handshake::kSlack);
  EXPECT_EQ(target.policy.events, (EventFilterPolicy{true, {"push"}, "header:X-GitHub-Event"}));
}

TEST(TriggerToJsonDelivery, PlacesTheFieldsBesideHmacAndReadsBack) {
  auto input = trigger_from_json(kDelivery, DecodeMode::kCreate);
  ASSERT_TRUE(input.has_value());
  const auto text = trigger_to_json(input->spec, true, "c", "u");
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(
      j["policy"]["replay"],
      nlohmann::json::parse(R"({"enabled":true,"window_seconds":3600,"header":"webhook-id"})"));
  EXPECT_EQ(j["policy"]["events"]["allow"], nlohmann::json::parse(R"(["push","ping"])"));
  EXPECT_EQ(j["policy"]["events"]["source"], "header:X-GitHub-Event");
  EXPECT_EQ(j["policy"]["handshake"], "tmi");

  auto back = nlohmann::json::parse(text);
  for (const char* read_only : {"id", "version", "created", "updated"}) back.erase(read_only);
  back["policy"]["hmac"].erase("secret_set");
  auto decoded = trigger_from_json(back.dump(), DecodeMode::kCreate);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(decoded->spec.policy, input->spec.policy);
}

TEST(TriggersToYamlDelivery, ExportRoundTripsTheDeliveryFields) {
  TriggerSpec spec = valid_spec();
  spec.policy.replay = {true, 120, "X-Delivery"};
  spec.policy.events = {true, {"push", "true", "123", "a: b"}, "json:type"};
  spec.policy.handshake = Handshake::kSlack;
  const auto text = triggers_to_yaml({spec});
  auto inputs = triggers_from_yaml(text);
  ASSERT_TRUE(inputs.has_value()) << inputs.error().message << "\n" << text;
  ASSERT_EQ(inputs->size(), 1u);
  EXPECT_EQ((*inputs)[0].spec.policy, spec.policy) << text;
}

TEST(TriggersFromYamlDelivery, ReadsTheFieldsFromATriggersFile) {
  auto inputs = triggers_from_yaml(R"(
triggers:
  - name: github-main
    upstream_url: http://127.0.0.1:9000/github
    policy:
      hmac: {enabled: true, scheme: github, secret_env: GITHUB_WEBHOOK_SECRET}
      replay: {enabled: true, window_seconds: 86400}
      events: {enabled: true, allow: [push, ping]}
      handshake: none
)");
  ASSERT_TRUE(inputs.has_value()) << inputs.error().message;
  const auto& p = (*inputs)[0].spec.policy;
  EXPECT_TRUE(p.replay.enabled);
  EXPECT_EQ(p.events.allow, (std::vector<std::string>{"push", "ping"}));
  EXPECT_EQ(p.handshake, Handshake::kNone);
}

}  // namespace
}  // namespace hookguard::policy
