// Integration tests of gateway/redis_pipeline.cc and of the pipelined store methods built on it
// (RedisRateLimitStore::hit_async, RedisReplayStore::reserve_async), against the Redis of
// deploy/local and throwaway redis-server processes that the tests kill and freeze.
#include "gateway/redis_pipeline.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gateway/redis_rate_limit_store.h"
#include "gateway/redis_replay_store.h"
#include "policy/ports.h"
#include "policy/rate_window.h"
#include "tests/support/redis_servers.h"
#include "tests/support/test_env.h"

namespace hookguard::gateway {
namespace {

using policy::RateLimitQuery;
using policy::RateLimitReply;
using policy::ReplayReply;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing::DirectRedis;
using testing::free_port;
using testing::ThrowawayRedis;

RedisOptions live_options() { return testing::live_redis_options(); }
RedisOptions local_options(int port) { return testing::local_redis_options(port); }
using RateKind = RateLimitReply::Kind;
using ReplayKind = ReplayReply::Kind;

// Every wait of these tests ends after this, so a broken pipeline fails instead of hanging.
constexpr milliseconds kBound{10'000};

std::int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - since).count();
}

std::string fresh_key() { return "hg:rl:{" + testing::unique_prefix() + "}"; }

// Answers collected from any thread; wait_for() is bounded.
template <class T>
class Answers {
 public:
  void add(T value) {
    std::lock_guard lock(mu_);
    values_.push_back(std::move(value));
    cv_.notify_all();
  }
  bool wait_for(std::size_t count, milliseconds timeout = kBound) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return values_.size() >= count; });
  }
  std::vector<T> values() {
    std::lock_guard lock(mu_);
    return values_;
  }
  std::size_t size() {
    std::lock_guard lock(mu_);
    return values_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<T> values_;
};

// Holds the pipeline thread inside a callback until open(), so that everything queued meanwhile
// goes out as the next batch. The callback waits kBound at most; the destructor opens.
class Gate {
 public:
  Gate() : state_(std::make_shared<State>()) {
    state_->opened_future = state_->opened.get_future();
  }
  ~Gate() { open(); }
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  /// A callback (of any answer type) that holds the thread.
  auto holder() {
    return [state = state_](auto&&...) {
      state->entered.set_value();
      state->opened_future.wait_for(kBound);
    };
  }
  /// Whether the holder is running (waits kBound at most).
  bool entered() { return entered_future_.wait_for(kBound) == std::future_status::ready; }
  void open() {
    if (!state_->is_open.exchange(true)) state_->opened.set_value();
  }

 private:
  struct State {
    std::promise<void> entered;
    std::promise<void> opened;
    std::shared_future<void> opened_future;
    std::atomic<bool> is_open{false};
  };
  std::shared_ptr<State> state_;
  std::future<void> entered_future_ = state_->entered.get_future();
};

// A pipelined reply as text: "int:<n>", "error:<reply text>" or "failed:<message>".
std::string describe(const Result<RedisReplyPtr>& reply) {
  if (!reply) return "failed:" + reply.error().message;
  const redisReply& r = **reply;
  if (r.type == REDIS_REPLY_INTEGER) return "int:" + std::to_string(r.integer);
  if (r.type == REDIS_REPLY_ERROR) return "error:" + std::string(r.str, r.len);
  return "type:" + std::to_string(r.type);
}

std::size_t thread_count() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    ++count;
  }
  return count;
}

const RedisScript& incr_script() {
  static const RedisScript script("return redis.call('INCR', KEYS[1])");
  return script;
}

// ---------------------------------------------------------------------------------------------
// RedisPipeline on its own.

