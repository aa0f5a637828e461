#include "policy/trigger_codec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hookguard::policy {
namespace {

using nlohmann::json;

// Every field of DESIGN §5 set to a non-default value.
const char* const kFullCreate = R"({
  "key": "wh_0123456789abcdefghijABCDEFGHIJ", "name": "github-main", "description": "main repo",
  "enabled": false, "mode": "monitor", "methods": ["POST", "PUT"],
  "upstream_url": "http://127.0.0.1:9000/github", "upstream_timeout_ms": 5000,
  "policy": {
    "payload_size_limit_kb": 512,
    "ip_allowlist": {"enabled": true, "cidrs": ["192.30.252.0/22", "2001:db8::/32"]},
    "rate_limit": {"enabled": true, "requests": 7, "window_seconds": 30,
                   "per_source_ip": true, "on_store_error": "closed"},
    "hmac": {"enabled": true, "scheme": "github", "algorithm": "sha1",
             "header": "X-Hub-Signature", "secret": "0123456789abcdef0123",
             "timestamp_tolerance_seconds": 120}
  }
})";

TriggerSpec full_spec() {
  TriggerSpec spec;
  spec.key = "wh_0123456789abcdefghijABCDEFGHIJ";
  spec.name = "github-main";
  spec.description = "main repo";
  spec.enabled = false;
  spec.mode = Mode::kMonitor;
  spec.methods = {"POST", "PUT"};
  spec.upstream_url = "http://127.0.0.1:9000/github";
  spec.upstream_timeout_ms = 5000;
  spec.policy.payload_size_limit_kb = 512;
  spec.policy.ip_allowlist = {true, {"192.30.252.0/22", "2001:db8::/32"}};
  spec.policy.rate_limit = {true, 7, 30, true, StoreErrorMode::kClosed};
  spec.policy.hmac = {true, SignatureScheme::kGithub, HmacAlgorithm::kSha1, "X-Hub-Signature", 120};
  return spec;
}

void expect_error(const Result<TriggerInput>& result, const std::string& field,
                  const std::string& message) {
  ASSERT_FALSE(result.has_value()) << "expected an error on " << field;
  EXPECT_EQ(result.error().code, "invalid_request");
  EXPECT_EQ(result.error().field, field);
  EXPECT_EQ(result.error().message, message);
}

std::string minimal_with(const std::string& extra) {
  return R"({"name": "n", "upstream_url": "http://h/")" + (extra.empty() ? "" : ", " + extra) + "}";
}

// --- JSON: every field --------------------------------------------------------------------------

TEST(TriggerFromJson, DecodesEveryField) {
  auto input = trigger_from_json(kFullCreate, DecodeMode::kCreate);
  ASSERT_TRUE(input.has_value()) << input.error().message;
  EXPECT_EQ(input->spec, full_spec());
  EXPECT_EQ(input->secret, "0123456789abcdef0123");
  EXPECT_FALSE(input->secret_env.has_value());
  EXPECT_EQ(input->present.size(), 22u);
  EXPECT_TRUE(input->present.contains("policy.hmac.timestamp_tolerance_seconds"));
  EXPECT_TRUE(input->present.contains("policy.hmac.secret"));
}

TEST(TriggerFromJson, LeavesDefaultsForAbsentFields) {
  auto input = trigger_from_json(minimal_with(""), DecodeMode::kCreate);
  ASSERT_TRUE(input.has_value()) << input.error().message;
  TriggerSpec expected;
  expected.name = "n";
  expected.upstream_url = "http://h/";
  EXPECT_EQ(input->spec, expected);
  EXPECT_EQ(input->present, (std::set<std::string>{"name", "upstream_url"}));
}

