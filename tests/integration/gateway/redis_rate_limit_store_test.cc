// Integration tests of gateway/redis_rate_limit_store.cc against a real Redis (deploy/local) and
// throwaway redis-server processes that the tests kill, restart and freeze.
#include "gateway/redis_rate_limit_store.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "policy/ports.h"
#include "policy/rate_window.h"
#include "tests/support/redis_servers.h"
#include "tests/support/test_env.h"

namespace hookguard::gateway {
namespace {

using policy::RateLimitQuery;
using policy::RateLimitReply;
using Kind = policy::RateLimitReply::Kind;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing::DirectRedis;
using testing::free_port;
using testing::ThrowawayRedis;

RedisOptions live_options() { return testing::live_redis_options(); }
RedisOptions local_options(int port) { return testing::local_redis_options(port); }

std::int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - since).count();
}

std::string fresh_key() { return "hg:rl:{" + testing::unique_prefix() + "}"; }

RateLimitQuery query(const std::string& key, std::int64_t limit, std::int64_t window_seconds) {
  return RateLimitQuery{key, limit, window_seconds};
}

// A loopback listener that never accepts, with its accept queue filled: the kernel drops the
// SYNs of any further connect, which then hangs like a connect to a blackholed host.
class BlackholeListener {
 public:
  BlackholeListener() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listener_, 0) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    for (int i = 0; i < 4; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      // Non-blocking: EINPROGRESS is the expected answer.
      (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
      fillers_.push_back(fd);
    }
    std::this_thread::sleep_for(milliseconds(50));
    port_ = ntohs(addr.sin_port);
  }
  ~BlackholeListener() {
    for (const int fd : fillers_) ::close(fd);
    ::close(listener_);
  }
  BlackholeListener(const BlackholeListener&) = delete;
  BlackholeListener& operator=(const BlackholeListener&) = delete;

  int port() const { return port_; }

 private:
  int listener_ = -1;
  std::vector<int> fillers_;
  int port_ = -1;
};

// A long-lived thread that runs tasks one by one, like a Pistache reactor thread that keeps its
// own Redis context between requests.
class WorkerThread {
 public:
  WorkerThread() : thread_([this] { loop(); }) {}
  ~WorkerThread() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  template <class F>
  auto run(F f) {
    auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
    auto result = task->get_future();
    {
      std::lock_guard lock(mu_);
      tasks_.push([task] { (*task)(); });
    }
    cv_.notify_one();
    return result.get();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return done_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::queue<std::function<void()>> tasks_;
  bool done_ = false;
  std::thread thread_;
};

std::string counter_key(const std::string& key, std::int64_t window_start_ms) {
  return key + ":" + std::to_string(window_start_ms);
}

TEST(RedisRateLimitStore, AllowsExactlyLimitHitsThenLimitsWithRetryAfter) {
  RedisRateLimitStore store(live_options());
  const auto q = query(fresh_key(), 5, 60);
  for (int i = 0; i < 5; ++i) {
    const RateLimitReply reply = store.hit(q);
    ASSERT_EQ(reply.kind, Kind::kAllowed) << "hit " << i << ": " << reply.error;
    EXPECT_EQ(reply.limit, 5);
    EXPECT_GE(reply.reset_seconds, 1);
    EXPECT_LE(reply.reset_seconds, 60);
    EXPECT_EQ(reply.retry_after_seconds, 0);
  }
  for (int i = 0; i < 3; ++i) {
    const RateLimitReply reply = store.hit(q);
    ASSERT_EQ(reply.kind, Kind::kLimited) << reply.error;
    EXPECT_EQ(reply.remaining, 0);
    EXPECT_GE(reply.retry_after_seconds, 1);
    EXPECT_LE(reply.retry_after_seconds, 2 * 60);
    EXPECT_GE(reply.reset_seconds, 1);
  }
  EXPECT_EQ(store.errors(), 0u);
}

TEST(RedisRateLimitStore, RemainingCountsDownToZero) {
  RedisRateLimitStore store(live_options());
  const auto q = query(fresh_key(), 4, 3600);
  for (std::int64_t expected = 3; expected >= 0; --expected) {
    const RateLimitReply reply = store.hit(q);
    ASSERT_EQ(reply.kind, Kind::kAllowed) << reply.error;
    EXPECT_EQ(reply.remaining, expected);
  }
  const RateLimitReply limited = store.hit(q);
  EXPECT_EQ(limited.kind, Kind::kLimited);
  EXPECT_EQ(limited.remaining, 0);
}

// Verifies that every counter key the script creates expires within two windows, so idle
// triggers and source IPs leave nothing behind in Redis.
TEST(RedisRateLimitStore, CounterKeysExpireWithinTwoWindows) {
  RedisRateLimitStore store(live_options());
  const std::string key = fresh_key();
  const std::int64_t window_seconds = 30;
  RedisHitTrace trace;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(store.hit(query(key, 10, window_seconds), &trace).kind, Kind::kAllowed);
  }
  DirectRedis redis;
  ASSERT_TRUE(redis.ok());
  const std::string keys = redis.run({"KEYS", key + ":*"});
  ASSERT_FALSE(keys.empty());
  std::size_t begin = 0;
  while (begin <= keys.size()) {
    const std::size_t end = std::min(keys.find('\n', begin), keys.size());
    const std::string name = keys.substr(begin, end - begin);
    const std::int64_t pttl = std::stoll(redis.run({"PTTL", name}));
    EXPECT_GT(pttl, 0) << name;
    EXPECT_LE(pttl, 2 * window_seconds * 1000) << name;
    begin = end + 1;
  }
  const std::string current =
      counter_key(key, policy::window_start_ms(trace.now_ms, window_seconds * 1000));
  EXPECT_EQ(redis.run({"GET", current}), "3");
}

