#include "policy/secret_box.h"

#include <gtest/gtest.h>

#include "policy/encoding.h"

namespace hookguard::policy {
namespace {

SecretBox make_box(std::string_view raw_key = std::string(32, 'k')) {
  auto box = SecretBox::from_raw_key(raw_key);
  EXPECT_TRUE(box.has_value());
  return std::move(*box);
}

TEST(SecretBox, RoundTripsASecretBoundToItsTrigger) {
  const auto box = make_box();
  const std::string sealed = box.seal("whsec_the-plaintext-secret", "wh_trigger_a");
  ASSERT_EQ(sealed.size(), 1 + 12 + 26 + 16u);
  EXPECT_EQ(sealed[0], '\x01');
  EXPECT_EQ(sealed.find("the-plaintext"), std::string::npos);
  auto opened = box.open(sealed, "wh_trigger_a");
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(*opened, "whsec_the-plaintext-secret");
}

TEST(SecretBox, RoundTripsAnEmptyPlaintext) {
  const auto box = make_box();
  auto opened = box.open(box.seal("", "aad"), "aad");
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(*opened, "");
}

TEST(SecretBox, SealsWithAFreshNonceEachTime) {
  const auto box = make_box();
  EXPECT_NE(box.seal("same", "aad"), box.seal("same", "aad"));
}

// Verifies GCM authenticates every byte: version, nonce, ciphertext and tag.
TEST(SecretBox, RejectsAFlippedBitInAnyPosition) {
  const auto box = make_box();
  const std::string sealed = box.seal("a secret worth protecting", "aad");
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    std::string tampered = sealed;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    auto opened = box.open(tampered, "aad");
    EXPECT_FALSE(opened.has_value()) << "byte " << i;
  }
}

TEST(SecretBox, RejectsAWrongAad) {
  const auto box = make_box();
  const std::string sealed = box.seal("secret", "wh_trigger_a");
  auto opened = box.open(sealed, "wh_trigger_b");
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().message, "cannot open sealed secret");
}

TEST(SecretBox, RejectsAWrongKey) {
  const std::string sealed = make_box().seal("secret", "aad");
  EXPECT_FALSE(make_box(std::string(32, 'j')).open(sealed, "aad").has_value());
}

TEST(SecretBox, RejectsTruncatedInput) {
  const auto box = make_box();
  const std::string sealed = box.seal("secret", "aad");
  for (std::size_t n = 0; n < sealed.size(); ++n) {
    EXPECT_FALSE(box.open(sealed.substr(0, n), "aad").has_value()) << n;
  }
}

TEST(SecretBox, AcceptsAGeneratedBase64Key) {
  const std::string key = SecretBox::generate_key_base64();
  EXPECT_EQ(from_base64(key)->size(), SecretBox::kKeyBytes);
  auto box = SecretBox::from_base64_key(key);
  ASSERT_TRUE(box.has_value());
  EXPECT_EQ(*box->open(box->seal("x", "y"), "y"), "x");
  EXPECT_NE(SecretBox::generate_key_base64(), key);
}

TEST(SecretBox, BadKeyLengthErrorDoesNotContainTheKey) {
  const std::string short_key = to_base64("SUPERSECRETKEYMATERIAL");
  auto box = SecretBox::from_base64_key(short_key);
  ASSERT_FALSE(box.has_value());
  EXPECT_EQ(box.error().message, "master key must be 32 bytes (got 22)");
  EXPECT_EQ(box.error().message.find(short_key), std::string::npos);
  EXPECT_EQ(box.error().message.find("SUPERSECRET"), std::string::npos);
}

TEST(SecretBox, NonBase64KeyErrorDoesNotContainTheKey) {
  auto box = SecretBox::from_base64_key("not base64 key!!");
  ASSERT_FALSE(box.has_value());
  EXPECT_EQ(box.error().message.find("not base64 key"), std::string::npos);
  EXPECT_FALSE(SecretBox::from_raw_key(std::string(33, 'k')).has_value());
}

}  // namespace
}  // namespace hookguard::policy
