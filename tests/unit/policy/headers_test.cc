#include "policy/headers.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace hookguard::policy
