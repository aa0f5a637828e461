#include "policy/compiled_trigger.h"

#include <gtest/gtest.h>

namespace hookguard::policy {
namespace {

TriggerSpec spec_with_hmac(SignatureScheme scheme = SignatureScheme::kGithub) {
  TriggerSpec spec;
  spec.id = 7;
  spec.key = "wh_abcdefghijklmnopqrstuvwxyz012345";
  spec.name = "t";
  spec.upstream_url = "http://127.0.0.1:9000/";
  spec.policy.hmac.enabled = true;
  spec.policy.hmac.scheme = scheme;
  return spec;
}

TriggerSecrets secrets(std::string current) { return TriggerSecrets{std::move(current), {}, 0}; }

TEST(CompiledTrigger, CompilesAValidSpecAndParsesItsCidrs) {
  auto spec = spec_with_hmac();
  spec.policy.ip_allowlist = {true, {"10.0.0.0/8", "2001:db8::/32"}};
  auto compiled = CompiledTrigger::compile(spec, secrets("0123456789abcdef"));
  ASSERT_TRUE(compiled.has_value()) << compiled.error().message;
  EXPECT_EQ(compiled->allowlist.cidrs().size(), 2u);
  EXPECT_TRUE(compiled->allowlist.contains(*IpAddress::parse("::ffff:10.2.3.4")));
  EXPECT_EQ(compiled->spec, spec);
}

TEST(CompiledTrigger, RejectsAnInvalidSpecWithItsFieldPath) {
  auto spec = spec_with_hmac();
  spec.policy.ip_allowlist.cidrs = {"10.0.0.0/8", "10.0.0.1/8"};
  auto compiled = CompiledTrigger::compile(spec, secrets("0123456789abcdef"));
  ASSERT_FALSE(compiled.has_value());
  EXPECT_EQ(compiled.error().field, "policy.ip_allowlist.cidrs[1]");
  EXPECT_EQ(compiled.error().message,
            "policy.ip_allowlist.cidrs[1]: host bits set; did you mean 10.0.0.0/8?");
}

TEST(CompiledTrigger, HmacTriggerNeedsACurrentSecretOfValidLength) {
  for (const std::string& bad : {std::string(), std::string(15, 's'), std::string(257, 's')}) {
    auto compiled = CompiledTrigger::compile(spec_with_hmac(), secrets(bad));
    ASSERT_FALSE(compiled.has_value()) << bad.size();
    EXPECT_EQ(compiled.error().field, "policy.hmac.secret");
  }
  EXPECT_TRUE(CompiledTrigger::compile(spec_with_hmac(), secrets(std::string(256, 's'))));
}

TEST(CompiledTrigger, ChecksThePreviousSecretToo) {
  TriggerSecrets s{"0123456789abcdef", std::string("short"), 1};
  auto compiled = CompiledTrigger::compile(spec_with_hmac(), s);
  ASSERT_FALSE(compiled.has_value());
  EXPECT_EQ(compiled.error().field, "policy.hmac.previous_secret");
}

TEST(CompiledTrigger, TriggerWithoutHmacNeedsNoSecret) {
  auto spec = spec_with_hmac();
  spec.policy.hmac.enabled = false;
  EXPECT_TRUE(CompiledTrigger::compile(spec, secrets("")).has_value());
}

TEST(CompiledTrigger, StandardWebhooksSecretMustBeBase64) {
  const auto spec = spec_with_hmac(SignatureScheme::kStandardWebhooks);
  EXPECT_TRUE(CompiledTrigger::compile(spec, secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
                  .has_value());
  EXPECT_TRUE(CompiledTrigger::compile(spec, secrets("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")));
  auto bad = CompiledTrigger::compile(spec, secrets("whsec_not-base64-at-all!!"));
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().field, "policy.hmac.secret");
  EXPECT_EQ(bad.error().message.find("not-base64"), std::string::npos);
}

TEST(CompiledTrigger, SecretsAtOffersThePreviousSecretOnlyBeforeItsDeadline) {
  auto compiled = CompiledTrigger::compile(
      spec_with_hmac(),
      TriggerSecrets{"current-secret-0123", std::string("previous-secret-0123"), 1'000'000});
  ASSERT_TRUE(compiled.has_value());
  auto before = compiled->secrets_at(999'999);
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[0], "current-secret-0123");
  EXPECT_EQ(before[1], "previous-secret-0123");
  auto at = compiled->secrets_at(1'000'000);
  ASSERT_EQ(at.size(), 1u);
  EXPECT_EQ(at[0], "current-secret-0123");
}

TEST(CompiledTrigger, AllowsOnlyItsExactUpperCaseMethods) {
  auto spec = spec_with_hmac();
  spec.policy.hmac.enabled = false;
  spec.methods = {"POST", "PUT"};
  auto compiled = CompiledTrigger::compile(spec, {});
  ASSERT_TRUE(compiled.has_value());
  EXPECT_TRUE(compiled->allows_method("POST"));
  EXPECT_TRUE(compiled->allows_method("PUT"));
  EXPECT_FALSE(compiled->allows_method("post"));
  EXPECT_FALSE(compiled->allows_method("GET"));
  EXPECT_FALSE(compiled->allows_method(""));
}

}  // namespace
}  // namespace hookguard::policy