TEST(TriggerFromJson, RequiresNameAndUrlOnCreate) {
  expect_error(trigger_from_json(R"({"upstream_url": "http://h/"})", DecodeMode::kCreate), "name",
               "name: required");
  expect_error(trigger_from_json(R"({"name": "n"})", DecodeMode::kFile), "upstream_url",
               "upstream_url: required");
}

// --- unknown fields at every level ---------------------------------------------------------------

struct UnknownCase {
  std::string body;
  std::string field;
};

class TriggerFromJsonUnknown : public ::testing::TestWithParam<UnknownCase> {};

TEST_P(TriggerFromJsonUnknown, RejectsTheUnknownField) {
  expect_error(trigger_from_json(minimal_with(GetParam().body), DecodeMode::kCreate),
               GetParam().field, GetParam().field + ": unknown field");
}

INSTANTIATE_TEST_SUITE_P(
    EveryLevel, TriggerFromJsonUnknown,
    ::testing::Values(
        UnknownCase{R"("nmae": "x")", "nmae"},
        UnknownCase{R"("policy": {"payload_size": 1})", "policy.payload_size"},
        UnknownCase{R"("policy": {"ip_allowlist": {"cidr": []}})", "policy.ip_allowlist.cidr"},
        UnknownCase{R"("policy": {"rate_limit": {"reqests": 5}})", "policy.rate_limit.reqests"},
        UnknownCase{R"("policy": {"hmac": {"secrets": "x"}})", "policy.hmac.secrets"},
        // A dotted key must not alias the nested field it spells.
        UnknownCase{R"("policy.hmac": {"enabled": true})", "policy.hmac"},
        UnknownCase{R"("policy": {"rate_limit.requests": 5})", "policy.rate_limit.requests"}));

TEST(TriggerFromJson, MakesUnknownKeysPrintableInMessages) {
  expect_error(trigger_from_json(minimal_with(R"("a\nb": 1)"), DecodeMode::kCreate), "a?b",
               "a?b: unknown field");
}

// --- wrong JSON types
// ------------------------------------------------------------------------------

struct TypeCase {
  std::string body;
  std::string field;
  std::string reason;
};

class TriggerFromJsonTypes : public ::testing::TestWithParam<TypeCase> {};

TEST_P(TriggerFromJsonTypes, RejectsTheWrongType) {
  expect_error(trigger_from_json(minimal_with(GetParam().body), DecodeMode::kCreate),
               GetParam().field, GetParam().field + ": " + GetParam().reason);
}

INSTANTIATE_TEST_SUITE_P(
    EveryKind, TriggerFromJsonTypes,
    ::testing::Values(
        TypeCase{R"("enabled": "true")", "enabled", "expected a boolean (true or false)"},
        TypeCase{R"("enabled": 1)", "enabled", "expected a boolean (true or false)"},
        TypeCase{R"("description": null)", "description", "expected a string"},
        TypeCase{R"("key": 5)", "key", "expected a string"},
        TypeCase{R"("upstream_timeout_ms": "8000")", "upstream_timeout_ms", "expected an integer"},
        TypeCase{R"("upstream_timeout_ms": 8000.5)", "upstream_timeout_ms", "expected an integer"},
        TypeCase{R"("upstream_timeout_ms": 1e3)", "upstream_timeout_ms", "expected an integer"},
        TypeCase{R"("upstream_timeout_ms": 4294967296)", "upstream_timeout_ms", "out of range"},
        TypeCase{R"("policy": {"rate_limit": {"requests": "100"}})", "policy.rate_limit.requests",
                 "expected an integer"},
        TypeCase{R"("policy": {"rate_limit": {"requests": 18446744073709551615}})",
                 "policy.rate_limit.requests", "out of range"},
        TypeCase{R"("methods": "POST")", "methods", "expected a list"},
        TypeCase{R"("methods": ["POST", 1])", "methods[1]", "expected a string"},
        TypeCase{R"("policy": {"ip_allowlist": {"cidrs": [["10.0.0.0/8"]]}})",
                 "policy.ip_allowlist.cidrs[0]", "expected a string"},
        TypeCase{R"("policy": [])", "policy", "expected an object"},
        TypeCase{R"("policy": {"hmac": true})", "policy.hmac", "expected an object"},
        TypeCase{R"("mode": "shadow")", "mode", "unknown mode (expected enforce or monitor)"},
        TypeCase{R"("policy": {"rate_limit": {"on_store_error": "fail"}})",
                 "policy.rate_limit.on_store_error",
                 "unknown on_store_error (expected open or closed)"},
        TypeCase{R"("policy": {"hmac": {"algorithm": "md5"}})", "policy.hmac.algorithm",
                 "unknown algorithm (expected sha256, sha512 or sha1)"},
        TypeCase{R"("policy": {"hmac": {"scheme": "gitlab"}})", "policy.hmac.scheme",
                 "unknown scheme (expected generic, github, stripe, slack, standard-webhooks or "
                 "shopify)"},
        TypeCase{R"("policy": {"hmac": {"secret": 12345}})", "policy.hmac.secret",
                 "expected a string"}));

TEST(TriggerFromJson, RejectsANonObjectDocument) {
  auto result = trigger_from_json("[]", DecodeMode::kCreate);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().message, "expected an object");
  EXPECT_EQ(result.error().field, "");
}

