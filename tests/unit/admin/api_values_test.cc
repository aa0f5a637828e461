// Tests admin-api/api_values.cc: query decoding, RFC 3339 times and opaque cursors.
#include "admin-api/api_values.h"

#include <gtest/gtest.h>

namespace hookguard::admin {
namespace {

TEST(ApiValues, ParsesRfc3339InUtcAndWithOffsets) {
  EXPECT_EQ(parse_rfc3339_us("1970-01-01T00:00:00Z", "since").value(), 0);
  EXPECT_EQ(parse_rfc3339_us("2024-02-29T12:00:00.5Z", "since").value(),
            1709208000LL * 1000000 + 500000);
  EXPECT_EQ(parse_rfc3339_us("2024-02-29T14:00:00+02:00", "since").value(), 1709208000LL * 1000000);
  EXPECT_EQ(parse_rfc3339_us("2024-02-29T11:30:00.123456789-00:30", "since").value(),
            1709208000LL * 1000000 + 123456);
}

TEST(ApiValues, RejectsMalformedTimesNamingTheField) {
  for (const char* bad : {"yesterday", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
                          "2024-01-01T24:00:00Z", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00",
                          "2024-01-01T00:00:00+0200", "2024-01-01T00:00:00Zjunk", ""}) {
    auto r = parse_rfc3339_us(bad, "until");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, "invalid_request");
    EXPECT_EQ(r.error().field, "until");
  }
}

TEST(ApiValues, FormatsMillisecondsAsRfc3339Utc) {
  EXPECT_EQ(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(1709208000123), "2024-02-29T12:00:00.123Z");
  EXPECT_EQ(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
}

TEST(ApiValues, CursorRoundTripsAndRejectsForgeriesAndOtherTags) {
  const auto cursor = encode_cursor("e", 1709208000123456, 42);
  EXPECT_EQ(cursor.find_first_of("+/="), std::string::npos);
  auto back = decode_cursor(cursor, "e");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->first, 1709208000123456);
  EXPECT_EQ(back->second, 42);
  EXPECT_FALSE(decode_cursor(cursor, "t"));
  for (const char* bad : {"", "forged", "ZTox", "ZTp4OjE", "e:1:2"}) {
    auto r = decode_cursor(bad, "e");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().field, "cursor");
  }
}

TEST(ApiValues, PercentDecodingKeepsPlusAndRefusesBadEscapesAndNul) {
  EXPECT_EQ(percent_decode("a%20b+c%2B").value(), "a b+c+");
  EXPECT_FALSE(percent_decode("%2"));
  EXPECT_FALSE(percent_decode("%zz"));
  EXPECT_FALSE(percent_decode("a%00b"));
}

TEST(ApiValues, IntegersAreStrictAndBounded) {
  EXPECT_EQ(parse_int("100", 1, 1000, "limit").value(), 100);
  for (const char* bad : {"0", "1001", "-1", "+5", " 5", "5 ", "1e3", "", "99999999999999999999"}) {
    auto r = parse_int(bad, 1, 1000, "limit");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().field, "limit");
  }
}

TEST(ApiValues, UnknownQueryParametersAreNamed) {
  auto r = reject_unknown_params({{"limit", "1"}, {"limt", "2"}}, {"limit", "cursor"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().field, "limt");
  EXPECT_TRUE(reject_unknown_params({{"cursor", "x"}}, {"limit", "cursor"}));
}

}  // namespace
}  // namespace hookguard::admin