TEST(RedisPipeline, StartsItsThreadOnTheFirstCommandOnly) {
  RedisEndpoint endpoint(live_options());
  const std::size_t before = thread_count();
  RedisPipeline pipeline(endpoint);
  EXPECT_EQ(thread_count(), before);
  std::promise<std::string> answered;
  pipeline.eval(incr_script(), fresh_key(), {},
                [&](Result<RedisReplyPtr> reply) { answered.set_value(describe(reply)); });
  auto future = answered.get_future();
  ASSERT_EQ(future.wait_for(kBound), std::future_status::ready);
  EXPECT_EQ(future.get(), "int:1");
  EXPECT_EQ(thread_count(), before + 1);
  pipeline.stop();
  // A joined thread can still be listed for a moment while the kernel reaps it.
  const auto deadline = Clock::now() + milliseconds(1000);
  while (thread_count() != before && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(thread_count(), before);
}

// Verifies that commands queued while the thread is busy leave together (1000 commands, then
// two rounds of at most kMaxBatch) and that each caller gets the reply to its own command.
TEST(RedisPipeline, CommandsQueuedWhileBusyGoOutInFewBatchesInOrder) {
  RedisEndpoint endpoint(live_options());
  RedisPipeline pipeline(endpoint);
  Gate gate;
  const std::string key = fresh_key();
  pipeline.eval(incr_script(), key, {}, gate.holder());
  ASSERT_TRUE(gate.entered());

  constexpr int kCommands = 1000;
  Answers<std::pair<int, std::string>> answers;
  for (int i = 0; i < kCommands; ++i) {
    pipeline.eval(incr_script(), key, {}, [&answers, i](Result<RedisReplyPtr> reply) {
      answers.add({i, describe(reply)});
    });
  }
  gate.open();
  ASSERT_TRUE(answers.wait_for(kCommands));
  const auto values = answers.values();
  for (int i = 0; i < kCommands; ++i) {
    // The holder's INCR came first, so command i sees i + 2.
    ASSERT_EQ(values[i].first, i);
    ASSERT_EQ(values[i].second, "int:" + std::to_string(i + 2)) << "command " << i;
  }
  EXPECT_EQ(pipeline.batches(),
            1u + (kCommands + RedisPipeline::kMaxBatch - 1) / RedisPipeline::kMaxBatch);
}

// Verifies that a command's Prepare runs on the pipeline thread once the command has left the
// queue and before it is written (what it sets is what Redis runs), and never for a command
// refused at eval().
TEST(RedisPipeline, PrepareRunsOnThePipelineThreadBeforeTheCommandIsWritten) {
  static const RedisScript incrby("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  RedisEndpoint endpoint(live_options());
  RedisPipeline pipeline(endpoint, 2);
  Gate gate;
  const std::string key = fresh_key();
  pipeline.eval(incr_script(), key, {}, gate.holder());  // key = 1
  ASSERT_TRUE(gate.entered());

  std::promise<std::string> answered;
  std::thread::id prepared_on;
  pipeline.eval(
      incrby, key, {"1"}, [&](Result<RedisReplyPtr> reply) { answered.set_value(describe(reply)); },
      [&](std::vector<std::string>& args) {
        prepared_on = std::this_thread::get_id();
        args[0] = "41";
      });
  pipeline.eval(incr_script(), fresh_key(), {}, [](Result<RedisReplyPtr>) {});  // queue full now
  std::string refused;
  int refused_prepares = 0;
  pipeline.eval(
      incrby, key, {"1"}, [&](Result<RedisReplyPtr> reply) { refused = describe(reply); },
      [&](std::vector<std::string>&) { ++refused_prepares; });
  EXPECT_EQ(refused, "failed:redis: pipeline queue full");

  gate.open();
  auto future = answered.get_future();
  ASSERT_EQ(future.wait_for(kBound), std::future_status::ready);
  EXPECT_EQ(future.get(), "int:42");
  EXPECT_NE(prepared_on, std::thread::id());
  EXPECT_NE(prepared_on, std::this_thread::get_id());
  pipeline.stop();
  EXPECT_EQ(refused_prepares, 0);
}

TEST(RedisPipeline, AFullQueueIsAnInlineError) {
  RedisEndpoint endpoint(live_options());
  RedisPipeline pipeline(endpoint, 4);
  Gate gate;
  const std::string key = fresh_key();
  pipeline.eval(incr_script(), key, {}, gate.holder());
  ASSERT_TRUE(gate.entered());
  Answers<std::string> queued;
  for (int i = 0; i < 4; ++i) {
    pipeline.eval(incr_script(), key, {},
                  [&](Result<RedisReplyPtr> reply) { queued.add(describe(reply)); });
  }
  std::string refused;
  std::thread::id refused_on;
  pipeline.eval(incr_script(), key, {}, [&](Result<RedisReplyPtr> reply) {
    refused = describe(reply);
    refused_on = std::this_thread::get_id();
  });
  EXPECT_EQ(refused, "failed:redis: pipeline queue full");
  EXPECT_EQ(refused_on, std::this_thread::get_id());
  EXPECT_EQ(queued.size(), 0u);
  gate.open();
  ASSERT_TRUE(queued.wait_for(4));
  EXPECT_EQ(queued.values(), (std::vector<std::string>{"int:2", "int:3", "int:4", "int:5"}));
}

// Verifies that stop() answers every queued command exactly once (by sending it), then refuses
// new ones inline, and that a second stop() is harmless.
TEST(RedisPipeline, StopAnswersEveryQueuedCommandExactlyOnce) {
  RedisEndpoint endpoint(live_options());
  RedisPipeline pipeline(endpoint);
  const std::string key = fresh_key();
  Gate gate;
  pipeline.eval(incr_script(), key, {}, gate.holder());
  ASSERT_TRUE(gate.entered());
  constexpr int kCommands = 300;
  std::vector<std::atomic<int>> calls(kCommands);
  Answers<std::string> answers;
  for (int i = 0; i < kCommands; ++i) {
    pipeline.eval(incr_script(), key, {}, [&, i](Result<RedisReplyPtr> reply) {
      calls[i].fetch_add(1);
      answers.add(describe(reply));
    });
  }
  auto stopped = std::async(std::launch::async, [&] { pipeline.stop(); });
  gate.open();
  ASSERT_EQ(stopped.wait_for(kBound), std::future_status::ready);
  for (int i = 0; i < kCommands; ++i) EXPECT_EQ(calls[i].load(), 1) << "command " << i;
  const auto values = answers.values();
  ASSERT_EQ(values.size(), static_cast<std::size_t>(kCommands));
  EXPECT_EQ(values.back(), "int:" + std::to_string(kCommands + 1));

  std::string after;
  pipeline.eval(incr_script(), key, {},
                [&](Result<RedisReplyPtr> reply) { after = describe(reply); });
  EXPECT_EQ(after, "failed:redis: pipeline stopped");
  pipeline.stop();
  EXPECT_EQ(DirectRedis().run({"GET", key}), std::to_string(kCommands + 1));
}

// Verifies that a callback may stop the pipeline (it cannot join its own thread): what was
// queued before is still answered, what comes after is refused, and destruction joins.
TEST(RedisPipeline, StopFromACallbackDoesNotDeadlock) {
  RedisEndpoint endpoint(live_options());
  auto pipeline = std::make_unique<RedisPipeline>(endpoint);
  const std::string key = fresh_key();
  Gate gate;
  auto hold = gate.holder();
  std::promise<std::string> refused;
  pipeline->eval(incr_script(), key, {}, [&](Result<RedisReplyPtr>) {
    hold();
    pipeline->stop();
    pipeline->eval(incr_script(), key, {},
                   [&](Result<RedisReplyPtr> reply) { refused.set_value(describe(reply)); });
  });
  ASSERT_TRUE(gate.entered());
  std::promise<std::string> queued_before;
  pipeline->eval(incr_script(), key, {},
                 [&](Result<RedisReplyPtr> reply) { queued_before.set_value(describe(reply)); });
  gate.open();
  auto refused_future = refused.get_future();
  auto before_future = queued_before.get_future();
  ASSERT_EQ(refused_future.wait_for(kBound), std::future_status::ready);
  ASSERT_EQ(before_future.wait_for(kBound), std::future_status::ready);
  EXPECT_EQ(refused_future.get(), "failed:redis: pipeline stopped");
  EXPECT_EQ(before_future.get(), "int:2");
  auto destroyed = std::async(std::launch::async, [&] { pipeline.reset(); });
  EXPECT_EQ(destroyed.wait_for(kBound), std::future_status::ready);
}

TEST(RedisPipeline, AThrowingCallbackDoesNotStopTheOthers) {
  RedisEndpoint endpoint(live_options());
  RedisPipeline pipeline(endpoint);
  const std::string key = fresh_key();
  Gate gate;
  pipeline.eval(incr_script(), key, {}, gate.holder());
  ASSERT_TRUE(gate.entered());
  Answers<std::string> answers;
  for (int i = 0; i < 10; ++i) {
    pipeline.eval(incr_script(), key, {}, [&, i](Result<RedisReplyPtr> reply) {
      answers.add(describe(reply));
      if (i % 2 == 0) throw std::runtime_error("callback bug");
    });
  }
  gate.open();
  ASSERT_TRUE(answers.wait_for(10));
  // The next batch is still served by the same thread.
  pipeline.eval(incr_script(), key, {},
                [&](Result<RedisReplyPtr> reply) { answers.add(describe(reply)); });
  ASSERT_TRUE(answers.wait_for(11));
  EXPECT_EQ(answers.values().back(), "int:12");
}

// Verifies that a callback can queue the next command (as the chain asks the replay store after
// the rate limiter) without deadlocking: each goes into a later batch.
TEST(RedisPipeline, ACallbackCanQueueTheNextCommand) {
  RedisEndpoint endpoint(live_options());
  RedisPipeline pipeline(endpoint);
  const std::string key = fresh_key();
  constexpr int kDepth = 50;
  std::promise<std::string> last;
  std::function<void(Result<RedisReplyPtr>)> step = [&](Result<RedisReplyPtr> reply) {
    const std::string text = describe(reply);
    if (text == "int:" + std::to_string(kDepth) || !text.starts_with("int:")) {
      last.set_value(text);
      return;
    }
    pipeline.eval(incr_script(), key, {}, step);
  };
  pipeline.eval(incr_script(), key, {}, step);
  auto future = last.get_future();
  ASSERT_EQ(future.wait_for(kBound), std::future_status::ready);
  EXPECT_EQ(future.get(), "int:" + std::to_string(kDepth));
  EXPECT_GE(pipeline.batches(), static_cast<std::uint64_t>(kDepth));
}

// Verifies that a Redis answering slowly but steadily (each reply well within the command
// timeout) cannot hold a batch for long: the batch as a whole gets command_timeout_ms, and the
// replies still missing then fail like a timeout.
TEST(RedisPipeline, ASlowButSteadyRedisCannotHoldABatchPastTheTimeout) {
  ThrowawayRedis redis;
  ASSERT_TRUE(redis.start());
  RedisOptions options = local_options(redis.port());
  options.command_timeout_ms = 200;
  RedisEndpoint endpoint(options);
  RedisPipeline pipeline(endpoint);
  // Busy for 80 ms of server time per call: Redis runs one script at a time.
  static const RedisScript slow(
      "local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] "
      "repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - start >= 80000 "
      "return 1");
  Gate gate;
  const std::string key = fresh_key();
  pipeline.eval(incr_script(), key, {}, gate.holder());
  ASSERT_TRUE(gate.entered());
  constexpr std::size_t kCommands = 8;
  Answers<std::string> answers;
  // Redis runs every command of one socket read before it writes their replies; commands
  // larger than its 16 KiB read make it answer them one by one, as a loaded server would.
  const std::string padding(20000, 'x');
  for (std::size_t i = 0; i < kCommands; ++i) {
    pipeline.eval(slow, key, {padding},
                  [&](Result<RedisReplyPtr> reply) { answers.add(describe(reply)); });
  }
  const auto start = Clock::now();
  gate.open();
  ASSERT_TRUE(answers.wait_for(kCommands));
  // Answering all of them takes 8 x 80 = 640 ms; the batch gets 200 ms (+ one reply).
  EXPECT_LT(elapsed_ms(start), 500);
  const auto values = answers.values();
  EXPECT_EQ(values.front(), "int:1");
  EXPECT_EQ(values.back(), "failed:redis io: batch not answered within the timeout");
}

// Verifies that an error reply goes to its own caller only: the rest of the batch is answered
// and the breaker stays closed.
TEST(RedisPipeline, AnErrorReplyIsAReplyForThatCommandOnly) {
  RedisEndpoint endpoint(live_options());
  RedisPipeline pipeline(endpoint);
  const RedisScript failing("return redis.error_reply('ERR refused by the script')");
  const std::string key = fresh_key();
  Gate gate;
  pipeline.eval(incr_script(), key, {}, gate.holder());
  ASSERT_TRUE(gate.entered());
  Answers<std::string> answers;
  auto add = [&](Result<RedisReplyPtr> reply) { answers.add(describe(reply)); };
  pipeline.eval(incr_script(), key, {}, add);
  pipeline.eval(failing, key, {}, add);
  pipeline.eval(incr_script(), key, {}, add);
  gate.open();
  ASSERT_TRUE(answers.wait_for(3));
  EXPECT_EQ(answers.values(),
            (std::vector<std::string>{"int:2", "error:ERR refused by the script", "int:3"}));
  EXPECT_EQ(endpoint.admit(), RedisEndpoint::Admission::kClosed);
}

// Verifies that a server which turned into a replica (a failover moved the primary elsewhere)
// does not keep the connection: the READONLY reply goes to its caller, the connection is closed
// and the breaker opens, and after the breaker's time a new connection serves again. Without
// that, the connection would answer READONLY for as long as it lives, wherever the server's
// name points now.
TEST(RedisPipeline, AReadOnlyReplicaRetiresTheConnectionAndOpensTheBreaker) {
  ThrowawayRedis server;
  ASSERT_TRUE(server.start());
  RedisEndpoint endpoint(local_options(server.port()));
  RedisPipeline pipeline(endpoint);
  DirectRedis admin("127.0.0.1", server.port());
  ASSERT_TRUE(admin.ok());
  auto connections = [&] {
    const std::string info = admin.run({"INFO", "stats"});
    const std::string tag = "total_connections_received:";
    return std::stol(info.substr(info.find(tag) + tag.size()));
  };
  auto eval_and_wait = [&] {
    Answers<std::string> answers;
    pipeline.eval(incr_script(), "hg-test:readonly", {},
                  [&](Result<RedisReplyPtr> reply) { answers.add(describe(reply)); });
    EXPECT_TRUE(answers.wait_for(1));
    return answers.size() == 1 ? answers.values()[0] : std::string("no answer");
  };

  ASSERT_EQ(eval_and_wait(), "int:1");
  const long before = connections();
  ASSERT_EQ(admin.run({"REPLICAOF", "127.0.0.1", std::to_string(free_port())}), "OK");
  EXPECT_EQ(eval_and_wait().rfind("error:READONLY", 0), 0u);
  EXPECT_EQ(endpoint.admit(), RedisEndpoint::Admission::kRefused);

  ASSERT_EQ(admin.run({"REPLICAOF", "NO", "ONE"}), "OK");
  std::string answer;
  const auto deadline = Clock::now() + kBound;
  do {
    std::this_thread::sleep_for(milliseconds(50));
    answer = eval_and_wait();
  } while (answer != "int:2" && Clock::now() < deadline);
  EXPECT_EQ(answer, "int:2");
  EXPECT_GT(connections(), before);  // a new connection, not the retired one
}

// ---------------------------------------------------------------------------------------------
// RedisRateLimitStore::hit_async.

RateLimitQuery query(const std::string& key, std::int64_t limit, std::int64_t window_seconds) {
  return RateLimitQuery{key, limit, window_seconds};
}

// Verifies atomicity through the pipeline: 8 threads racing on one key never let more than the
// limit through, nor fewer.
TEST(RedisRateLimitStorePipelined, EightThreadsAllowExactlyTheLimit) {
  RedisRateLimitStore store(live_options());
  constexpr int kThreads = 8;
  constexpr int kLimit = 100;
  constexpr int kHitsPerThread = 4 * kLimit / kThreads;
  const auto q = query(fresh_key(), kLimit, 3600);
  Answers<RateLimitReply> answers;
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      for (int i = 0; i < kHitsPerThread; ++i) {
        store.hit_async(q, [&](RateLimitReply reply) { answers.add(std::move(reply)); });
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(answers.wait_for(kThreads * kHitsPerThread));
  int allowed = 0;
  int limited = 0;
  for (const auto& reply : answers.values()) {
    if (reply.kind == RateKind::kAllowed) ++allowed;
    if (reply.kind == RateKind::kLimited && reply.retry_after_seconds >= 1) ++limited;
    EXPECT_NE(reply.kind, RateKind::kStoreError) << reply.error;
  }
  EXPECT_EQ(allowed, kLimit);
  EXPECT_EQ(limited, kThreads * kHitsPerThread - kLimit);
  EXPECT_EQ(store.errors(), 0u);
}

// Verifies that replies are not mixed up between callers: 40 keys with 40 different limits, hit
// from 4 threads interleaved; every reply must carry the remaining count of its own key.
TEST(RedisRateLimitStorePipelined, EachCallerGetsTheAnswerForItsOwnKey) {
  RedisRateLimitStore store(live_options());
  constexpr int kThreads = 4;
  constexpr int kKeysPerThread = 10;
  const std::string base = fresh_key();
  std::atomic<int> answered{0};
  std::atomic<int> wrong{0};
  std::mutex mu;
  std::string first_wrong;
  int expected_total = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    for (int k = 0; k < kKeysPerThread; ++k) expected_total += t * kKeysPerThread + k + 1 + 2;
    threads.emplace_back([&, t] {
      // Key of limit L gets L + 2 hits: L allowed (remaining L-1 .. 0), then 2 limited.
      for (int round = 0; round < kThreads * kKeysPerThread + 2; ++round) {
        for (int k = 0; k < kKeysPerThread; ++k) {
          const int limit = t * kKeysPerThread + k + 1;
          if (round >= limit + 2) continue;
          const auto q = query(base + ":" + std::to_string(limit), limit, 3600);
          store.hit_async(q, [&, limit, round](RateLimitReply reply) {
            const bool ok =
                round < limit
                    ? reply.kind == RateKind::kAllowed && reply.remaining == limit - 1 - round
                    : reply.kind == RateKind::kLimited && reply.remaining == 0;
            if (!ok && wrong.fetch_add(1) == 0) {
              std::lock_guard lock(mu);
              first_wrong = "limit " + std::to_string(limit) + " hit " + std::to_string(round) +
                            ": remaining " + std::to_string(reply.remaining) + " " + reply.error;
            }
            answered.fetch_add(1);
          });
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto deadline = Clock::now() + kBound;
  while (answered.load() < expected_total && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_EQ(answered.load(), expected_total);
  std::lock_guard lock(mu);
  EXPECT_EQ(wrong.load(), 0) << first_wrong;
  EXPECT_EQ(store.errors(), 0u);
}

// Waits (bounded) for one hit_async answer.
RateLimitReply hit_and_wait(RedisRateLimitStore& store, const RateLimitQuery& q) {
  auto promise = std::make_shared<std::promise<RateLimitReply>>();
  auto future = promise->get_future();
  store.hit_async(q, [promise](RateLimitReply reply) { promise->set_value(std::move(reply)); });
  if (future.wait_for(kBound) != std::future_status::ready) {
    RateLimitReply none;
    none.error = "no answer within the bound";
    return none;
  }
  return future.get();
}

// The calls= count of one command in INFO commandstats, or -1.
int command_calls(DirectRedis& redis, const std::string& command) {
  const std::string info = redis.run({"INFO", "commandstats"});
  const std::string tag = "cmdstat_" + command + ":calls=";
  const auto at = info.find(tag);
  return at == std::string::npos ? -1 : std::stoi(info.substr(at + tag.size()));
}

// Verifies the NOSCRIPT fallback for a whole pipelined batch: after SCRIPT FLUSH (as after a
// Redis restart or failover) every EVALSHA of the batch fails and each is sent again with EVAL.
TEST(RedisRateLimitStorePipelined, KeepsCountingAfterScriptFlushForAWholeBatch) {
  ThrowawayRedis server;
  ASSERT_TRUE(server.start());
  DirectRedis redis("127.0.0.1", server.port());
  ASSERT_TRUE(redis.ok());
  RedisRateLimitStore store(local_options(server.port()));
  Gate gate;
  constexpr int kKeys = 10;
  std::vector<RateLimitQuery> queries;
  for (int k = 0; k < kKeys; ++k) queries.push_back(query(fresh_key(), 1000, 3600));
  store.hit_async(queries[0], gate.holder());  // the first EVALSHA here: NOSCRIPT, then EVAL
  ASSERT_TRUE(gate.entered());
  ASSERT_EQ(redis.run({"SCRIPT", "FLUSH"}), "OK");
  // Ten keys, ten hits each: one script call per key (its hits ride on it), ten in the batch.
  constexpr int kHits = 100;
  Answers<std::pair<int, RateLimitReply>> answers;
  for (int i = 0; i < kHits; ++i) {
    store.hit_async(queries[i % kKeys], [&, i](RateLimitReply reply) {
      answers.add({i, std::move(reply)});
    });
  }
  gate.open();
  ASSERT_TRUE(answers.wait_for(kHits));
  for (const auto& [i, reply] : answers.values()) {
    ASSERT_EQ(reply.kind, RateKind::kAllowed) << reply.error;
    // Hit i is the (i / kKeys + 1)-th of its key; key 0 also had the holder's hit.
    EXPECT_EQ(reply.remaining, 1000 - 1 - i / kKeys - (i % kKeys == 0 ? 1 : 0)) << "hit " << i;
  }
  EXPECT_EQ(command_calls(redis, "eval"), 1 + kKeys);
  EXPECT_EQ(store.errors(), 0u);
  // The script is cached again: the next hit goes by hash alone.
  EXPECT_EQ(hit_and_wait(store, queries[0]).remaining, 1000 - 2 - kHits / kKeys);
  EXPECT_EQ(command_calls(redis, "eval"), 1 + kKeys);
}

// Verifies that hits of one key queued while the pipeline is busy go to Redis as one script call
// and get, in the order they arrived, the verdicts of that many hits in a row: the first
// `limit` allowed counting down, the rest limited with the same Retry-After.
TEST(RedisRateLimitStorePipelined, HitsOfOneKeyQueuedTogetherShareOneScriptCallInArrivalOrder) {
  ThrowawayRedis server;
  ASSERT_TRUE(server.start());
  DirectRedis redis("127.0.0.1", server.port());
  ASSERT_TRUE(redis.ok());
  RedisRateLimitStore store(local_options(server.port()));
  Gate gate;
  store.hit_async(query(fresh_key(), 5, 60), gate.holder());
  ASSERT_TRUE(gate.entered());
  const int calls_before = command_calls(redis, "evalsha") + command_calls(redis, "eval");
  const std::uint64_t rounds_before = store.round_trips();

  constexpr int kLimit = 6;
  constexpr int kHits = 10;
  const auto q = query(fresh_key(), kLimit, 3600);
  Answers<std::pair<int, RateLimitReply>> answers;
  for (int i = 0; i < kHits; ++i) {
    store.hit_async(q, [&, i](RateLimitReply reply) { answers.add({i, std::move(reply)}); });
  }
  gate.open();
  ASSERT_TRUE(answers.wait_for(kHits));
  const auto values = answers.values();
  for (int i = 0; i < kHits; ++i) {
    ASSERT_EQ(values[i].first, i) << "answered out of arrival order";
    const RateLimitReply& reply = values[i].second;
    if (i < kLimit) {
      EXPECT_EQ(reply.kind, RateKind::kAllowed) << "hit " << i << " " << reply.error;
      EXPECT_EQ(reply.remaining, kLimit - 1 - i) << "hit " << i;
      EXPECT_EQ(reply.retry_after_seconds, 0) << "hit " << i;
    } else {
      EXPECT_EQ(reply.kind, RateKind::kLimited) << "hit " << i << " " << reply.error;
      EXPECT_EQ(reply.remaining, 0) << "hit " << i;
      EXPECT_EQ(reply.retry_after_seconds, values[kLimit].second.retry_after_seconds);
      EXPECT_GE(reply.retry_after_seconds, 1) << "hit " << i;
    }
    EXPECT_EQ(reply.limit, kLimit);
  }
  EXPECT_EQ(command_calls(redis, "evalsha") + command_calls(redis, "eval") - calls_before, 1);
  EXPECT_EQ(store.round_trips() - rounds_before, 1u);
  // Only the allowed hits were counted.
  const std::string counter =
      q.key + ":" +
      std::to_string(policy::window_start_ms(redis.time_ms(), std::int64_t{3600} * 1000));
  EXPECT_EQ(redis.run({"GET", counter}), std::to_string(kLimit));
  EXPECT_EQ(store.errors(), 0u);
}

// Verifies that merging does not lift the bound on waiting work: past kMaxWaitingHits hits
// waiting for their call (here all of one key), the next is a store error at once, on the
// caller's thread; the waiting ones are all answered once the pipeline moves again.
TEST(RedisRateLimitStorePipelined, HitsBeyondTheWaitingBoundAreStoreErrorsAtOnce) {
  RedisRateLimitStore store(live_options());
  Gate gate;
  store.hit_async(query(fresh_key(), 5, 60), gate.holder());
  ASSERT_TRUE(gate.entered());
  const auto q = query(fresh_key(), 1'000'000, 3600);
  constexpr auto kWaiting = RedisRateLimitStore::kMaxWaitingHits;
  std::atomic<std::size_t> allowed{0};
  Answers<int> answered;
  for (std::size_t i = 0; i < kWaiting; ++i) {
    store.hit_async(q, [&](RateLimitReply reply) {
      if (reply.kind == RateKind::kAllowed) allowed.fetch_add(1);
      answered.add(0);
    });
  }
  RateLimitReply refused;
  std::thread::id refused_on;
  store.hit_async(q, [&](RateLimitReply reply) {
    refused = std::move(reply);
    refused_on = std::this_thread::get_id();
  });
  EXPECT_EQ(refused.kind, RateKind::kStoreError);
  EXPECT_NE(refused.error.find("queue full"), std::string::npos) << refused.error;
  EXPECT_EQ(refused_on, std::this_thread::get_id());
  EXPECT_EQ(answered.size(), 0u);
  gate.open();
  ASSERT_TRUE(answered.wait_for(kWaiting));
  EXPECT_EQ(allowed.load(), kWaiting);
  EXPECT_EQ(store.errors(), 1u);
  // The bound counts waiting hits only: once answered, new hits are taken again.
  EXPECT_EQ(hit_and_wait(store, q).kind, RateKind::kAllowed);
}

// Verifies that with Redis down every queued hit gets a store error at once, and that the
// breaker then refuses (its own message, no connect attempt) for pipelined and blocking calls.
TEST(RedisRateLimitStorePipelined, DeadRedisFailsEveryQueuedHitFastThenTheBreakerRefuses) {
  const int port = free_port();
  ASSERT_GT(port, 0);
  RedisRateLimitStore store(local_options(port));
  const auto q = query(fresh_key(), 5, 60);
  constexpr int kHits = 50;
  Answers<RateLimitReply> answers;
  const auto started = Clock::now();
  for (int i = 0; i < kHits; ++i) {
    store.hit_async(q, [&](RateLimitReply reply) { answers.add(std::move(reply)); });
  }
  ASSERT_TRUE(answers.wait_for(kHits));
  EXPECT_LT(elapsed_ms(started), 300 + 200);
  const auto values = answers.values();
  EXPECT_TRUE(values.front().error.starts_with("redis connect: ")) << values.front().error;
  for (const auto& reply : values) {
    EXPECT_EQ(reply.kind, RateKind::kStoreError);
    EXPECT_EQ(reply.limit, 5);
    EXPECT_TRUE(reply.error.starts_with("redis connect: ") || reply.error == "redis: circuit open")
        << reply.error;
  }
  EXPECT_EQ(store.errors(), static_cast<std::uint64_t>(kHits));

  const auto refused_at = Clock::now();
  EXPECT_EQ(hit_and_wait(store, q).error, "redis: circuit open");
  EXPECT_EQ(store.hit(q).error, "redis: circuit open");
  EXPECT_LT(elapsed_ms(refused_at), 50);
  EXPECT_EQ(store.errors(), static_cast<std::uint64_t>(kHits + 2));
}

// Verifies that a hung Redis (SIGSTOP: the kernel still accepts and buffers, nobody answers)
// costs queued hits about one command timeout, never blocks the caller, and that the store
// recovers once the server runs again.
TEST(RedisRateLimitStorePipelined, FrozenRedisFailsWithinTheCommandTimeoutAndRecovers) {
  ThrowawayRedis server;
  ASSERT_TRUE(server.start());
  RedisOptions options = local_options(server.port());
  options.command_timeout_ms = 200;
  options.breaker_open_ms = 300;
  RedisRateLimitStore store(options);
  const auto q = query(fresh_key(), 1000, 60);
  ASSERT_EQ(hit_and_wait(store, q).kind, RateKind::kAllowed);

  server.freeze();
  constexpr int kHits = 20;
  Answers<RateLimitReply> answers;
  const auto started = Clock::now();
  for (int i = 0; i < kHits; ++i) {
    store.hit_async(q, [&](RateLimitReply reply) { answers.add(std::move(reply)); });
  }
  EXPECT_LT(elapsed_ms(started), 50);  // queuing never waits for Redis
  ASSERT_TRUE(answers.wait_for(kHits));
  EXPECT_LT(elapsed_ms(started), 200 + 300);
  const auto values = answers.values();
  EXPECT_TRUE(values.front().error.starts_with("redis io: ")) << values.front().error;
  for (const auto& reply : values) {
    EXPECT_EQ(reply.kind, RateKind::kStoreError);
    EXPECT_TRUE(reply.error.starts_with("redis io: ") || reply.error == "redis: circuit open")
        << reply.error;
  }

  server.thaw();
  RateLimitReply back;
  const auto deadline = Clock::now() + milliseconds(3000);
  do {
    back = hit_and_wait(store, q);
    if (back.kind == RateKind::kAllowed) break;
    std::this_thread::sleep_for(milliseconds(50));
  } while (Clock::now() < deadline);
  EXPECT_EQ(back.kind, RateKind::kAllowed) << back.error;
}

// Verifies that an error reply from inside the script (WRONGTYPE on one key's counter) fails
// that hit only: the other hits of the batch and later batches are answered.
TEST(RedisRateLimitStorePipelined, AScriptErrorFailsThatHitOnly) {
  RedisRateLimitStore store(live_options());
  DirectRedis redis;
  ASSERT_TRUE(redis.ok());
  const std::string broken = fresh_key();
  const std::string fine = fresh_key();
  const std::int64_t window_ms = std::int64_t{3600} * 1000;
  const std::string counter =
      broken + ":" + std::to_string(policy::window_start_ms(redis.time_ms(), window_ms));
  ASSERT_EQ(redis.run({"HSET", counter, "f", "v"}), "1");
  ASSERT_EQ(redis.run({"PEXPIRE", counter, "60000"}), "1");

  Gate gate;
  store.hit_async(query(fine, 5, 3600), gate.holder());
  ASSERT_TRUE(gate.entered());
  // Answers by hit: the two hits of `fine` share one call, so they may be answered first.
  std::mutex mu;
  std::map<int, RateLimitReply> by_hit;
  Answers<int> answered;
  auto add = [&](int hit) {
    return [&, hit](RateLimitReply reply) {
      {
        std::lock_guard lock(mu);
        by_hit[hit] = std::move(reply);
      }
      answered.add(hit);
    };
  };
  store.hit_async(query(fine, 5, 3600), add(0));
  store.hit_async(query(broken, 5, 3600), add(1));
  store.hit_async(query(fine, 5, 3600), add(2));
  gate.open();
  ASSERT_TRUE(answered.wait_for(3));
  std::lock_guard lock(mu);
  EXPECT_EQ(by_hit[0].remaining, 3);
  EXPECT_EQ(by_hit[1].kind, RateKind::kStoreError);
  EXPECT_NE(by_hit[1].error.find("WRONGTYPE"), std::string::npos) << by_hit[1].error;
  EXPECT_EQ(by_hit[2].remaining, 2);
  EXPECT_EQ(hit_and_wait(store, query(fine, 5, 3600)).remaining, 1);
  EXPECT_EQ(store.errors(), 1u);
}

TEST(RedisRateLimitStorePipelined, AnInvalidQueryIsAnInlineStoreError) {
  RedisRateLimitStore store(local_options(free_port()));
  const std::size_t before = thread_count();
  RateLimitReply reply;
  bool answered = false;
  store.hit_async(query(fresh_key(), 0, 60), [&](RateLimitReply r) {
    reply = std::move(r);
    answered = true;
  });
  EXPECT_TRUE(answered);
  EXPECT_EQ(reply.kind, RateKind::kStoreError);
  EXPECT_EQ(reply.error, "invalid rate-limit query");
  EXPECT_EQ(store.errors(), 1u);
  EXPECT_EQ(thread_count(), before);  // nothing was queued, so no pipeline thread
}

// Verifies what the request chain does: the rate limiter's callback asks the same store again
// and then the replay store, each answer arriving on a pipeline thread.
TEST(RedisRateLimitStorePipelined, ACallbackCanAskAgain) {
  RedisRateLimitStore store(live_options());
  RedisReplayStore replays(live_options());
  const auto q = query(fresh_key(), 10, 3600);
  const std::string replay_key = "hg:rp:{t" + testing::unique_prefix() + "}:id";
  std::promise<std::pair<RateLimitReply, ReplayReply>> done;
  store.hit_async(q, [&](RateLimitReply first) {
    if (first.kind != RateKind::kAllowed) {
      done.set_value({first, {}});
      return;
    }
    store.hit_async(q, [&](RateLimitReply second) {
      replays.reserve_async(replay_key, "req-1", 5000, [&, second](ReplayReply reserved) {
        done.set_value({second, reserved});
      });
    });
  });
  auto future = done.get_future();
  ASSERT_EQ(future.wait_for(kBound), std::future_status::ready);
  const auto [second, reserved] = future.get();
  EXPECT_EQ(second.kind, RateKind::kAllowed) << second.error;
  EXPECT_EQ(second.remaining, 8);
  EXPECT_EQ(reserved.kind, ReplayKind::kReserved) << reserved.error;
}

// Verifies that destroying the store stops its pipeline first: every queued hit is answered
// exactly once, while the store's members are still alive.
TEST(RedisRateLimitStorePipelined, DestroyingTheStoreAnswersEveryQueuedHit) {
  auto store = std::make_unique<RedisRateLimitStore>(live_options());
  const auto q = query(fresh_key(), 1000, 3600);
  Gate gate;
  store->hit_async(q, gate.holder());
  ASSERT_TRUE(gate.entered());
  constexpr int kHits = 200;
  std::vector<std::atomic<int>> calls(kHits);
  Answers<RateLimitReply> answers;
  for (int i = 0; i < kHits; ++i) {
    store->hit_async(q, [&, i](RateLimitReply reply) {
      calls[i].fetch_add(1);
      answers.add(std::move(reply));
    });
  }
  auto destroyed = std::async(std::launch::async, [&] { store.reset(); });
  gate.open();
  ASSERT_EQ(destroyed.wait_for(kBound), std::future_status::ready);
  for (int i = 0; i < kHits; ++i) EXPECT_EQ(calls[i].load(), 1) << "hit " << i;
  for (const auto& reply : answers.values()) EXPECT_EQ(reply.kind, RateKind::kAllowed);
}

// ---------------------------------------------------------------------------------------------
// RedisReplayStore::reserve_async.

ReplayReply reserve_and_wait(RedisReplayStore& store, const std::string& key,
                             const std::string& token, std::int64_t pending_ttl_ms) {
  auto promise = std::make_shared<std::promise<ReplayReply>>();
  auto future = promise->get_future();
  store.reserve_async(key, token, pending_ttl_ms,
                      [promise](ReplayReply reply) { promise->set_value(std::move(reply)); });
  if (future.wait_for(kBound) != std::future_status::ready) {
    ReplayReply none;
    none.error = "no answer within the bound";
    return none;
  }
  return future.get();
}

TEST(RedisReplayStorePipelined, ReservesThenReportsPendingThenDone) {
  const std::string prefix = testing::unique_prefix() + ":";
  RedisOptions options = live_options();
  options.key_prefix = prefix;
  RedisReplayStore store(options);
  DirectRedis redis;
  const std::string key = "hg:rp:{t" + testing::unique_prefix() + "}:abc";

  const auto reserved = reserve_and_wait(store, key, "req-1", 5000);
  EXPECT_EQ(reserved.kind, ReplayKind::kReserved) << reserved.error;
  EXPECT_EQ(redis.run({"GET", prefix + key}), "pending:req-1");

  const auto pending = reserve_and_wait(store, key, "req-2", 5000);
  EXPECT_EQ(pending.kind, ReplayKind::kPending) << pending.error;
  EXPECT_GT(pending.pending_ttl_ms, 4000);
  EXPECT_LE(pending.pending_ttl_ms, 5000);

  ASSERT_TRUE(store.complete(key, 60'000));
  EXPECT_EQ(reserve_and_wait(store, key, "req-3", 5000).kind, ReplayKind::kDone);
  EXPECT_EQ(store.errors(), 0u);
}

TEST(RedisReplayStorePipelined, SixteenConcurrentCopiesReserveExactlyOnce) {
  RedisReplayStore store(live_options());
  const std::string key = "hg:rp:{t" + testing::unique_prefix() + "}:abc";
  Answers<ReplayReply> answers;
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      store.reserve_async(key, "req-" + std::to_string(i), 10'000,
                          [&](ReplayReply reply) { answers.add(std::move(reply)); });
    });
  }
  go.store(true);
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(answers.wait_for(16));
  int reserved = 0;
  int pending = 0;
  for (const auto& reply : answers.values()) {
    if (reply.kind == ReplayKind::kReserved) ++reserved;
    if (reply.kind == ReplayKind::kPending) ++pending;
  }
  EXPECT_EQ(reserved, 1);
  EXPECT_EQ(pending, 15);
}

TEST(RedisReplayStorePipelined, StoreErrorsForBadArgumentsAndAnUnreachableRedis) {
  RedisReplayStore store(local_options(free_port()));
  bool answered = false;
  store.reserve_async("", "t", 1000, [&](ReplayReply reply) {
    answered = true;
    EXPECT_EQ(reply.kind, ReplayKind::kStoreError);
    EXPECT_EQ(reply.error, "invalid replay reservation");
  });
  EXPECT_TRUE(answered);

  const auto started = Clock::now();
  const auto unreachable = reserve_and_wait(store, "hg:rp:{t1}:x", "req-1", 5000);
  EXPECT_EQ(unreachable.kind, ReplayKind::kStoreError);
  EXPECT_TRUE(unreachable.error.starts_with("redis connect: ")) << unreachable.error;
  const auto refused = reserve_and_wait(store, "hg:rp:{t1}:x", "req-1", 5000);
  EXPECT_EQ(refused.error, "redis: circuit open");
  // The breaker is the store's: the blocking calls are refused too.
  EXPECT_EQ(store.reserve("hg:rp:{t1}:x", "req-1", 5000).error, "redis: circuit open");
  EXPECT_LT(elapsed_ms(started), 300 + 200);
  EXPECT_EQ(store.errors(), 4u);
}

}  // namespace
}  // namespace hookguard::gateway