TEST(TriggerFromJson, ReportsTheByteOfASyntaxErrorWithoutEchoingTheInput) {
  auto result = trigger_from_json(R"({"name": "supersecret" x})", DecodeMode::kCreate);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, "invalid_request");
  EXPECT_EQ(result.error().message, "invalid JSON at byte 24");
  EXPECT_EQ(result.error().message.find("supersecret"), std::string::npos);

  EXPECT_EQ(trigger_from_json("", DecodeMode::kCreate).error().message, "invalid JSON at byte 1");
}

TEST(TriggerFromJson, RejectsDuplicateKeys) {
  expect_error(
      trigger_from_json(minimal_with(R"("enabled": true, "enabled": false)"), DecodeMode::kCreate),
      "enabled", "enabled: duplicate field");
}

// --- read-only and mode-dependent fields ------------------------------------------------------

struct ReadOnlyCase {
  DecodeMode mode;
  std::string body;
  std::string field;
};

class TriggerFromJsonReadOnly : public ::testing::TestWithParam<ReadOnlyCase> {};

TEST_P(TriggerFromJsonReadOnly, NamesTheReadOnlyField) {
  expect_error(trigger_from_json(minimal_with(GetParam().body), GetParam().mode), GetParam().field,
               GetParam().field + ": read-only field");
}

INSTANTIATE_TEST_SUITE_P(
    EveryMode, TriggerFromJsonReadOnly,
    ::testing::Values(
        ReadOnlyCase{DecodeMode::kCreate, R"("id": 4)", "id"},
        ReadOnlyCase{DecodeMode::kPatch, R"("id": 4)", "id"},
        ReadOnlyCase{DecodeMode::kFile, R"("id": 4)", "id"},
        ReadOnlyCase{DecodeMode::kCreate, R"("created": "x")", "created"},
        ReadOnlyCase{DecodeMode::kPatch, R"("updated": "x")", "updated"},
        ReadOnlyCase{DecodeMode::kCreate, R"("version": 3)", "version"},
        ReadOnlyCase{DecodeMode::kFile, R"("version": 3)", "version"},
        ReadOnlyCase{DecodeMode::kPatch, R"("key": "wh_x")", "key"},
        ReadOnlyCase{DecodeMode::kCreate, R"("hmac_secret_enc": "x")", "hmac_secret_enc"},
        ReadOnlyCase{DecodeMode::kPatch, R"("policy": {"hmac": {"secret_set": true}})",
                     "policy.hmac.secret_set"}));

TEST(TriggerFromJson, AcceptsKeyOnCreateAndInAFile) {
  for (auto mode : {DecodeMode::kCreate, DecodeMode::kFile}) {
    auto input = trigger_from_json(minimal_with(R"("key": "wh_abc")"), mode);
    ASSERT_TRUE(input.has_value()) << input.error().message;
    EXPECT_EQ(input->spec.key, "wh_abc");
    EXPECT_TRUE(input->present.contains("key"));
  }
}