// Verifies the NOSCRIPT fallback: after SCRIPT FLUSH (as after a Redis restart or failover) the
// next EVALSHA fails and EVAL runs and re-caches the script, with no store error.
TEST(RedisRateLimitStore, KeepsCountingAfterScriptFlush) {
  RedisRateLimitStore store(live_options());
  DirectRedis redis;
  ASSERT_TRUE(redis.ok());
  const auto q = query(fresh_key(), 10, 3600);
  for (std::int64_t expected = 9; expected >= 6; --expected) {
    ASSERT_EQ(redis.run({"SCRIPT", "FLUSH"}), "OK");
    const RateLimitReply reply = store.hit(q);
    ASSERT_EQ(reply.kind, Kind::kAllowed) << reply.error;
    EXPECT_EQ(reply.remaining, expected);
    // The second call in a row goes through the re-cached script.
    ASSERT_EQ(store.hit(q).remaining, --expected);
  }
  EXPECT_EQ(store.errors(), 0u);
}

// Verifies that two gateway instances (two stores, two connections) share one limit.
TEST(RedisRateLimitStore, TwoInstancesShareOneLimit) {
  RedisRateLimitStore first(live_options());
  RedisRateLimitStore second(live_options());
  const auto q = query(fresh_key(), 6, 3600);
  int allowed = 0;
  for (int i = 0; i < 12; ++i) {
    RedisRateLimitStore& store = i % 2 == 0 ? first : second;
    const RateLimitReply reply = store.hit(q);
    ASSERT_NE(reply.kind, Kind::kStoreError) << reply.error;
    if (reply.kind == Kind::kAllowed) {
      ++allowed;
      EXPECT_EQ(reply.remaining, 6 - allowed);
    }
  }
  EXPECT_EQ(allowed, 6);
}

