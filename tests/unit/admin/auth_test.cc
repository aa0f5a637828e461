// Tests admin-api/auth.cc: bearer token checks.
#include "admin-api/auth.h"

#include <gtest/gtest.h>

namespace hookguard::admin {
namespace {

TEST(TokenAuth, AcceptsOnlyTheConfiguredBearerToken) {
  TokenAuth auth("s3cret-token-0123456789");
  EXPECT_TRUE(auth.configured());
  EXPECT_TRUE(auth.check("Bearer s3cret-token-0123456789"));
  EXPECT_TRUE(auth.check("bearer s3cret-token-0123456789"));
  EXPECT_FALSE(auth.check(std::nullopt));
  EXPECT_FALSE(auth.check(""));
  EXPECT_FALSE(auth.check("Bearer "));
  EXPECT_FALSE(auth.check("Bearer s3cret-token-012345678"));
  EXPECT_FALSE(auth.check("Bearer s3cret-token-01234567890"));
  EXPECT_FALSE(auth.check("s3cret-token-0123456789"));
  EXPECT_FALSE(auth.check("Basic s3cret-token-0123456789"));
  EXPECT_FALSE(auth.check("Token s3cret-token-0123456789"));
}

TEST(TokenAuth, WithoutATokenEveryCheckFails) {
  TokenAuth auth("");
  EXPECT_FALSE(auth.configured());
  EXPECT_FALSE(auth.check("Bearer "));
  EXPECT_FALSE(auth.check("Bearer x"));
  EXPECT_FALSE(auth.check(std::nullopt));
}

}  // namespace
}  // namespace hookguard::admin