TEST(TriggerFromJson, AllowsSecretEnvOnlyInAFile) {
  const std::string body = minimal_with(R"("policy": {"hmac": {"secret_env": "GH_SECRET"}})");
  for (auto mode : {DecodeMode::kCreate, DecodeMode::kPatch}) {
    expect_error(trigger_from_json(body, mode), "policy.hmac.secret_env",
                 "policy.hmac.secret_env: only allowed in a triggers file");
  }
  auto input = trigger_from_json(body, DecodeMode::kFile);
  ASSERT_TRUE(input.has_value()) << input.error().message;
  EXPECT_EQ(input->secret_env, "GH_SECRET");
  EXPECT_FALSE(input->secret.has_value());
}

TEST(TriggerFromJson, RejectsSecretEnvThatIsNotAVariableName) {
  expect_error(trigger_from_json(minimal_with(R"("policy": {"hmac": {"secret_env": "A-B"}})"),
                                 DecodeMode::kFile),
               "policy.hmac.secret_env",
               "policy.hmac.secret_env: not an environment variable name");
}

TEST(TriggerFromJson, RejectsBothSecretAndSecretEnv) {
  expect_error(
      trigger_from_json(
          minimal_with(R"("policy": {"hmac": {"secret": "0123456789abcdef", "secret_env": "X"}})"),
          DecodeMode::kFile),
      "policy.hmac.secret_env",
      "policy.hmac.secret_env: give either secret or secret_env, not both");
}

// --- PATCH ---------------------------------------------------------------------------------------

// Verifies that a PATCH lists exactly the leaf fields it names and needs no name or URL.
TEST(TriggerFromJson, PatchListsOnlyThePresentFields) {
  auto patch = trigger_from_json(
      R"({"version": 7, "policy": {"rate_limit": {"requests": 5}, "hmac": {"secret": "s"}}})",
      DecodeMode::kPatch);
  ASSERT_TRUE(patch.has_value()) << patch.error().message;
  EXPECT_EQ(patch->present,
            (std::set<std::string>{"version", "policy.rate_limit.requests", "policy.hmac.secret"}));
  EXPECT_EQ(patch->spec.version, 7);
  EXPECT_EQ(patch->secret, "s");
}

TEST(TriggerFromJson, PatchRejectsANegativeVersion) {
  expect_error(trigger_from_json(R"({"version": -1})", DecodeMode::kPatch), "version",
               "version: out of range");
}

TEST(ApplyPatch, CopiesOnlyThePresentFields) {
  TriggerSpec target = full_spec();
  target.id = 9;
  target.version = 3;
  auto patch = trigger_from_json(
      R"({"version": 1, "description": "", "policy": {"rate_limit": {"requests": 500},
          "ip_allowlist": {"cidrs": ["10.0.0.0/8"]}}})",
      DecodeMode::kPatch);
  ASSERT_TRUE(patch.has_value()) << patch.error().message;
  apply_patch(target, *patch);

  TriggerSpec expected = full_spec();
  expected.id = 9;
  expected.version = 3;  // version is a precondition, never copied
  expected.description = "";
  expected.policy.rate_limit.requests = 500;
  expected.policy.ip_allowlist.cidrs = {"10.0.0.0/8"};
  EXPECT_EQ(target, expected);
}

// --- bounds -------------------------------------------------------------------------------------

TEST(TriggerFromJson, RejectsNestingDeeperThan16) {
  std::string deep = minimal_with(R"("x": )" + std::string(16, '[') + std::string(16, ']'));
  expect_error(trigger_from_json(deep, DecodeMode::kCreate),
               "x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]",
               "x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 16 levels");
  // 16 levels exactly are accepted by the parser; the unknown field is what fails then.
  std::string ok = minimal_with(R"("x": )" + std::string(15, '[') + std::string(15, ']'));
  expect_error(trigger_from_json(ok, DecodeMode::kCreate), "x", "x: unknown field");
}

std::string string_list(std::size_t n) {
  std::string out = "[";
  for (std::size_t i = 0; i < n; ++i) out += (i ? ",\"10.0.0.0/8\"" : "\"10.0.0.0/8\"");
  return out + "]";
}

