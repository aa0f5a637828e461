#include "policy/trigger_policy.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace hookguard::policy {
namespace {

TriggerSpec valid_spec() {
  TriggerSpec spec;
  spec.id = 42;
  spec.key = "wh_0123456789abcdefghijABCDEFGHIJ";
  spec.name = "github-main";
  spec.upstream_url = "http://127.0.0.1:9000/github";
  spec.policy.ip_allowlist.cidrs = {"192.30.252.0/22", "2001:db8::/32"};
  return spec;
}

// Expects `spec` to fail on `field`, with the message prefixed by that path.
void expect_invalid(const TriggerSpec& spec, const std::string& field) {
  auto result = validate(spec);
  ASSERT_FALSE(result.has_value()) << "expected an error on " << field;
  EXPECT_EQ(result.error().field, field) << result.error().message;
  EXPECT_TRUE(result.error().message.starts_with(field + ": ")) << result.error().message;
  EXPECT_EQ(result.error().code, "invalid_request");
}

TEST(ValidateTriggerSpec, AcceptsTheDefaultsWithAKeyNameAndUrl) {
  EXPECT_TRUE(validate(valid_spec()).has_value());
}

struct Case {
  std::string label;
  std::function<void(TriggerSpec&)> mutate;
  std::string field;  // empty: must be accepted
};

class ValidateTriggerSpecTable : public ::testing::TestWithParam<Case> {};

TEST_P(ValidateTriggerSpecTable, ChecksTheBoundary) {
  TriggerSpec spec = valid_spec();
  GetParam().mutate(spec);
  if (GetParam().field.empty()) {
    auto result = validate(spec);
    EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().message);
  } else {
    expect_invalid(spec, GetParam().field);
  }
}

