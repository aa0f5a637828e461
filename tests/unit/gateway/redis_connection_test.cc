// Tests the parts of gateway/redis_connection.cc that need no server: the circuit breaker, the
// generation that marks connections stale, and script hashes.
#include "gateway/redis_connection.h"

#include <gtest/gtest.h>

namespace hookguard::gateway {
namespace {

using Admission = RedisEndpoint::Admission;

RedisOptions breaker_options(int breaker_open_ms) {
  RedisOptions options;
  options.breaker_open_ms = breaker_open_ms;
  return options;
}

TEST(RedisEndpoint, AdmitsEveryCallerWhileClosed) {
  RedisEndpoint redis(breaker_options(60000));
  EXPECT_EQ(redis.admit(), Admission::kClosed);
  redis.succeeded(Admission::kClosed);
  EXPECT_EQ(redis.admit(), Admission::kClosed);
}

TEST(RedisEndpoint, RefusesEveryCallerForTheBreakerPeriodAfterAFailure) {
  RedisEndpoint redis(breaker_options(60000));
  redis.failed(Admission::kClosed);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(redis.admit(), Admission::kRefused);
}

TEST(RedisEndpoint, LetsExactlyOneProbeThroughOnceThePeriodIsOver) {
  RedisEndpoint redis(breaker_options(0));
  redis.failed(Admission::kClosed);
  EXPECT_EQ(redis.admit(), Admission::kProbe);
  EXPECT_EQ(redis.admit(), Admission::kRefused);  // the probe has not answered yet
  redis.succeeded(Admission::kProbe);
  EXPECT_EQ(redis.admit(), Admission::kClosed);
}

TEST(RedisEndpoint, AFailedProbeKeepsTheBreakerOpenAndFreesTheProbe) {
  RedisEndpoint redis(breaker_options(0));
  redis.failed(Admission::kClosed);
  ASSERT_EQ(redis.admit(), Admission::kProbe);
  redis.failed(Admission::kProbe);
  EXPECT_EQ(redis.admit(), Admission::kProbe);

  RedisEndpoint slow(breaker_options(60000));
  slow.failed(Admission::kClosed);
  slow.failed(Admission::kProbe);
  EXPECT_EQ(slow.admit(), Admission::kRefused);
}

TEST(RedisEndpoint, AFailureMakesExistingConnectionsStale) {
  RedisEndpoint redis(breaker_options(60000));
  const RedisConnection before;
  EXPECT_TRUE(redis.is_current(before));
  redis.failed(Admission::kClosed);
  EXPECT_FALSE(redis.is_current(before));
}

TEST(RedisConnection, AClosedConnectionRefusesCommands) {
  RedisConnection connection;
  EXPECT_FALSE(connection.is_open());
  auto reply = connection.command({"PING"});
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().message, "redis: not connected");
  RedisConnection moved = std::move(connection);
  EXPECT_FALSE(moved.is_open());
}

TEST(RedisScript, IsNamedByTheSha1OfItsText) {
  const RedisScript script("return 1");
  EXPECT_EQ(script.text, "return 1");
  EXPECT_EQ(script.sha, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

}  // namespace
}  // namespace hookguard::gateway