TEST(TriggerFromJson, AcceptsArraysOf1000AndRejects1001) {
  auto input = trigger_from_json(
      minimal_with(R"("policy": {"ip_allowlist": {"cidrs": )" + string_list(1000) + "}}"),
      DecodeMode::kCreate);
  ASSERT_TRUE(input.has_value()) << input.error().message;
  EXPECT_EQ(input->spec.policy.ip_allowlist.cidrs.size(), 1000u);

  expect_error(trigger_from_json(minimal_with(R"("policy": {"ip_allowlist": {"cidrs": )" +
                                              string_list(1001) + "}}"),
                                 DecodeMode::kCreate),
               "policy.ip_allowlist.cidrs", "policy.ip_allowlist.cidrs: at most 1000 entries");
}

TEST(TriggerFromJson, RejectsObjectsWithMoreThan1000Fields) {
  std::string body = "{";
  for (int i = 0; i < 1001; ++i) body += (i ? ",\"f" : "\"f") + std::to_string(i) + "\": 1";
  body += "}";
  auto result = trigger_from_json(body, DecodeMode::kCreate);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().message, "at most 1000 fields");
}

TEST(TriggerFromJson, RejectsStringsLongerThan4096Bytes) {
  EXPECT_TRUE(trigger_from_json(minimal_with(R"("description": ")" + std::string(4096, 'd') + "\""),
                                DecodeMode::kCreate)
                  .has_value());
  expect_error(
      trigger_from_json(minimal_with(R"("description": ")" + std::string(4097, 'd') + "\""),
                        DecodeMode::kCreate),
      "description", "description: longer than 4096 bytes");
}

// --- encoding -----------------------------------------------------------------------------------

TEST(TriggerToJson, ProducesTheDesignShapeWithoutSecrets) {
  TriggerSpec spec = full_spec();
  spec.id = 42;
  spec.version = 3;
  const auto text = trigger_to_json(spec, true, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z");
  const auto doc = json::parse(text);
  EXPECT_EQ(doc["id"], 42);
  EXPECT_EQ(doc["version"], 3);
  EXPECT_EQ(doc["created"], "2024-01-01T00:00:00Z");
  EXPECT_EQ(doc["updated"], "2024-01-02T00:00:00Z");
  EXPECT_EQ(doc["mode"], "monitor");
  EXPECT_EQ(doc["methods"], json::array({"POST", "PUT"}));
  EXPECT_EQ(doc["policy"]["rate_limit"]["on_store_error"], "closed");
  EXPECT_EQ(doc["policy"]["hmac"]["secret_set"], true);
  EXPECT_FALSE(doc["policy"]["hmac"].contains("secret"));
  std::set<std::string> top;
  for (auto& [k, v] : doc.items()) top.insert(k);
  EXPECT_EQ(top, (std::set<std::string>{"id", "key", "name", "description", "enabled", "mode",
                                        "methods", "upstream_url", "upstream_timeout_ms", "policy",
                                        "version", "created", "updated"}));
  std::set<std::string> hmac;
  for (auto& [k, v] : doc["policy"]["hmac"].items()) hmac.insert(k);
  EXPECT_EQ(hmac, (std::set<std::string>{"enabled", "scheme", "algorithm", "header", "secret_set",
                                         "timestamp_tolerance_seconds"}));
}

// Verifies that what the API returns decodes again once its read-only fields are removed.
TEST(TriggerToJson, ReadsBackThroughTheDecoder) {
  auto doc = json::parse(trigger_to_json(full_spec(), false, "c", "u"));
  for (const char* field : {"id", "version", "created", "updated"}) doc.erase(field);
  doc["policy"]["hmac"].erase("secret_set");
  auto input = trigger_from_json(doc.dump(), DecodeMode::kCreate);
  ASSERT_TRUE(input.has_value()) << input.error().message;
  EXPECT_EQ(input->spec, full_spec());
}

// --- YAML
// -----------------------------------------------------------------------------------------

TEST(TriggersFromYaml, ReadsTheDesignExample) {
  const char* const text = R"(triggers:
  - name: github-main
    key: wh_github_main_0123456789abcdef     # optional
    upstream_url: http://127.0.0.1:9000/github
    methods: [POST]
    mode: enforce
    policy:
      payload_size_limit_kb: 1024
      ip_allowlist: {enabled: true, cidrs: [192.30.252.0/22, "2606:50c0::/32"]}
      rate_limit: {enabled: true, requests: 100, window_seconds: 60}
      hmac: {enabled: true, scheme: github, algorithm: sha256, secret_env: GITHUB_WEBHOOK_SECRET}
)";
  auto inputs = triggers_from_yaml(text);
  ASSERT_TRUE(inputs.has_value()) << inputs.error().message;
  ASSERT_EQ(inputs->size(), 1u);
  const auto& spec = (*inputs)[0].spec;
  EXPECT_EQ(spec.name, "github-main");
  EXPECT_EQ(spec.key, "wh_github_main_0123456789abcdef");
  EXPECT_EQ(spec.policy.ip_allowlist.cidrs,
            (std::vector<std::string>{"192.30.252.0/22", "2606:50c0::/32"}));
  EXPECT_TRUE(spec.policy.rate_limit.enabled);
  EXPECT_EQ(spec.policy.rate_limit.requests, 100);
  EXPECT_EQ(spec.policy.hmac.scheme, SignatureScheme::kGithub);
  EXPECT_EQ((*inputs)[0].secret_env, "GITHUB_WEBHOOK_SECRET");
  EXPECT_TRUE(validate(spec).has_value()) << validate(spec).error().message;
}

