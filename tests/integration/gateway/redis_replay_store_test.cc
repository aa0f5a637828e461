// Integration tests of gateway/redis_replay_store.cc against the real Redis of deploy/local.
#include "gateway/redis_replay_store.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_env.h"

namespace hookguard::gateway {
namespace {

using Kind = policy::ReplayReply::Kind;
using Clock = std::chrono::steady_clock;

RedisOptions live_options(const std::string& prefix = "") {
  RedisOptions options;
  options.host = testing::redis_host();
  options.port = testing::redis_port();
  options.connect_timeout_ms = 2000;
  options.command_timeout_ms = 2000;
  options.key_prefix = prefix;
  return options;
}

std::string fresh_key() { return "hg:rp:{t" + testing::unique_prefix() + "}:abc"; }

// The test's own view of Redis: GET and PTTL of one key.
class DirectRedis {
 public:
  DirectRedis() {
    ctx_ = redisConnectWithTimeout(testing::redis_host().c_str(), testing::redis_port(),
                                   timeval{2, 0});
  }
  ~DirectRedis() {
    if (ctx_ != nullptr) redisFree(ctx_);
  }
  DirectRedis(const DirectRedis&) = delete;
  DirectRedis& operator=(const DirectRedis&) = delete;

  std::string get(const std::string& key) { return run("GET", key); }
  long long pttl(const std::string& key) { return std::stoll(run("PTTL", key)); }