// Verifies atomicity: 16 threads (one store, one context each) racing on one key never let more
// than the limit through, nor fewer.
TEST(RedisRateLimitStore, SixteenThreadsAllowExactlyTheLimit) {
  RedisRateLimitStore store(live_options());
  constexpr int kThreads = 16;
  constexpr int kLimit = 80;
  constexpr int kHitsPerThread = 2 * kLimit / kThreads;
  const auto q = query(fresh_key(), kLimit, 3600);
  std::atomic<int> allowed{0};
  std::atomic<int> limited{0};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      for (int i = 0; i < kHitsPerThread; ++i) {
        const RateLimitReply reply = store.hit(q);
        if (reply.kind == Kind::kAllowed) allowed.fetch_add(1);
        if (reply.kind == Kind::kLimited && reply.retry_after_seconds >= 1) limited.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(allowed.load(), kLimit);
  EXPECT_EQ(limited.load(), kLimit);
  EXPECT_EQ(store.errors(), 0u);
}

TEST(RedisRateLimitStore, WrongPortFailsWithinConnectTimeoutThenBreakerFailsFast) {
  const int port = free_port();
  ASSERT_GT(port, 0);
  RedisRateLimitStore store(local_options(port));
  const auto q = query(fresh_key(), 5, 60);

  auto started = Clock::now();
  const RateLimitReply first = store.hit(q);
  EXPECT_LT(elapsed_ms(started), 300 + 200);
  EXPECT_EQ(first.kind, Kind::kStoreError);
  EXPECT_TRUE(first.error.starts_with("redis connect: ")) << first.error;
  EXPECT_EQ(first.limit, 5);
  EXPECT_EQ(store.errors(), 1u);

  started = Clock::now();
  const RateLimitReply second = store.hit(q);
  EXPECT_LT(elapsed_ms(started), 50);
  EXPECT_EQ(second.kind, Kind::kStoreError);
  EXPECT_EQ(second.error, "redis: circuit open");
  EXPECT_EQ(store.errors(), 2u);
  EXPECT_FALSE(store.ping());
}

// Verifies the connect timeout against a peer that never completes the handshake: a listener
// whose accept queue is full, so the kernel drops further SYNs (as a firewall or dead host would).
TEST(RedisRateLimitStore, UnansweredConnectFailsWithinConnectTimeout) {
  BlackholeListener blackhole;
  ASSERT_GT(blackhole.port(), 0);
  RedisOptions options = local_options(blackhole.port());
  options.connect_timeout_ms = 200;
  RedisRateLimitStore store(options);
  auto started = Clock::now();
  const RateLimitReply reply = store.hit(query(fresh_key(), 5, 60));
  EXPECT_LT(elapsed_ms(started), 200 + 250);
  EXPECT_EQ(reply.kind, Kind::kStoreError);
  EXPECT_TRUE(reply.error.starts_with("redis connect: ")) << reply.error;

  started = Clock::now();
  EXPECT_EQ(store.hit(query(fresh_key(), 5, 60)).error, "redis: circuit open");
  EXPECT_LT(elapsed_ms(started), 50);
  EXPECT_EQ(store.errors(), 2u);
}

// Verifies recovery: a Redis that dies fails fast while the breaker is open, and is used again
// after the breaker period — also by a thread whose context predates the restart.
TEST(RedisRateLimitStore, UsesARestartedRedisAfterTheBreakerPeriod) {
  ThrowawayRedis server;
  ASSERT_TRUE(server.start());
  RedisRateLimitStore store(local_options(server.port()));
  const auto q = query(fresh_key(), 100, 60);
  WorkerThread reactor;
  ASSERT_EQ(store.hit(q).kind, Kind::kAllowed);
  ASSERT_EQ(reactor.run([&] { return store.hit(q).kind; }), Kind::kAllowed);

  server.stop();
  const RateLimitReply down = store.hit(q);
  EXPECT_EQ(down.kind, Kind::kStoreError);
  EXPECT_EQ(store.errors(), 1u);

  ASSERT_TRUE(server.start());
  auto started = Clock::now();
  EXPECT_EQ(store.hit(q).error, "redis: circuit open");
  EXPECT_EQ(reactor.run([&] { return store.hit(q).error; }), "redis: circuit open");
  EXPECT_LT(elapsed_ms(started), 50);
  EXPECT_EQ(store.errors(), 3u);

  std::this_thread::sleep_for(milliseconds(400 + 50));
  const RateLimitReply back = store.hit(q);
  EXPECT_EQ(back.kind, Kind::kAllowed) << back.error;
  // The worker's context was connected to the killed server; it must reconnect, not fail.
  const RateLimitReply worker_back = reactor.run([&] { return store.hit(q); });
  EXPECT_EQ(worker_back.kind, Kind::kAllowed) << worker_back.error;
  EXPECT_EQ(store.errors(), 3u);
  EXPECT_TRUE(store.ping());
}

// Verifies that a hung Redis (SIGSTOP: the kernel still accepts connections, nobody answers)
// costs at most the command timeout, and that the store recovers once it runs again.
TEST(RedisRateLimitStore, HungRedisTimesOutAndRecoversAfterItResumes) {
  ThrowawayRedis server;
  ASSERT_TRUE(server.start());
  RedisOptions options = local_options(server.port());
  options.command_timeout_ms = 200;
  options.breaker_open_ms = 300;
  RedisRateLimitStore store(options);
  const auto q = query(fresh_key(), 100, 60);
  ASSERT_EQ(store.hit(q).kind, Kind::kAllowed);

  server.freeze();
  auto started = Clock::now();
  const RateLimitReply hung = store.hit(q);
  EXPECT_EQ(hung.kind, Kind::kStoreError);
  EXPECT_TRUE(hung.error.starts_with("redis io: ")) << hung.error;
  EXPECT_LT(elapsed_ms(started), 200 + 250);

  // After the breaker period one probe is made: a new connection, which a frozen server's kernel
  // still accepts, then a command that times out.
  std::this_thread::sleep_for(milliseconds(300 + 20));
  started = Clock::now();
  EXPECT_EQ(store.hit(q).kind, Kind::kStoreError);
  EXPECT_LT(elapsed_ms(started), 300 + 200 + 250);
  EXPECT_EQ(store.errors(), 2u);

  server.thaw();
  std::this_thread::sleep_for(milliseconds(300 + 20));
  const RateLimitReply back = store.hit(q);
  EXPECT_EQ(back.kind, Kind::kAllowed) << back.error;
  EXPECT_EQ(store.errors(), 2u);
}

// Waits (at most 2 s) until the server counts `expected` clients; returns the last count seen.
int wait_for_clients(DirectRedis& redis, int expected) {
  int clients = -1;
  const auto deadline = Clock::now() + milliseconds(2000);
  do {
    const std::string info = redis.run({"INFO", "clients"});
    const auto at = info.find("connected_clients:");
    if (at != std::string::npos) clients = std::stoi(info.substr(at + 18));
    if (clients == expected) break;
    std::this_thread::sleep_for(milliseconds(10));
  } while (Clock::now() < deadline);
  return clients;
}

// Verifies that per-thread connections do not leak: a thread's exit closes its own, the store's
// destruction closes those of threads that are still alive.
TEST(RedisRateLimitStore, ClosesConnectionsWhenThreadsExitAndWhenTheStoreGoes) {
  ThrowawayRedis server;
  ASSERT_TRUE(server.start());
  DirectRedis redis("127.0.0.1", server.port());
  ASSERT_TRUE(redis.ok());
  const auto q = query(fresh_key(), 100, 60);
  auto store = std::make_unique<RedisRateLimitStore>(local_options(server.port()));
  WorkerThread reactor;
  ASSERT_EQ(reactor.run([&] { return store->hit(q).kind; }), Kind::kAllowed);
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { store->hit(q); });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wait_for_clients(redis, 2), 2);  // this test's own connection and the reactor's

  store.reset();
  EXPECT_EQ(wait_for_clients(redis, 1), 1);
  // The reactor thread outlives the store; a new store there gets a fresh connection.
  store = std::make_unique<RedisRateLimitStore>(local_options(server.port()));
  EXPECT_EQ(reactor.run([&] { return store->hit(q).remaining; }), 100 - 6);
}

