#include "policy/signature.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "policy/encoding.h"

namespace hookguard::policy {
namespace {

constexpr std::int64_t kNow = 1700000000;
constexpr int kTolerance = 300;
// Base64 text, so that the same secrets also serve standard-webhooks (which decodes them).
const std::string kSecret = "Y3VycmVudC1zZWNyZXQtMDEyMzQ1Njc4";
const std::string kPrevious = "cHJldmlvdXMtc2VjcmV0LTAxMjM0NTY3";
const std::string kWrongSecret = "d3Jvbmctc2VjcmV0LTAxMjM0NTY3ODl4";
const std::string kBody = R"({"event":"push","n":1})";

HmacPolicy policy_for(SignatureScheme scheme, HmacAlgorithm algorithm = HmacAlgorithm::kSha256) {
  HmacPolicy policy;
  policy.enabled = true;
  policy.scheme = scheme;
  policy.algorithm = algorithm;
  policy.timestamp_tolerance_seconds = kTolerance;
  return policy;
}

SignatureStatus verify(const HmacPolicy& policy, const HeaderList& headers,
                       std::string_view body = kBody,
                       std::vector<std::string_view> secrets = {kSecret}, std::int64_t now = kNow) {
  return verify_signature(policy, headers, body, secrets, now);
}

HeaderList signed_headers(const HmacPolicy& policy, std::string_view secret = kSecret,
                          std::string_view body = kBody, std::int64_t ts = kNow,
                          std::string_view id = "msg_1") {
  auto headers = sign_request(policy, secret, body, ts, id);
  EXPECT_TRUE(headers.has_value()) << (headers ? "" : headers.error().message);
  return headers.value_or(HeaderList{});
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// ----------------------------------------------------------------- primitives

// RFC 4231 test case 2.
TEST(Hmac, MatchesRfc4231TestCase2) {
  EXPECT_EQ(hmac_hex(HmacAlgorithm::kSha256, "Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hmac_hex(HmacAlgorithm::kSha512, "Jefe", "what do ya want for nothing?"),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d03"
            "4f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
  EXPECT_EQ(hmac_raw(HmacAlgorithm::kSha1, "k", "d").size(), 20u);
}

// Each thread reuses one MAC context per algorithm: every call must still start from its own
// key, including an empty key right after a long one and an algorithm switch in between.
TEST(Hmac, EachCallUsesItsOwnKeyOnTheThreadsReusedContexts) {
  const std::string case2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  // RFC 4231 test case 6: a key longer than the block size is hashed first.
  const std::string long_key(131, '\xaa');
  const std::string case6 = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
  const std::string empty = "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad";
  const auto run = [&] {
    for (int i = 0; i < 50; ++i) {
      EXPECT_EQ(hmac_hex(HmacAlgorithm::kSha256, long_key,
                         "Test Using Larger Than Block-Size Key - Hash Key First"),
                case6);
      EXPECT_EQ(hmac_hex(HmacAlgorithm::kSha256, "", ""), empty);
      EXPECT_EQ(hmac_raw(HmacAlgorithm::kSha512, "Jefe", "x").size(), 64u);
      EXPECT_EQ(hmac_hex(HmacAlgorithm::kSha256, "Jefe", "what do ya want for nothing?"), case2);
    }
  };
  run();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(run);
  for (auto& thread : threads) thread.join();
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(constant_time_equals("abc", "abc"));
  EXPECT_TRUE(constant_time_equals("", ""));
  EXPECT_FALSE(constant_time_equals("abc", "abd"));
  EXPECT_FALSE(constant_time_equals("abc", "ab"));
  EXPECT_FALSE(constant_time_equals("", "a"));
}

TEST(SignatureHeader, DefaultsPerSchemeAndHonoursAnOverride) {
  EXPECT_EQ(signature_header(policy_for(SignatureScheme::kGeneric)), "X-Webhook-Signature");
  EXPECT_EQ(signature_header(policy_for(SignatureScheme::kGithub)), "X-Hub-Signature-256");
  EXPECT_EQ(signature_header(policy_for(SignatureScheme::kGithub, HmacAlgorithm::kSha1)),
            "X-Hub-Signature");
  EXPECT_EQ(signature_header(policy_for(SignatureScheme::kStripe)), "Stripe-Signature");
  EXPECT_EQ(signature_header(policy_for(SignatureScheme::kSlack)), "X-Slack-Signature");
  EXPECT_EQ(signature_header(policy_for(SignatureScheme::kStandardWebhooks)), "webhook-signature");
  EXPECT_EQ(signature_header(policy_for(SignatureScheme::kShopify)), "X-Shopify-Hmac-Sha256");
  auto custom = policy_for(SignatureScheme::kGeneric);
  custom.header = "X-My-Sig";
  EXPECT_EQ(signature_header(custom), "X-My-Sig");
}

// ----------------------------------------------------------------- published vectors

// Source: docs.github.com, "Validating webhook deliveries" (testing the webhook payload
// validation: secret "It's a Secret to Everybody", payload "Hello, World!").
TEST(GithubScheme, VerifiesGithubsPublishedExample) {
  const std::string secret = "It's a Secret to Everybody";
  const HeaderList headers{
      {"X-Hub-Signature-256",
       "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}};
  const auto policy = policy_for(SignatureScheme::kGithub);
  EXPECT_EQ(verify(policy, headers, "Hello, World!", {secret}), SignatureStatus::kValid);
  EXPECT_EQ(*signed_headers(policy, secret, "Hello, World!").get("X-Hub-Signature-256"),
            *headers.get("X-Hub-Signature-256"));
}

// Source: api.slack.com/authentication/verifying-requests-from-slack (the worked example's
// signing secret, timestamp, slash-command body and expected signature; checked with openssl).
TEST(SlackScheme, VerifiesSlacksPublishedExample) {
  const std::string secret = "8f742231b10e8888abcd99yyyzzz85a5";
  const std::string body =
      "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
      "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
      "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"
      "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
      "803a0bc887a14d10d2c447fce8b6703c";
  const HeaderList headers{
      {"X-Slack-Request-Timestamp", "1531420618"},
      {"X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"}};
  const auto policy = policy_for(SignatureScheme::kSlack);
  EXPECT_EQ(verify(policy, headers, body, {secret}, 1531420618), SignatureStatus::kValid);
  EXPECT_EQ(*signed_headers(policy, secret, body, 1531420618).get("X-Slack-Signature"),
            *headers.get("X-Slack-Signature"));
}

// Source: github.com/standard-webhooks/standard-webhooks, libraries/php/tests/WebhookTest.php
// (testSignFunctionWorks); the same vector appears in every reference library's tests.
constexpr std::string_view kSwSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view kSwId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr std::int64_t kSwTimestamp = 1614265330;
constexpr std::string_view kSwBody = R"({"test": 2432232314})";
constexpr std::string_view kSwSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

TEST(StandardWebhooksScheme, VerifiesTheReferenceTestVector) {
  const HeaderList headers{{"webhook-id", std::string(kSwId)},
                           {"webhook-timestamp", std::to_string(kSwTimestamp)},
                           {"webhook-signature", std::string(kSwSignature)}};
  const auto policy = policy_for(SignatureScheme::kStandardWebhooks);
  EXPECT_EQ(verify(policy, headers, kSwBody, {kSwSecret}, kSwTimestamp), SignatureStatus::kValid);
}

TEST(StandardWebhooksScheme, SignsTheReferenceTestVector) {
  const auto headers = signed_headers(policy_for(SignatureScheme::kStandardWebhooks), kSwSecret,
                                      kSwBody, kSwTimestamp, kSwId);
  EXPECT_EQ(*headers.get("webhook-signature"), kSwSignature);
  EXPECT_EQ(*headers.get("webhook-id"), kSwId);
  EXPECT_EQ(*headers.get("webhook-timestamp"), "1614265330");
}

TEST(StandardWebhooksScheme, AcceptsSvixHeaderNamesAndASecretWithoutPrefix) {
  const HeaderList headers{{"svix-id", std::string(kSwId)},
                           {"svix-timestamp", std::to_string(kSwTimestamp)},
                           {"svix-signature", std::string(kSwSignature)}};
  const auto policy = policy_for(SignatureScheme::kStandardWebhooks);
  EXPECT_EQ(verify(policy, headers, kSwBody, {kSwSecret}, kSwTimestamp), SignatureStatus::kValid);
  EXPECT_EQ(verify(policy, headers, kSwBody, {kSwSecret.substr(6)}, kSwTimestamp),
            SignatureStatus::kValid);
}

// Independently computed: printf '1700000000.<body>' | openssl dgst -sha256 -hmac <secret>.
// Stripe's whsec_ secret is the literal key, unlike standard-webhooks'.
TEST(StripeScheme, VerifiesAnOpensslComputedSignatureWithTheLiteralWhsecKey) {
  const HeaderList headers{
      {"Stripe-Signature",
       "t=1700000000,v1=727611cc7c3346eefc8e768d28c814ba5cbea31f27cfdccd9f6b89bcabfed277"}};
  EXPECT_EQ(verify(policy_for(SignatureScheme::kStripe), headers,
                   R"({"id":"evt_1","object":"event"})", {"whsec_stripe_example_secret_0123"}),
            SignatureStatus::kValid);
}

// Independently computed: openssl dgst -sha256 -hmac <secret> -binary | base64.
TEST(ShopifyScheme, VerifiesAnOpensslComputedSignature) {
  const HeaderList headers{
      {"X-Shopify-Hmac-Sha256", "OBblsKS0NlF0y+VR8a/rdenQL+Xbwsvl39KKdyyrU/M="}};
  EXPECT_EQ(verify(policy_for(SignatureScheme::kShopify), headers,
                   R"({"id":1,"topic":"orders/create"})", {"shpss_shopify_example_secret_01"}),
            SignatureStatus::kValid);
}

// Independently computed with openssl dgst -sha512 / -sha1.
TEST(GenericScheme, VerifiesSha512AndGithubSha1) {
  const HeaderList sha512{
      {"X-Webhook-Signature",
       "sha512=5355c2716c25c9794a6209cb39770c2bbc3a28e6252264feb25b92f5b4a92c7a460cc9a5f983ca82"
       "9eab8131adfb0f1a8b988ccbda1b892c9a9c6cc9347ec8e5"}};
  EXPECT_EQ(verify(policy_for(SignatureScheme::kGeneric, HmacAlgorithm::kSha512), sha512,
                   "Hello, World!", {"generic-secret-0123456789"}),
            SignatureStatus::kValid);
  const HeaderList sha1{{"X-Hub-Signature", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"}};
  EXPECT_EQ(verify(policy_for(SignatureScheme::kGithub, HmacAlgorithm::kSha1), sha1,
                   "Hello, World!", {"It's a Secret to Everybody"}),
            SignatureStatus::kValid);
}

// ----------------------------------------------------------------- table-driven negatives

struct SigCase {
  std::string label;
  HmacPolicy policy;
  std::function<HeaderList()> headers;
  SignatureStatus expected;
  std::vector<std::string> secrets = {kSecret};
  std::string body = kBody;
};

class SignatureTable : public ::testing::TestWithParam<SigCase> {};

TEST_P(SignatureTable, Verifies) {
  const auto& c = GetParam();
  const std::vector<std::string_view> secrets(c.secrets.begin(), c.secrets.end());
  EXPECT_EQ(verify(c.policy, c.headers(), c.body, secrets), c.expected);
}

// Replaces (or adds) one header in a signed set.
HeaderList with(HeaderList headers, std::string name, std::string value) {
  headers.set(std::move(name), std::move(value));
  return headers;
}
HeaderList without(HeaderList headers, std::string_view name) {
  headers.remove(name);
  return headers;
}
std::string value_of(const HeaderList& headers, std::string_view name) {
  return std::string(headers.get(name).value_or(""));
}

std::vector<SigCase> common_cases(SignatureScheme scheme, bool hex) {
  const auto p = policy_for(scheme);
  const std::string h = signature_header(p);
  const std::string tag = std::string(to_string(scheme)).substr(0, 5);
  auto sig = [p, h] { return value_of(signed_headers(p), h); };
  std::vector<SigCase> cases = {
      {tag + "Valid", p, [p] { return signed_headers(p); }, SignatureStatus::kValid},
      {tag + "MissingHeader", p, [p, h] { return without(signed_headers(p), h); },
       SignatureStatus::kMissing},
      {tag + "NoHeadersAtAll", p, [] { return HeaderList{}; }, SignatureStatus::kMissing},
      {tag + "EmptyValue", p, [p, h] { return with(signed_headers(p), h, ""); },
       SignatureStatus::kInvalid},
      {tag + "OtherBody", p, [p] { return signed_headers(p, kSecret, "other body"); },
       SignatureStatus::kInvalid},
      {tag + "WrongSecret", p, [p] { return signed_headers(p, kWrongSecret); },
       SignatureStatus::kInvalid},
      {tag + "Truncated", p,
       [p, h, sig] {
         const auto s = sig();
         return with(signed_headers(p), h, s.substr(0, s.size() - 2));
       },
       SignatureStatus::kInvalid},
      {tag + "OversizedHeader", p,
       [p, h, sig] { return with(signed_headers(p), h, sig() + std::string(8200, ' ') + "x"); },
       SignatureStatus::kInvalid},
      {tag + "SurroundingWhitespaceIsNotPartOfTheValue", p,
       [p, h, sig] { return with(signed_headers(p), h, " \t" + sig() + " "); },
       SignatureStatus::kValid},
      {tag + "RotationPreviousSecretAccepted",
       p,
       [p] { return signed_headers(p, kPrevious); },
       SignatureStatus::kValid,
       {kSecret, kPrevious}},
      {tag + "RotationPreviousSecretExpired",
       p,
       [p] { return signed_headers(p, kPrevious); },
       SignatureStatus::kInvalid,
       {kSecret}},
      {tag + "NoSecrets", p, [p] { return signed_headers(p); }, SignatureStatus::kInvalid, {}},
  };
  if (hex) {
    cases.push_back({tag + "UpperCaseHexAccepted", p,
                     [p, h, sig] {
                       std::string s = sig();
                       // Upper-case only the hex digits after the last '='.
                       const auto eq = s.rfind('=');
                       s = s.substr(0, eq + 1) + upper(s.substr(eq + 1));
                       return with(signed_headers(p), h, s);
                     },
                     SignatureStatus::kValid});
  }
  return cases;
}

// Cases for schemes with a timestamp: `sign_at(ts)` signs at ts, verified at kNow.
std::vector<SigCase> timestamp_cases(SignatureScheme scheme) {
  const auto p = policy_for(scheme);
  const std::string tag = std::string(to_string(scheme)).substr(0, 5);
  auto at = [p](std::int64_t ts) {
    return [p, ts] { return signed_headers(p, kSecret, kBody, ts); };
  };
  return {
      {tag + "TsAtOldestTolerated", p, at(kNow - kTolerance), SignatureStatus::kValid},
      {tag + "TsOneSecondTooOld", p, at(kNow - kTolerance - 1), SignatureStatus::kInvalid},
      {tag + "TsAtNewestTolerated", p, at(kNow + kTolerance), SignatureStatus::kValid},
      {tag + "TsOneSecondTooNew", p, at(kNow + kTolerance + 1), SignatureStatus::kInvalid},
      {tag + "TsZero", p, at(0), SignatureStatus::kInvalid},
  };
}

std::vector<SigCase> all_cases() {
  std::vector<SigCase> cases;
  auto append = [&](std::vector<SigCase> more) {
    cases.insert(cases.end(), more.begin(), more.end());
  };
  append(common_cases(SignatureScheme::kGeneric, true));
  append(common_cases(SignatureScheme::kGithub, true));
  append(common_cases(SignatureScheme::kStripe, true));
  append(common_cases(SignatureScheme::kSlack, true));
  append(common_cases(SignatureScheme::kStandardWebhooks, false));
  append(common_cases(SignatureScheme::kShopify, false));
  append(timestamp_cases(SignatureScheme::kStripe));
  append(timestamp_cases(SignatureScheme::kSlack));
  append(timestamp_cases(SignatureScheme::kStandardWebhooks));

  const std::string hex = hmac_hex(HmacAlgorithm::kSha256, kSecret, kBody);
  const std::string other_hex = hmac_hex(HmacAlgorithm::kSha256, kSecret, "other");

  // generic
  const auto generic = policy_for(SignatureScheme::kGeneric);
  auto generic_with = [](std::string v) {
    return [v] { return HeaderList{{"X-Webhook-Signature", v}}; };
  };
  cases.push_back({"genericBareHex", generic, generic_with(hex), SignatureStatus::kValid});
  cases.push_back(
      {"genericBareHexUpperCase", generic, generic_with(upper(hex)), SignatureStatus::kValid});
  cases.push_back({"genericOtherAlgorithmPrefix", generic, generic_with("sha1=" + hex),
                   SignatureStatus::kInvalid});
  cases.push_back({"genericUpperCasePrefix", generic, generic_with("SHA256=" + hex),
                   SignatureStatus::kInvalid});
  cases.push_back({"genericSpaceAfterEquals", generic, generic_with("sha256= " + hex),
                   SignatureStatus::kInvalid});
  cases.push_back({"genericSpaceInsideHex", generic,
                   generic_with(hex.substr(0, 10) + " " + hex.substr(11)),
                   SignatureStatus::kInvalid});
  cases.push_back({"genericNonHex", generic, generic_with("sha256=" + std::string(64, 'g')),
                   SignatureStatus::kInvalid});
  cases.push_back(
      {"genericTooLong", generic, generic_with("sha256=" + hex + "00"), SignatureStatus::kInvalid});
  auto custom = generic;
  custom.header = "X-Custom-Sig";
  cases.push_back({"genericCustomHeader", custom,
                   [hex] {
                     return HeaderList{{"x-custom-sig", "sha256=" + hex}};
                   },
                   SignatureStatus::kValid});
  cases.push_back({"genericCustomHeaderIgnoresDefault", custom, generic_with("sha256=" + hex),
                   SignatureStatus::kMissing});

  // github
  const auto github = policy_for(SignatureScheme::kGithub);
  const std::string sha1_hex = hmac_hex(HmacAlgorithm::kSha1, kSecret, kBody);
  cases.push_back({"githubSha1PrefixOnSha256TriggerIsNoDowngrade", github,
                   [sha1_hex] {
                     return HeaderList{{"X-Hub-Signature-256", "sha1=" + sha1_hex}};
                   },
                   SignatureStatus::kInvalid});
  cases.push_back({"githubOnlyTheSha1HeaderIsMissing", github,
                   [sha1_hex] {
                     return HeaderList{{"X-Hub-Signature", "sha1=" + sha1_hex}};
                   },
                   SignatureStatus::kMissing});
  cases.push_back({"githubBareHexRejected", github,
                   [hex] {
                     return HeaderList{{"X-Hub-Signature-256", hex}};
                   },
                   SignatureStatus::kInvalid});
  cases.push_back({"githubHeaderNameCaseInsensitive", github,
                   [hex] {
                     return HeaderList{{"x-hub-signature-256", "sha256=" + hex}};
                   },
                   SignatureStatus::kValid});

  // stripe
  const auto stripe = policy_for(SignatureScheme::kStripe);
  const std::string ts = std::to_string(kNow);
  const std::string stripe_hex = hmac_hex(HmacAlgorithm::kSha256, kSecret, ts + "." + kBody);
  auto stripe_with = [](std::string v) {
    return [v] { return HeaderList{{"Stripe-Signature", v}}; };
  };
  std::string many_invalid;
  for (int i = 0; i < 29; ++i) many_invalid += ",v1=" + other_hex;
  cases.push_back({"stripeValidAmongInvalid", stripe,
                   stripe_with("t=" + ts + many_invalid + ",v1=" + stripe_hex + ",v0=abc"),
                   SignatureStatus::kValid});
  cases.push_back({"stripeThirtyThreeEntriesRejected", stripe,
                   stripe_with("t=" + ts + many_invalid + ",v1=" + stripe_hex + ",v1=x,v1=y"),
                   SignatureStatus::kInvalid});
  cases.push_back({"stripeUnknownVersionOnly", stripe, stripe_with("t=" + ts + ",v0=" + stripe_hex),
                   SignatureStatus::kInvalid});
  cases.push_back({"stripeMissingTimestamp", stripe, stripe_with("v1=" + stripe_hex),
                   SignatureStatus::kInvalid});
  cases.push_back({"stripeTwoTimestamps", stripe,
                   stripe_with("t=" + ts + ",t=" + ts + ",v1=" + stripe_hex),
                   SignatureStatus::kInvalid});
  cases.push_back({"stripeNonNumericTimestamp", stripe,
                   stripe_with("t=17000000x0,v1=" + stripe_hex), SignatureStatus::kInvalid});
  cases.push_back({"stripeNegativeTimestamp", stripe, stripe_with("t=-1,v1=" + stripe_hex),
                   SignatureStatus::kInvalid});
  cases.push_back({"stripeThirteenDigitTimestamp", stripe,
                   stripe_with("t=0" + ts + "000,v1=" + stripe_hex), SignatureStatus::kInvalid});
  cases.push_back({"stripeSpaceAfterComma", stripe, stripe_with("t=" + ts + ", v1=" + stripe_hex),
                   SignatureStatus::kInvalid});
  cases.push_back({"stripeItemWithoutEquals", stripe,
                   stripe_with("t=" + ts + ",junk,v1=" + stripe_hex), SignatureStatus::kInvalid});

  // slack
  const auto slack = policy_for(SignatureScheme::kSlack);
  const std::string slack_hex = hmac_hex(HmacAlgorithm::kSha256, kSecret, "v0:" + ts + ":" + kBody);
  auto slack_with = [ts](std::string v) {
    return [v, ts] {
      return HeaderList{{"X-Slack-Request-Timestamp", ts}, {"X-Slack-Signature", v}};
    };
  };
  cases.push_back(
      {"slackUnknownVersion", slack, slack_with("v1=" + slack_hex), SignatureStatus::kInvalid});
  cases.push_back({"slackBareHex", slack, slack_with(slack_hex), SignatureStatus::kInvalid});
  cases.push_back({"slackMissingTimestampHeader", slack,
                   [slack_hex] {
                     return HeaderList{{"X-Slack-Signature", "v0=" + slack_hex}};
                   },
                   SignatureStatus::kInvalid});
  cases.push_back({"slackNonNumericTimestamp", slack,
                   [slack_hex] {
                     return HeaderList{{"X-Slack-Request-Timestamp", "1.7e9"},
                                       {"X-Slack-Signature", "v0=" + slack_hex}};
                   },
                   SignatureStatus::kInvalid});

  // standard-webhooks
  const auto sw = policy_for(SignatureScheme::kStandardWebhooks);
  const std::string sw_secret = "whsec_" + to_base64("standard-webhooks-key-0123456789");
  const auto sw_headers = [sw, sw_secret] { return signed_headers(sw, sw_secret); };
  const std::string sw_sig = value_of(sw_headers(), "webhook-signature");
  const std::string bad_sig = "v1," + to_base64(std::string(32, 'x'));
  std::string sw_many;
  for (int i = 0; i < 31; ++i) sw_many += bad_sig + " ";
  cases.push_back({"standValidAmongInvalid",
                   sw,
                   [=] {
                     return with(sw_headers(), "webhook-signature",
                                 "v1a,abc " + bad_sig + " " + sw_sig + " v2,xyz");
                   },
                   SignatureStatus::kValid,
                   {sw_secret}});
  cases.push_back({"standThirtyThreeEntriesRejected",
                   sw,
                   [=] { return with(sw_headers(), "webhook-signature", sw_many + sw_sig + " x"); },
                   SignatureStatus::kInvalid,
                   {sw_secret}});
  cases.push_back({"standThirtyTwoEntriesAccepted",
                   sw,
                   [=] { return with(sw_headers(), "webhook-signature", sw_many + sw_sig); },
                   SignatureStatus::kValid,
                   {sw_secret}});
  cases.push_back(
      {"standUnknownVersionOnly",
       sw,
       [=] { return with(sw_headers(), "webhook-signature", "v2," + sw_sig.substr(3)); },
       SignatureStatus::kInvalid,
       {sw_secret}});
  cases.push_back({"standMissingId",
                   sw,
                   [=] { return without(sw_headers(), "webhook-id"); },
                   SignatureStatus::kInvalid,
                   {sw_secret}});
  cases.push_back({"standOtherId",
                   sw,
                   [=] { return with(sw_headers(), "webhook-id", "msg_2"); },
                   SignatureStatus::kInvalid,
                   {sw_secret}});
  cases.push_back({"standMissingTimestamp",
                   sw,
                   [=] { return without(sw_headers(), "webhook-timestamp"); },
                   SignatureStatus::kInvalid,
                   {sw_secret}});
  cases.push_back({"standNonNumericTimestamp",
                   sw,
                   [=] { return with(sw_headers(), "webhook-timestamp", "abc"); },
                   SignatureStatus::kInvalid,
                   {sw_secret}});
  cases.push_back({"standSecretThatIsNotBase64",
                   sw,
                   sw_headers,
                   SignatureStatus::kInvalid,
                   {"whsec_not*base64!"}});
  cases.push_back({"standRawSecretIsNotTheKey",
                   sw,
                   sw_headers,
                   SignatureStatus::kInvalid,
                   {"standard-webhooks-key-0123456789"}});

  // shopify
  const auto shopify = policy_for(SignatureScheme::kShopify);
  const std::string b64 = to_base64(hmac_raw(HmacAlgorithm::kSha256, kSecret, kBody));
  auto shopify_with = [](std::string v) {
    return [v] { return HeaderList{{"X-Shopify-Hmac-Sha256", v}}; };
  };
  cases.push_back({"shopifyHexIsNotBase64", shopify, shopify_with(hex), SignatureStatus::kInvalid});
  cases.push_back({"shopifyUnpaddedBase64Accepted", shopify,
                   shopify_with(b64.substr(0, b64.size() - 1)), SignatureStatus::kValid});
  cases.push_back({"shopifyUrlSafeAlphabetRejected", shopify,
                   shopify_with(std::string(43, '-') + "="), SignatureStatus::kInvalid});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Schemes, SignatureTable, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return info.param.label; });

TEST(SignRequest, EverySchemeVerifiesWhatItSigns) {
  for (auto scheme : {SignatureScheme::kGeneric, SignatureScheme::kGithub, SignatureScheme::kStripe,
                      SignatureScheme::kSlack, SignatureScheme::kShopify}) {
    const auto policy = policy_for(scheme);
    EXPECT_EQ(verify(policy, signed_headers(policy)), SignatureStatus::kValid) << to_string(scheme);
  }
}

TEST(SignRequest, StandardWebhooksGeneratesAnIdWhenNoneIsGiven) {
  const auto policy = policy_for(SignatureScheme::kStandardWebhooks);
  auto headers = sign_request(policy, kSwSecret, kBody, kNow);
  ASSERT_TRUE(headers.has_value());
  EXPECT_TRUE(headers->get("webhook-id")->starts_with("msg_"));
  EXPECT_EQ(verify(policy, *headers, kBody, {kSwSecret}), SignatureStatus::kValid);
}

TEST(SignRequest, RefusesAnEmptySecretAndABadStandardWebhooksSecret) {
  EXPECT_FALSE(sign_request(policy_for(SignatureScheme::kGeneric), "", kBody, kNow).has_value());
  EXPECT_FALSE(
      sign_request(policy_for(SignatureScheme::kStandardWebhooks), "whsec_***", kBody, kNow)
          .has_value());
}

}  // namespace
}  // namespace hookguard::policy