const Case kCases[] = {
    {"PayloadMin", [](auto& s) { s.policy.payload_size_limit_kb = 1; }, ""},
    {"PayloadZero", [](auto& s) { s.policy.payload_size_limit_kb = 0; },
     "policy.payload_size_limit_kb"},
    {"PayloadMax", [](auto& s) { s.policy.payload_size_limit_kb = 102400; }, ""},
    {"PayloadOverMax", [](auto& s) { s.policy.payload_size_limit_kb = 102401; },
     "policy.payload_size_limit_kb"},
    {"RateRequestsZero", [](auto& s) { s.policy.rate_limit.requests = 0; },
     "policy.rate_limit.requests"},
    {"RateRequestsMax", [](auto& s) { s.policy.rate_limit.requests = 1000000; }, ""},
    {"RateRequestsOverMax", [](auto& s) { s.policy.rate_limit.requests = 1000001; },
     "policy.rate_limit.requests"},
    {"RateWindowZero", [](auto& s) { s.policy.rate_limit.window_seconds = 0; },
     "policy.rate_limit.window_seconds"},
    {"RateWindowMax", [](auto& s) { s.policy.rate_limit.window_seconds = 86400; }, ""},
    {"RateWindowOverMax", [](auto& s) { s.policy.rate_limit.window_seconds = 86401; },
     "policy.rate_limit.window_seconds"},
    {"TimeoutZero", [](auto& s) { s.upstream_timeout_ms = 0; }, "upstream_timeout_ms"},
    {"TimeoutMax", [](auto& s) { s.upstream_timeout_ms = 300000; }, ""},
    {"TimeoutOverMax", [](auto& s) { s.upstream_timeout_ms = 300001; }, "upstream_timeout_ms"},
    {"ToleranceZero", [](auto& s) { s.policy.hmac.timestamp_tolerance_seconds = 0; },
     "policy.hmac.timestamp_tolerance_seconds"},
    {"ToleranceMax", [](auto& s) { s.policy.hmac.timestamp_tolerance_seconds = 86400; }, ""},
    {"ToleranceOverMax", [](auto& s) { s.policy.hmac.timestamp_tolerance_seconds = 86401; },
     "policy.hmac.timestamp_tolerance_seconds"},
    {"NameEmpty", [](auto& s) { s.name = ""; }, "name"},
    {"NameMax", [](auto& s) { s.name = std::string(128, 'n'); }, ""},
    {"NameTooLong", [](auto& s) { s.name = std::string(129, 'n'); }, "name"},
    {"NameControl", [](auto& s) { s.name = "a\nb"; }, "name"},
    {"NameDel", [](auto& s) { s.name = "a\x7f"; }, "name"},
    {"DescriptionTooLong", [](auto& s) { s.description = std::string(1025, 'd'); }, "description"},
    {"KeyEmpty", [](auto& s) { s.key = ""; }, "key"},
    {"KeyBadChar", [](auto& s) { s.key = "wh_abc/def"; }, "key"},
    {"KeyTooLong", [](auto& s) { s.key = std::string(129, 'k'); }, "key"},
    {"MethodsEmpty", [](auto& s) { s.methods.clear(); }, "methods"},
    {"MethodLowerCase",
     [](auto& s) {
       s.methods = {"POST", "put"};
     },
     "methods[1]"},
    {"MethodUnknown", [](auto& s) { s.methods = {"BREW"}; }, "methods[0]"},
    {"MethodNotToken", [](auto& s) { s.methods = {"PO ST"}; }, "methods[0]"},
    {"MethodEmpty", [](auto& s) { s.methods = {""}; }, "methods[0]"},
    {"MethodDuplicate",
     [](auto& s) {
       s.methods = {"POST", "POST"};
     },
     "methods[1]"},
    {"MethodsAllKnown",
     [](auto& s) { s.methods = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}; }, ""},
    {"UrlHttps", [](auto& s) { s.upstream_url = "https://svc.internal/hook?x=1"; }, ""},
    {"UrlIpv6", [](auto& s) { s.upstream_url = "http://[::1]:9000/x"; }, ""},
    {"UrlEmpty", [](auto& s) { s.upstream_url = ""; }, "upstream_url"},
    {"UrlFtp", [](auto& s) { s.upstream_url = "ftp://host/x"; }, "upstream_url"},
    {"UrlNoScheme", [](auto& s) { s.upstream_url = "host:9000/x"; }, "upstream_url"},
    {"UrlNoHost", [](auto& s) { s.upstream_url = "http:///x"; }, "upstream_url"},
    {"UrlNoHostWithPort", [](auto& s) { s.upstream_url = "http://:80/x"; }, "upstream_url"},
    {"UrlUserinfo", [](auto& s) { s.upstream_url = "http://u:p@host/x"; }, "upstream_url"},
    {"UrlFragment", [](auto& s) { s.upstream_url = "http://host/x#frag"; }, "upstream_url"},
    {"UrlSpace", [](auto& s) { s.upstream_url = "http://host/a b"; }, "upstream_url"},
    {"UrlCrlf", [](auto& s) { s.upstream_url = "http://host/\r\nX: y"; }, "upstream_url"},
    {"UrlBadPort", [](auto& s) { s.upstream_url = "http://host:99999/"; }, "upstream_url"},
    {"UrlEmptyPort", [](auto& s) { s.upstream_url = "http://host:/"; }, "upstream_url"},
    {"UrlBadIpv6", [](auto& s) { s.upstream_url = "http://[fe80::1%eth0]/"; }, "upstream_url"},
    {"CidrBad",
     [](auto& s) {
       s.policy.ip_allowlist.cidrs = {"10.0.0.0/8", "a", "b", "c"};
     },
     "policy.ip_allowlist.cidrs[1]"},
    {"CidrHostBits",
     [](auto& s) {
       s.policy.ip_allowlist.cidrs = {"1.0.0.0/8", "2.0.0.0/8", "3.0.0.0/8", "10.0.0.1/8"};
     },
     "policy.ip_allowlist.cidrs[3]"},
    {"CidrsTooMany", [](auto& s) { s.policy.ip_allowlist.cidrs.assign(1001, "10.0.0.0/8"); },
     "policy.ip_allowlist.cidrs"},
    {"CidrsAtMax", [](auto& s) { s.policy.ip_allowlist.cidrs.assign(1000, "10.0.0.0/8"); }, ""},
    {"AllowlistEnabledEmpty",
     [](auto& s) {
       s.policy.ip_allowlist.enabled = true;
       s.policy.ip_allowlist.cidrs.clear();
     },
     "policy.ip_allowlist.cidrs"},
    {"StripeSha1",
     [](auto& s) {
       s.policy.hmac.scheme = SignatureScheme::kStripe;
       s.policy.hmac.algorithm = HmacAlgorithm::kSha1;
     },
     "policy.hmac.algorithm"},
    {"GithubSha512",
     [](auto& s) {
       s.policy.hmac.scheme = SignatureScheme::kGithub;
       s.policy.hmac.algorithm = HmacAlgorithm::kSha512;
     },
     "policy.hmac.algorithm"},
    {"GenericSha512", [](auto& s) { s.policy.hmac.algorithm = HmacAlgorithm::kSha512; }, ""},
    {"HeaderNotToken", [](auto& s) { s.policy.hmac.header = "X Sig"; }, "policy.hmac.header"},
};