TEST(RedisRateLimitStore, AuthenticatesWhenAPasswordIsSet) {
  ThrowawayRedis server("s3cret pass");
  ASSERT_TRUE(server.start());
  const auto q = query(fresh_key(), 5, 60);

  RedisOptions options = local_options(server.port());
  options.password = "s3cret pass";
  RedisRateLimitStore with_password(options);
  const RateLimitReply ok = with_password.hit(q);
  EXPECT_EQ(ok.kind, Kind::kAllowed) << ok.error;
  EXPECT_EQ(ok.remaining, 4);

  options.password = "wrong";
  RedisRateLimitStore wrong_password(options);
  const RateLimitReply wrong = wrong_password.hit(q);
  EXPECT_EQ(wrong.kind, Kind::kStoreError);
  EXPECT_TRUE(wrong.error.starts_with("redis auth: WRONGPASS")) << wrong.error;

  RedisRateLimitStore no_password(local_options(server.port()));
  const RateLimitReply missing = no_password.hit(q);
  EXPECT_EQ(missing.kind, Kind::kStoreError);
  EXPECT_TRUE(missing.error.starts_with("redis: NOAUTH")) << missing.error;
  EXPECT_EQ(no_password.errors(), 1u);
}

// Verifies that an error reply from inside the script (here WRONGTYPE on the counter key) is a
// store error, not a crash or a verdict.
TEST(RedisRateLimitStore, ScriptErrorIsAStoreError) {
  RedisRateLimitStore store(live_options());
  DirectRedis redis;
  ASSERT_TRUE(redis.ok());
  const std::string key = fresh_key();
  const std::int64_t window_ms = std::int64_t{3600} * 1000;
  const std::string current = counter_key(key, policy::window_start_ms(redis.time_ms(), window_ms));
  ASSERT_EQ(redis.run({"HSET", current, "f", "v"}), "1");
  ASSERT_EQ(redis.run({"PEXPIRE", current, "60000"}), "1");
  const RateLimitReply reply = store.hit(query(key, 5, 3600));
  EXPECT_EQ(reply.kind, Kind::kStoreError);
  EXPECT_TRUE(reply.error.starts_with("redis: ")) << reply.error;
  EXPECT_NE(reply.error.find("WRONGTYPE"), std::string::npos) << reply.error;
  EXPECT_EQ(store.errors(), 1u);
}

