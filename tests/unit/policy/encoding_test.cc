#include "policy/encoding.h"

#include <gtest/gtest.h>

#include <array>
#include <set>

namespace hookguard::policy {
namespace {

TEST(Hex, EncodesLowerCaseAndDecodesEitherCase) {
  EXPECT_EQ(to_hex(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  EXPECT_EQ(*from_hex("0001ABff"), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(*from_hex(""), "");
}

TEST(Hex, RejectsOddLengthAndNonHex) {
  EXPECT_FALSE(from_hex("abc").has_value());
  EXPECT_FALSE(from_hex("zz").has_value());
  EXPECT_FALSE(from_hex("0 ").has_value());
  EXPECT_FALSE(from_hex("0x").has_value());
}

// RFC 4648 §10 test vectors.
TEST(Base64, MatchesRfc4648Vectors) {
  const std::array<std::pair<std::string_view, std::string_view>, 7> vectors{{
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  }};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(to_base64(plain), encoded);
    ASSERT_TRUE(from_base64(encoded).has_value()) << encoded;
    EXPECT_EQ(*from_base64(encoded), plain);
  }
}

TEST(Base64, PaddingIsOptional) {
  EXPECT_EQ(*from_base64("Zg"), "f");
  EXPECT_EQ(*from_base64("Zm8"), "fo");
}

TEST(Base64, RejectsInvalidInput) {
  for (std::string_view bad : {"Z", "Zg=", "Z===", "Zg===", "Zm9v=", "Zg==Zg==", "Zm9v\n", " Zm9v",
                               "Zm-v", "Zm_v", "Zh==", "Zm9=", "=", "=="}) {
    EXPECT_FALSE(from_base64(bad).has_value()) << '"' << bad << '"';
  }
}

TEST(Base64, RoundTripsEveryLengthAndByte) {
  std::string data;
  for (int i = 0; i < 300; ++i) {
    data.push_back(static_cast<char>(i * 37));
    ASSERT_EQ(*from_base64(to_base64(data)), data);
  }
}

TEST(RandomBytes, HasTheRequestedLengthAndDiffers) {
  EXPECT_EQ(random_bytes(0).size(), 0u);
  EXPECT_EQ(random_bytes(32).size(), 32u);
  EXPECT_NE(random_bytes(32), random_bytes(32));
}

TEST(RandomBase62, UsesOnlyTheAlphabetAndCoversIt) {
  const std::string s = random_base62(20000);
  ASSERT_EQ(s.size(), 20000u);
  std::set<char> seen(s.begin(), s.end());
  for (char c : seen) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << c;
  EXPECT_EQ(seen.size(), 62u);
}

TEST(TriggerKey, IsWhPlus32Base62) {
  const std::string key = generate_trigger_key();
  ASSERT_EQ(key.size(), 35u);
  EXPECT_TRUE(key.starts_with("wh_"));
  for (char c : key.substr(3)) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)));
  EXPECT_NE(generate_trigger_key(), key);
}

TEST(UuidV4, HasCanonicalFormVersionAndVariant) {
  const std::string uuid = generate_uuid_v4();
  ASSERT_EQ(uuid.size(), 36u);
  for (std::size_t i : {8u, 13u, 18u, 23u}) EXPECT_EQ(uuid[i], '-');
  EXPECT_EQ(uuid[14], '4');
  EXPECT_NE(std::string_view("89ab").find(uuid[19]), std::string_view::npos);
  EXPECT_NE(generate_uuid_v4(), uuid);
}

// Verifies that ids drawn across several refills of the per-thread random pool stay unique and
// well-formed (the pool holds 256 ids).
TEST(UuidV4, StaysUniqueAcrossPoolRefills) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto uuid = generate_uuid_v4();
    ASSERT_EQ(uuid.size(), 36u);
    EXPECT_EQ(uuid[14], '4');
    EXPECT_EQ(uuid.find_first_not_of("0123456789abcdef-"), std::string::npos) << uuid;
    EXPECT_TRUE(seen.insert(uuid).second) << "repeated " << uuid;
  }
}

TEST(UuidV7, CarriesTheMillisecondsInItsFirst48BitsThenVersionVariantAndRandomBits) {
  const std::int64_t ms = 0x0193'4567'89abLL;  // 2024-11-..., any value below 2^48
  const std::string uuid = generate_uuid_v7(ms);
  ASSERT_EQ(uuid.size(), 36u);
  for (std::size_t i : {8u, 13u, 18u, 23u}) EXPECT_EQ(uuid[i], '-');
  EXPECT_EQ(uuid.substr(0, 13), "01934567-89ab");
  EXPECT_EQ(uuid[14], '7');
  EXPECT_NE(std::string_view("89ab").find(uuid[19]), std::string_view::npos);
  EXPECT_EQ(uuid.find_first_not_of("0123456789abcdef-"), std::string::npos) << uuid;
  EXPECT_NE(generate_uuid_v7(ms), uuid) << "the last 74 bits are random";
}

// The request log's unique index relies on this: a later millisecond sorts after an earlier one,
// as text and as PostgreSQL's uuid (both compare the bytes in order).
TEST(UuidV7, IdsOfLaterMillisecondsSortAfterEarlierOnes) {
  std::string previous = generate_uuid_v7(1'700'000'000'000);
  for (std::int64_t ms = 1'700'000'000'001; ms < 1'700'000'000'300; ++ms) {
    const std::string next = generate_uuid_v7(ms);
    EXPECT_LT(previous, next) << ms;
    previous = next;
  }
  EXPECT_LT(generate_uuid_v7(0x00ff'ffff'ffffLL), generate_uuid_v7(0x0100'0000'0000LL));
}

TEST(UuidV7, ClampsTimesOutsideItsFortyEightBits) {
  EXPECT_EQ(generate_uuid_v7(-5).substr(0, 13), "00000000-0000");
  EXPECT_EQ(generate_uuid_v7(std::int64_t{1} << 50).substr(0, 13), "ffffffff-ffff");
}

TEST(UuidV7, StaysUniqueWithinOneMillisecondAcrossPoolRefills) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(seen.insert(generate_uuid_v7(1'700'000'000'000)).second);
  }
}

TEST(GenerateSecret, IsBase62ForMostSchemesAndWhsecBase64ForStandardWebhooks) {
  for (auto scheme : {SignatureScheme::kGeneric, SignatureScheme::kGithub, SignatureScheme::kStripe,
                      SignatureScheme::kSlack, SignatureScheme::kShopify}) {
    const std::string secret = generate_secret(scheme);
    ASSERT_EQ(secret.size(), 43u);
    EXPECT_EQ(
        secret.find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
        std::string::npos)
        << secret;
    EXPECT_NE(generate_secret(scheme), secret);
  }
  const std::string whsec = generate_secret(SignatureScheme::kStandardWebhooks);
  ASSERT_TRUE(whsec.starts_with("whsec_"));
  const auto key = from_base64(std::string_view(whsec).substr(6));
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->size(), 32u);
  EXPECT_NE(generate_secret(SignatureScheme::kStandardWebhooks), whsec);
}

}  // namespace
}  // namespace hookguard::policy