INSTANTIATE_TEST_SUITE_P(Boundaries, ValidateTriggerSpecTable, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.label; });

TEST(ValidateTriggerSpec, MessageNamesTheCidrAndTheProblem) {
  TriggerSpec spec = valid_spec();
  spec.policy.ip_allowlist.cidrs = {"10.0.0.1/8"};
  auto result = validate(spec);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().message,
            "policy.ip_allowlist.cidrs[0]: host bits set; did you mean 10.0.0.0/8?");
}

TEST(ValidateTriggerSpec, RateMessageGivesTheRangeAndValue) {
  TriggerSpec spec = valid_spec();
  spec.policy.rate_limit.requests = 0;
  auto result = validate(spec);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().message,
            "policy.rate_limit.requests: must be between 1 and 1000000 (got 0)");
}

TEST(ValidateSecret, AcceptsSixteenToTwoHundredFiftySixBytes) {
  EXPECT_TRUE(validate_secret(std::string(16, 's')).has_value());
  EXPECT_TRUE(validate_secret(std::string(256, 's')).has_value());
  EXPECT_FALSE(validate_secret(std::string(15, 's')).has_value());
  EXPECT_FALSE(validate_secret(std::string(257, 's')).has_value());
}

TEST(ValidateSecret, ErrorNamesTheFieldButNeverTheSecret) {
  auto result = validate_secret("tooshort-SECRET", "policy.hmac.previous_secret");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().field, "policy.hmac.previous_secret");
  EXPECT_TRUE(result.error().message.starts_with("policy.hmac.previous_secret: "));
  EXPECT_EQ(result.error().message.find("SECRET"), std::string::npos);
}

TEST(TriggerKey, AcceptsUrlSafeCharactersOnly) {
  EXPECT_TRUE(is_valid_trigger_key("wh_github_main_0123456789abcdef"));
  EXPECT_TRUE(is_valid_trigger_key("a-b_C9"));
  EXPECT_FALSE(is_valid_trigger_key(""));
  EXPECT_FALSE(is_valid_trigger_key("a.b"));
  EXPECT_FALSE(is_valid_trigger_key("a%2F"));
  EXPECT_TRUE(is_valid_trigger_key(std::string(128, 'k')));
  EXPECT_FALSE(is_valid_trigger_key(std::string(129, 'k')));
}

TEST(PolicyEnums, RoundTripThroughTheirNames) {
  for (auto m : {Mode::kEnforce, Mode::kMonitor}) EXPECT_EQ(*parse_mode(to_string(m)), m);
  for (auto m : {StoreErrorMode::kOpen, StoreErrorMode::kClosed}) {
    EXPECT_EQ(*parse_store_error_mode(to_string(m)), m);
  }
  for (auto a : {HmacAlgorithm::kSha1, HmacAlgorithm::kSha256, HmacAlgorithm::kSha512}) {
    EXPECT_EQ(*parse_hmac_algorithm(to_string(a)), a);
  }
  for (auto s :
       {SignatureScheme::kGeneric, SignatureScheme::kGithub, SignatureScheme::kStripe,
        SignatureScheme::kSlack, SignatureScheme::kStandardWebhooks, SignatureScheme::kShopify}) {
    EXPECT_EQ(*parse_signature_scheme(to_string(s)), s);
  }
  EXPECT_EQ(to_string(SignatureScheme::kStandardWebhooks), "standard-webhooks");
}

TEST(PolicyEnums, RejectUnknownNames) {
  EXPECT_FALSE(parse_mode("Enforce").has_value());
  EXPECT_FALSE(parse_store_error_mode("").has_value());
  EXPECT_FALSE(parse_hmac_algorithm("md5").has_value());
  EXPECT_FALSE(parse_signature_scheme("svix").has_value());
}

}  // namespace
}  // namespace hookguard::policy