TEST(RedisRateLimitStore, RejectsAQueryOutsideTheModelsDomainWithoutCallingRedis) {
  RedisRateLimitStore store(local_options(free_port()));
  EXPECT_EQ(store.hit(query(fresh_key(), 0, 60)).error, "invalid rate-limit query");
  EXPECT_EQ(store.hit(query(fresh_key(), 5, 0)).error, "invalid rate-limit query");
  EXPECT_EQ(store.hit(query(fresh_key(), std::int64_t{1} << 45, 3600)).error,
            "invalid rate-limit query");
  EXPECT_EQ(store.errors(), 3u);
}

TEST(RedisRateLimitStore, PingAnswersForALiveRedis) {
  RedisRateLimitStore store(live_options());
  EXPECT_TRUE(store.ping());
  EXPECT_TRUE(store.ping());
}

void expect_same_verdict(const RateLimitReply& reply, const policy::WindowVerdict& model,
                         const std::string& context) {
  ASSERT_NE(reply.kind, Kind::kStoreError) << context << ": " << reply.error;
  EXPECT_EQ(reply.kind == Kind::kAllowed, model.allowed) << context;
  EXPECT_EQ(reply.remaining, model.remaining) << context;
  EXPECT_EQ(reply.reset_seconds, model.reset_seconds) << context;
  EXPECT_EQ(reply.retry_after_seconds, model.retry_after_seconds) << context;
}

// Sets the counters of `key`'s current and previous windows (by Redis time); returns the current
// window's start.
std::int64_t seed_counts(DirectRedis& redis, const std::string& key, std::int64_t window_ms,
                         std::int64_t previous, std::int64_t current) {
  const std::int64_t start = policy::window_start_ms(redis.time_ms(), window_ms);
  const std::string ttl = std::to_string(2 * window_ms);
  redis.run({"SET", counter_key(key, start), std::to_string(current), "PX", ttl});
  redis.run({"SET", counter_key(key, start - window_ms), std::to_string(previous), "PX", ttl});
  return start;
}

// Verifies that the Lua script and policy::evaluate_window (the reference model) give the same
// verdict for the same inputs. The Redis clock cannot be set, so the counts are seeded and the
// script reports the time and counts it used, which are then fed to the model.
TEST(RedisRateLimitStore, ScriptMatchesTheReferenceModelForSeededCounts) {
  RedisRateLimitStore store(live_options());
  DirectRedis redis;
  ASSERT_TRUE(redis.ok());
  const std::string base = fresh_key();
  int case_index = 0;
  int seeded_as_read = 0;
  for (const std::int64_t limit : {1, 3, 10, 1000}) {
    for (const std::int64_t window_seconds : {1, 7, 60}) {
      const std::int64_t window_ms = window_seconds * 1000;
      for (const std::int64_t previous :
           {std::int64_t{0}, std::int64_t{1}, limit / 2, limit - 1, limit, 2 * limit}) {
        for (const std::int64_t current :
             {std::int64_t{0}, std::int64_t{1}, limit - 1, limit, limit + 2}) {
          const std::string key = base + ":" + std::to_string(case_index++);
          const std::int64_t start = seed_counts(redis, key, window_ms, previous, current);
          RedisHitTrace trace;
          const RateLimitReply reply = store.hit(query(key, limit, window_seconds), &trace);
          if (policy::window_start_ms(trace.now_ms, window_ms) == start) {
            ++seeded_as_read;
            EXPECT_EQ(trace.counts.current, current);
            EXPECT_EQ(trace.counts.previous, previous);
          }
          const auto model = policy::evaluate_window(limit, window_ms, trace.now_ms, trace.counts);
          expect_same_verdict(
              reply, model,
              "limit=" + std::to_string(limit) + " window=" + std::to_string(window_seconds) +
                  "s prev=" + std::to_string(previous) + " cur=" + std::to_string(current) +
                  " now=" + std::to_string(trace.now_ms));
        }
      }
    }
  }
  // Most cases must have read what was seeded (only a window boundary in between may differ).
  EXPECT_GT(seeded_as_read, case_index / 2);
}

