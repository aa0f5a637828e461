// Error values: how a nested field's error reads from the field that contains it.
#include "policy/result.h"

#include <gtest/gtest.h>

namespace hookguard {
namespace {

TEST(WithPrefix, JoinsTheFieldPathsWithADot) {
  const Error e = with_prefix(Error{"invalid_config", "hmac.secret: required", "hmac.secret"},
                              "triggers[2].policy");
  EXPECT_EQ(e.code, "invalid_config");
  EXPECT_EQ(e.message, "triggers[2].policy.hmac.secret: required");
  EXPECT_EQ(e.field, "triggers[2].policy.hmac.secret");
}

TEST(WithPrefix, NamesThePrefixAsTheFieldOfAnErrorWithoutOne) {
  const Error e = with_prefix(Error{"invalid_config", "not a mapping", ""}, "triggers[0]");
  EXPECT_EQ(e.message, "triggers[0]: not a mapping");
  EXPECT_EQ(e.field, "triggers[0]");
}

}  // namespace
}  // namespace hookguard