std::string one_trigger(const std::string& extra) {
  return "triggers:\n  - name: a\n    upstream_url: http://h/\n" + extra;
}

Error yaml_error(const std::string& text) {
  auto result = triggers_from_yaml(text);
  EXPECT_FALSE(result.has_value()) << text;
  return result ? Error{} : result.error();
}

struct YamlTypeCase {
  std::string line;
  std::string message;
};

class TriggersFromYamlTypes : public ::testing::TestWithParam<YamlTypeCase> {};

// Verifies YAML 1.2 core typing: true/false and decimal integers are typed, quoted scalars are
// strings, YAML 1.1 spellings (yes, on, 0755) are not booleans or numbers.
TEST_P(TriggersFromYamlTypes, TypesScalarsStrictly) {
  EXPECT_EQ(yaml_error(one_trigger(GetParam().line)).message, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Scalars, TriggersFromYamlTypes,
    ::testing::Values(
        YamlTypeCase{"    enabled: \"true\"\n",
                     "triggers[0].enabled: expected a boolean (true or false) (line 4)"},
        YamlTypeCase{"    enabled: yes\n",
                     "triggers[0].enabled: expected a boolean (true or false) (line 4)"},
        YamlTypeCase{"    upstream_timeout_ms: \"5000\"\n",
                     "triggers[0].upstream_timeout_ms: expected an integer (line 4)"},
        YamlTypeCase{"    upstream_timeout_ms: 0755\n",
                     "triggers[0].upstream_timeout_ms: expected an integer (line 4)"},
        YamlTypeCase{"    upstream_timeout_ms: 5.5\n",
                     "triggers[0].upstream_timeout_ms: expected an integer (line 4)"},
        YamlTypeCase{"    description: 12\n",
                     "triggers[0].description: expected a string (line 4)"},
        YamlTypeCase{"    description:\n", "triggers[0].description: expected a string (line 4)"},
        YamlTypeCase{"    policy:\n      rate_limit:\n        requests: 99999999999999999999\n",
                     "triggers[0].policy.rate_limit.requests: out of range (line 6)"},
        YamlTypeCase{"    policy:\n      hmac:\n        scheme: gitlab\n",
                     "triggers[0].policy.hmac.scheme: unknown scheme (expected generic, github, "
                     "stripe, slack, standard-webhooks or shopify) (line 6)"}));

TEST(TriggersFromYaml, TypesPlainAndQuotedScalars) {
  auto inputs = triggers_from_yaml(
      one_trigger("    description: \"123\"\n    enabled: false\n    upstream_timeout_ms: +7000\n"
                  "    key: !!str 0123\n    methods: ['POST', GET]\n"));
  ASSERT_TRUE(inputs.has_value()) << inputs.error().message;
  const auto& spec = (*inputs)[0].spec;
  EXPECT_EQ(spec.description, "123");
  EXPECT_FALSE(spec.enabled);
  EXPECT_EQ(spec.upstream_timeout_ms, 7000);
  EXPECT_EQ(spec.key, "0123");
  EXPECT_EQ(spec.methods, (std::vector<std::string>{"POST", "GET"}));
}

TEST(TriggersFromYaml, RejectsUnknownFieldsWithPathAndLine) {
  auto error = yaml_error(one_trigger("    policy:\n      rate_limit: {reqests: 5}\n"));
  EXPECT_EQ(error.field, "triggers[0].policy.rate_limit.reqests");
  EXPECT_EQ(error.message, "triggers[0].policy.rate_limit.reqests: unknown field (line 5)");
  EXPECT_EQ(error.code, "invalid_request");
}

TEST(TriggersFromYaml, PrefixesErrorsWithTheEntryIndex) {
  auto error = yaml_error(
      "triggers:\n  - {name: a, upstream_url: 'http://h/'}\n  - {name: b, upstream_url: "
      "'http://h/'}\n  - name: c\n    upstream_url: http://h/\n    policy: {hmac: {scheme: x}}\n");
  EXPECT_EQ(error.field, "triggers[2].policy.hmac.scheme");
  EXPECT_TRUE(error.message.starts_with("triggers[2].policy.hmac.scheme: unknown scheme"))
      << error.message;
}

TEST(TriggersFromYaml, ReportsASyntaxErrorWithItsLine) {
  auto error = yaml_error("triggers:\n  - name: a\n    methods: [POST,\n  - name: b\n");
  EXPECT_EQ(error.code, "invalid_request");
  EXPECT_TRUE(error.message.starts_with("invalid YAML at line ")) << error.message;
  EXPECT_NE(error.message.find("line 4"), std::string::npos) << error.message;
}

TEST(TriggersFromYaml, RequiresExactlyOneTopLevelKeyTriggers) {
  EXPECT_EQ(yaml_error("").message, "triggers: required");
  EXPECT_EQ(yaml_error("trigger: []\n").message, "trigger: unknown field (line 1)");
  EXPECT_EQ(yaml_error("triggers: []\nextra: 1\n").message, "extra: unknown field (line 2)");
  EXPECT_EQ(yaml_error("triggers: {}\n").message, "triggers: expected a list (line 1)");
  EXPECT_EQ(yaml_error("- a\n").message, "expected a mapping with one key, triggers");
  EXPECT_EQ(yaml_error("triggers: []\n---\ntriggers: []\n").message,
            "expected one YAML document, found several");
  auto empty = triggers_from_yaml("triggers: []\n");
  ASSERT_TRUE(empty.has_value()) << empty.error().message;
  EXPECT_TRUE(empty->empty());
}

TEST(TriggersFromYaml, RejectsDuplicateNamesKeysAndFields) {
  EXPECT_EQ(yaml_error("triggers:\n  - {name: a, upstream_url: 'http://h/'}\n"
                       "  - {name: a, upstream_url: 'http://g/'}\n")
                .message,
            "triggers[1].name: duplicate name (also triggers[0]) (line 3)");
  EXPECT_EQ(yaml_error("triggers:\n  - {name: a, key: k1, upstream_url: 'http://h/'}\n"
                       "  - {name: b, key: k1, upstream_url: 'http://g/'}\n")
                .message,
            "triggers[1].key: duplicate key (also triggers[0]) (line 3)");
  EXPECT_EQ(yaml_error(one_trigger("    name: b\n")).message,
            "triggers[0].name: duplicate field (line 4)");
}

TEST(TriggersFromYaml, AcceptsTheSecretInline) {
  auto inputs = triggers_from_yaml(one_trigger("    policy: {hmac: {secret: 'x: y # z'}}\n"));
  ASSERT_TRUE(inputs.has_value()) << inputs.error().message;
  EXPECT_EQ((*inputs)[0].secret, "x: y # z");
}

TEST(TriggersFromYaml, BoundsArraysDepthAndAliasExpansion) {
  std::string cidrs = "    policy:\n      ip_allowlist:\n        cidrs:\n";
  for (int i = 0; i < 1001; ++i) cidrs += "          - 10.0.0.0/8\n";
  EXPECT_EQ(yaml_error(one_trigger(cidrs)).message,
            "triggers[0].policy.ip_allowlist.cidrs: at most 1000 entries (line 6)");

  std::string deep = one_trigger("    x: " + std::string(20, '[') + std::string(20, ']') + "\n");
  EXPECT_NE(yaml_error(deep).message.find("nested deeper than 16 levels"), std::string::npos);

  // "Billion laughs": each level doubles a list of 1000 aliases.
  std::string laughs = "l0: &l0 [";
  for (int i = 0; i < 999; ++i) laughs += "x,";
  laughs += "x]\n";
  for (int level = 1; level < 6; ++level) {
    laughs += "l" + std::to_string(level) + ": &l" + std::to_string(level) + " [";
    for (int i = 0; i < 999; ++i) laughs += "*l" + std::to_string(level - 1) + ",";
    laughs += "*l" + std::to_string(level - 1) + "]\n";
  }
  EXPECT_NE(yaml_error(laughs).message.find("document too large"), std::string::npos);
}

TEST(TriggersFromYaml, RejectsInvalidUtf8) {
  EXPECT_EQ(yaml_error(one_trigger("    description: \"caf\xc3\"\n")).message,
            "triggers[0].description: not valid UTF-8 (line 4)");
}

// --- export round trip ---------------------------------------------------------------------------

// Verifies that export → import yields equal specs, including strings that YAML would
// otherwise read as booleans, numbers, nulls, comments or mappings.
TEST(TriggersToYaml, RoundTripsThroughTheFileFormat) {
  std::vector<TriggerSpec> specs;
  specs.push_back(full_spec());
  TriggerSpec tricky;
  tricky.key = "wh_tricky";
  tricky.name = "true";
  tricky.description = "null\n\t# not a comment: \"quoted\" 'single' \\ café ✓";
  tricky.upstream_url = "http://127.0.0.1:9000/x?a=1&b=%20";
  tricky.policy.hmac.header = "";
  specs.push_back(tricky);
  TriggerSpec numeric = tricky;
  numeric.key = "0123";
  numeric.name = "123";
  numeric.description = "";
  numeric.methods = {"GET", "POST", "DELETE"};
  numeric.policy.ip_allowlist = {false, {"::1/128", "10.0.0.0/8"}};
  numeric.policy.hmac = {true, SignatureScheme::kStandardWebhooks, HmacAlgorithm::kSha256, "", 5};
  specs.push_back(numeric);

  const auto text = triggers_to_yaml(specs);
  auto inputs = triggers_from_yaml(text);
  ASSERT_TRUE(inputs.has_value()) << inputs.error().message << "\n" << text;
  ASSERT_EQ(inputs->size(), specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ((*inputs)[i].spec, specs[i]) << text;
    EXPECT_FALSE((*inputs)[i].secret.has_value());
  }
  EXPECT_EQ(text.find("secret"), std::string::npos) << text;
}

TEST(TriggersToYaml, ExportsAnEmptyListThatReadsBack) {
  const auto text = triggers_to_yaml({});
  EXPECT_EQ(text, "triggers: []\n");
  auto inputs = triggers_from_yaml(text);
  ASSERT_TRUE(inputs.has_value()) << inputs.error().message;
  EXPECT_TRUE(inputs->empty());
}

}  // namespace
}  // namespace hookguard::policy
