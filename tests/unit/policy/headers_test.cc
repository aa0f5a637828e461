#include "policy/headers.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace hookguard::policy {
namespace {

TEST(HeaderNameEquals, IgnoresAsciiCaseOnly) {
  EXPECT_TRUE(header_name_equals("X-Hub-Signature-256", "x-hub-signature-256"));
  EXPECT_TRUE(header_name_equals("", ""));
  EXPECT_FALSE(header_name_equals("X-Hub-Signature", "X-Hub-Signature-256"));
  EXPECT_FALSE(header_name_equals("a-b", "a_b"));
}

TEST(HeaderList, GetReturnsTheFirstValueCaseInsensitively) {
  HeaderList headers{{"Content-Type", "a"}, {"content-type", "b"}};
  ASSERT_TRUE(headers.get("CONTENT-TYPE").has_value());
  EXPECT_EQ(*headers.get("CONTENT-TYPE"), "a");
  EXPECT_FALSE(headers.get("Content-Length").has_value());
}

TEST(HeaderList, AddKeepsDuplicatesInOrder) {
  HeaderList headers;
  headers.add("X-A", "1");
  headers.add("x-a", "2");
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers.fields()[1].second, "2");
}

TEST(HeaderList, RemoveDropsEveryFieldOfThatName) {
  HeaderList headers{{"A", "1"}, {"B", "2"}, {"a", "3"}};
  headers.remove("A");
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers.fields()[0].first, "B");
}

TEST(HeaderList, SetReplacesEveryFieldOfThatNameWithOne) {
  HeaderList headers{{"A", "1"}, {"a", "2"}};
  headers.set("A", "3");
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(*headers.get("a"), "3");
  EXPECT_FALSE(headers.empty());
}

TEST(IsToken, AcceptsExactlyTheRfc9110Tchars) {
  EXPECT_TRUE(is_token("X-Hub-Signature-256"));
  EXPECT_TRUE(is_token("POST"));
  EXPECT_TRUE(is_token("!#$%&'*+-.^_`|~09azAZ"));
  EXPECT_FALSE(is_token(""));
  static constexpr char kNotTchars[] = " \t\r\n:;,/\\\"()<>=?@[]{}\x7f\x80\xff\0";
  for (char c : std::string_view(kNotTchars, sizeof kNotTchars - 1)) {
    EXPECT_FALSE(is_tchar(c)) << static_cast<int>(static_cast<unsigned char>(c));
    EXPECT_FALSE(is_token(std::string("X-A") + c))
        << static_cast<int>(static_cast<unsigned char>(c));
  }
  int tchars = 0;
  for (int c = 0; c < 256; ++c) tchars += is_tchar(static_cast<char>(c)) ? 1 : 0;
  EXPECT_EQ(tchars, 62 + 15);
}

TEST(IsValidHeaderValue, RefusesControlBytesButHtab) {
  EXPECT_TRUE(is_valid_header_value(""));
  EXPECT_TRUE(is_valid_header_value("sha256=ab cd\tef"));
  EXPECT_TRUE(is_valid_header_value("caf\xc3\xa9"));
  const std::string_view bad_values[] = {"a\rb", "a\nb", std::string_view("a\0b", 3), "a\x01",
                                         "a\x7f"};
  for (std::string_view bad : bad_values) {
    EXPECT_FALSE(is_valid_header_value(bad)) << bad;
  }
}

TEST(HasLineBreakOrNul, FindsOnlyCrLfAndNul) {
  EXPECT_TRUE(has_line_break_or_nul("a\r"));
  EXPECT_TRUE(has_line_break_or_nul("\nb"));
  EXPECT_TRUE(has_line_break_or_nul(std::string_view("a\0", 2)));
  EXPECT_FALSE(has_line_break_or_nul(""));
  EXPECT_FALSE(has_line_break_or_nul("a\tb\x01\x7f"));
}

}  // namespace
}  // namespace hookguard::policy