 private:
  std::string run(const char* cmd, const std::string& key) {
    auto* reply =
        static_cast<redisReply*>(redisCommand(ctx_, "%s %b", cmd, key.data(), key.size()));
    if (reply == nullptr) return "ERR";
    std::string out = reply->type == REDIS_REPLY_INTEGER ? std::to_string(reply->integer)
                      : reply->type == REDIS_REPLY_NIL   ? "(nil)"
                                                         : std::string(reply->str, reply->len);
    freeReplyObject(reply);
    return out;
  }
  redisContext* ctx_ = nullptr;
};

int unused_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(RedisReplayStore, ReservesOnceThenReportsPendingWithItsTtl) {
  const std::string prefix = testing::unique_prefix() + ":";
  RedisReplayStore store(live_options(prefix));
  DirectRedis redis;
  const auto key = fresh_key();
  EXPECT_EQ(store.reserve(key, "req-1", 5000).kind, Kind::kReserved);
  EXPECT_EQ(redis.get(prefix + key), "pending:req-1");
  const auto ttl = redis.pttl(prefix + key);
  EXPECT_GT(ttl, 4000);
  EXPECT_LE(ttl, 5000);

  const auto again = store.reserve(key, "req-2", 5000);
  EXPECT_EQ(again.kind, Kind::kPending);
  EXPECT_GT(again.pending_ttl_ms, 4000);
  EXPECT_LE(again.pending_ttl_ms, 5000);
  EXPECT_EQ(store.errors(), 0u);
}

TEST(RedisReplayStore, CompleteMarksDoneForTheWindow) {
  const std::string prefix = testing::unique_prefix() + ":";
  RedisReplayStore store(live_options(prefix));
  DirectRedis redis;
  const auto key = fresh_key();
  ASSERT_EQ(store.reserve(key, "req-1", 5000).kind, Kind::kReserved);
  ASSERT_TRUE(store.complete(key, 86'400'000));
  EXPECT_EQ(redis.get(prefix + key), "done");
  EXPECT_GT(redis.pttl(prefix + key), 86'000'000);
  EXPECT_EQ(store.reserve(key, "req-2", 5000).kind, Kind::kDone);
}

TEST(RedisReplayStore, ReleaseDropsOnlyItsOwnReservation) {
  RedisReplayStore store(live_options());
  const auto key = fresh_key();
  ASSERT_EQ(store.reserve(key, "req-1", 5000).kind, Kind::kReserved);
  ASSERT_TRUE(store.release(key, "someone-else"));
  EXPECT_EQ(store.reserve(key, "req-2", 5000).kind, Kind::kPending);
  ASSERT_TRUE(store.release(key, "req-1"));
  EXPECT_EQ(store.reserve(key, "req-3", 5000).kind, Kind::kReserved);
  // A release after someone marked the delivery done leaves it done.
  ASSERT_TRUE(store.complete(key, 60'000));
  ASSERT_TRUE(store.release(key, "req-3"));
  EXPECT_EQ(store.reserve(key, "req-4", 5000).kind, Kind::kDone);
}

// Verifies the TTLs really lapse: a pending reservation frees the id, a done mark ends.
TEST(RedisReplayStore, PendingAndDoneExpire) {
  RedisReplayStore store(live_options());
  const auto key = fresh_key();
  ASSERT_EQ(store.reserve(key, "req-1", 150).kind, Kind::kReserved);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(store.reserve(key, "req-2", 5000).kind, Kind::kReserved);
  ASSERT_TRUE(store.complete(key, 150));
  EXPECT_EQ(store.reserve(key, "req-3", 5000).kind, Kind::kDone);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(store.reserve(key, "req-4", 5000).kind, Kind::kReserved);
}

TEST(RedisReplayStore, SixteenConcurrentCopiesReserveExactlyOnce) {
  RedisReplayStore store(live_options());
  for (int round = 0; round < 5; ++round) {
    const auto key = fresh_key();
    std::atomic<int> reserved{0}, pending{0}, other{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < 16; ++i) {
      threads.emplace_back([&, i] {
        while (!go.load()) std::this_thread::yield();
        switch (store.reserve(key, "req-" + std::to_string(i), 10'000).kind) {
          case Kind::kReserved:
            ++reserved;
            break;
          case Kind::kPending:
            ++pending;
            break;
          default:
            ++other;
        }
      });
    }
    go.store(true);
    for (auto& t : threads) t.join();
    EXPECT_EQ(reserved.load(), 1) << "round " << round;
    EXPECT_EQ(pending.load(), 15) << "round " << round;
    EXPECT_EQ(other.load(), 0) << "round " << round;
  }
  EXPECT_EQ(store.errors(), 0u);
}

TEST(RedisReplayStore, KeysWithBinaryBytesAreStoredVerbatim) {
  const std::string prefix = testing::unique_prefix() + ":";
  RedisReplayStore store(live_options(prefix));
  DirectRedis redis;
  const std::string key = fresh_key() + std::string("\0 \r\n", 4);
  ASSERT_EQ(store.reserve(key, "req-1", 5000).kind, Kind::kReserved);
  EXPECT_EQ(redis.get(prefix + key), "pending:req-1");
}

// Verifies the documented failure mode's input: an unreachable Redis is a fast store error,
// then the breaker answers at once.
TEST(RedisReplayStore, UnreachableRedisIsAStoreErrorThenTheBreakerFailsFast) {
  RedisOptions options;
  options.host = "127.0.0.1";
  options.port = unused_port();
  options.connect_timeout_ms = 300;
  options.command_timeout_ms = 300;
  options.breaker_open_ms = 400;
  RedisReplayStore store(options);
  auto started = Clock::now();
  const auto first = store.reserve("hg:rp:{t1}:x", "req-1", 5000);
  EXPECT_EQ(first.kind, Kind::kStoreError);
  EXPECT_TRUE(first.error.starts_with("redis connect: ")) << first.error;
  started = Clock::now();
  const auto second = store.reserve("hg:rp:{t1}:x", "req-1", 5000);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count(),
            50);
  EXPECT_EQ(second.error, "redis: circuit open");
  EXPECT_FALSE(store.complete("hg:rp:{t1}:x", 1000));
  EXPECT_FALSE(store.release("hg:rp:{t1}:x", "req-1"));
  EXPECT_EQ(store.errors(), 4u);
}

TEST(RedisReplayStore, RefusesOutOfDomainArgumentsWithoutCallingRedis) {
  RedisReplayStore store(live_options());
  EXPECT_EQ(store.reserve("", "t", 1000).kind, Kind::kStoreError);
  EXPECT_EQ(store.reserve("k", "", 1000).kind, Kind::kStoreError);
  EXPECT_EQ(store.reserve("k", "t", 0).kind, Kind::kStoreError);
  EXPECT_EQ(store.reserve(std::string(513, 'k'), "t", 1000).kind, Kind::kStoreError);
  EXPECT_FALSE(store.complete("k", 0));
}

}  // namespace
}  // namespace hookguard::gateway