// Verifies that one script call deciding n hits (what the pipelined path sends for the hits of one
// key that arrive together) gives each of them the verdict the reference model gives n hits one
// after another at the same time, with the seeded counts as the start.
TEST(RedisRateLimitStore, ManyHitsInOneCallMatchTheReferenceModelHitAfterHit) {
  RedisRateLimitStore store(live_options());
  DirectRedis redis;
  ASSERT_TRUE(redis.ok());
  const std::string base = fresh_key();
  int case_index = 0;
  for (const std::int64_t limit : {1, 3, 10}) {
    for (const std::int64_t window_seconds : {1, 60}) {
      const std::int64_t window_ms = window_seconds * 1000;
      for (const std::int64_t previous : {std::int64_t{0}, limit / 2, limit, 2 * limit}) {
        for (const std::int64_t current : {std::int64_t{0}, limit - 1, limit + 1}) {
          for (const std::size_t hits : {std::size_t{1}, std::size_t{2}, std::size_t(limit + 3)}) {
            const std::string key = base + ":" + std::to_string(case_index++);
            seed_counts(redis, key, window_ms, previous, current);
            RedisHitTrace trace;
            const auto replies = store.hit_many(query(key, limit, window_seconds), hits, &trace);
            ASSERT_EQ(replies.size(), hits);
            policy::WindowCounts counts = trace.counts;
            std::int64_t allowed = 0;
            for (std::size_t i = 0; i < hits; ++i) {
              const auto model = policy::evaluate_window(limit, window_ms, trace.now_ms, counts);
              if (model.allowed) {
                ++counts.current;
                ++allowed;
              }
              expect_same_verdict(
                  replies[i], model,
                  "limit=" + std::to_string(limit) + " window=" + std::to_string(window_seconds) +
                      "s prev=" + std::to_string(previous) + " cur=" + std::to_string(current) +
                      " hit " + std::to_string(i + 1) + "/" + std::to_string(hits) +
                      " now=" + std::to_string(trace.now_ms));
            }
            // The counter went up by the allowed hits only.
            const std::int64_t read_start = policy::window_start_ms(trace.now_ms, window_ms);
            const std::string counter = redis.run({"GET", counter_key(key, read_start)});
            EXPECT_EQ(counter == "(nil)" ? 0 : std::stoll(counter), trace.counts.current + allowed)
                << key;
          }
        }
      }
    }
  }
  EXPECT_TRUE(store.hit_many(query(base + ":none", 5, 60), 0).empty());
  EXPECT_EQ(store.errors(), 0u);
}

// Verifies, over a run that crosses several windows, that the counts the script reads are those
// of the hits it allowed (keys roll over correctly) and that every verdict, hence the number
// allowed per window, equals the model's.
TEST(RedisRateLimitStore, HitSequenceAcrossWindowsMatchesTheReferenceModel) {
  RedisRateLimitStore store(live_options());
  const auto q = query(fresh_key(), 4, 1);
  const std::int64_t window_ms = 1000;
  std::vector<std::int64_t> allowed_at;
  std::int64_t allowed_total = 0;
  const auto until = Clock::now() + milliseconds(2600);
  while (Clock::now() < until) {
    RedisHitTrace trace;
    const RateLimitReply reply = store.hit(q, &trace);
    const std::int64_t start = policy::window_start_ms(trace.now_ms, window_ms);
    policy::WindowCounts expected;
    for (const std::int64_t t : allowed_at) {
      if (t >= start && t < start + window_ms) ++expected.current;
      if (t >= start - window_ms && t < start) ++expected.previous;
    }
    ASSERT_EQ(trace.counts.current, expected.current) << "now=" << trace.now_ms;
    ASSERT_EQ(trace.counts.previous, expected.previous) << "now=" << trace.now_ms;
    expect_same_verdict(reply, policy::evaluate_window(4, window_ms, trace.now_ms, expected),
                        "now=" + std::to_string(trace.now_ms));
    if (reply.kind == Kind::kAllowed) {
      allowed_at.push_back(trace.now_ms);
      ++allowed_total;
    }
    std::this_thread::sleep_for(milliseconds(23));
  }
  // Over ~2.6 windows of a 4-per-window limit: at least the first window's 4, at most 4 per
  // window touched.
  EXPECT_GE(allowed_total, 4);
  EXPECT_LE(allowed_total, 4 * 4);
  EXPECT_EQ(store.errors(), 0u);
}

}  // namespace
}  // namespace hookguard::gateway
