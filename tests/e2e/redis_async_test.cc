// End-to-end: the request chain's Redis calls never block the ingress reactor (DESIGN §8:
// handlers run on the reactor threads). The gateway asks its rate-limit and replay stores
// without waiting; the stores pipeline the questions of concurrent requests on one connection
// and resume each request on the pipeline thread when Redis answers. Each test runs its own
// redis-server (tests/support/redis_servers.h), so it can freeze it without touching the shared
// services (the suite is not an *Outage one).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "policy/signature.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_servers.h"
#include "tests/support/test_env.h"
#include "tests/support/upstream_server.h"

namespace hookguard::testing {
namespace {

using hookguard::testing::error_of;
using hookguard::testing::metric;
using hookguard::testing::ms_since;
using hookguard::testing::request_id_of;

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kSecret = "redis-async-secret";
// Long enough that a request blocked behind a hung Redis call cannot be mistaken for a slow
// one: the test that freezes Redis measures its neighbour against a fraction of it.
constexpr int kRedisCommandTimeoutMs = 1500;

policy::HeaderList github_headers(const std::string& body, const std::string& delivery) {
  return {{"X-Hub-Signature-256",
           "sha256=" + policy::hmac_hex(policy::HmacAlgorithm::kSha256, kSecret, body)},
          {"X-GitHub-Delivery", delivery}};
}

// One number of INFO's "name:value" lines, or -1 when absent.
long info_number(const std::string& info, const std::string& name) {
  const std::string tag = name + ":";
  auto at = info.find("\n" + tag);
  if (at == std::string::npos) return -1;
  return std::stol(info.substr(at + 1 + tag.size()));
}

// The calls= count of one command in INFO commandstats, or -1 when it never ran.
long command_calls(DirectRedis& redis, const std::string& command) {
  const std::string info = redis.run({"INFO", "commandstats"});
  const std::string tag = "cmdstat_" + command + ":calls=";
  const auto at = info.find(tag);
  return at == std::string::npos ? -1 : std::stol(info.substr(at + tag.size()));
}

// SIGSTOPs a throwaway Redis for the lifetime of the object, so that a failed assertion still
// lets it run again before the gateway is stopped.
class FrozenRedis {
 public:
  explicit FrozenRedis(ThrowawayRedis& redis) : redis_(redis) { redis_.freeze(); }
  ~FrozenRedis() { resume(); }
  FrozenRedis(const FrozenRedis&) = delete;
  FrozenRedis& operator=(const FrozenRedis&) = delete;

  void resume() {
    if (frozen_) redis_.thaw();
    frozen_ = false;
  }

 private:
  ThrowawayRedis& redis_;
  bool frozen_ = true;
};

class RedisAsyncE2E : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.start()) << "could not start redis-server"; }

  // A gateway whose Redis is this test's own server, with `threads` ingress reactor threads.
  void start_gateway(int threads) {
    const std::string yaml =
        "ingress: {address: 127.0.0.1, port: 0, threads: " + std::to_string(threads) +
        "}\nredis: {host: 127.0.0.1, port: " + std::to_string(redis_.port()) +
        ", connect_timeout_ms: 200, command_timeout_ms: " + std::to_string(kRedisCommandTimeoutMs) +
        "}\n";
    gateway_ = std::make_unique<GatewayProcess>(db_.dsn(), yaml);
    ASSERT_TRUE(gateway_->start()) << gateway_->log();
  }

  db::StoredTrigger add(policy::TriggerSpec spec, const std::string& secret = "") {
    return insert_trigger(db_.dsn(), std::move(spec), secret);
  }

  HttpResponse post(const std::string& key, const std::string& body = "{}",
                    const policy::HeaderList& headers = {}) {
    return http_request("POST", gateway_->ingress_url("/webhooks/" + key), headers, body, 5000);
  }

  LogRow row_of(const HttpResponse& r) {
    const std::string id = request_id_of(r);
    EXPECT_FALSE(id.empty()) << "no X-Request-Id in the answer";
    if (id.empty()) return {};
    auto row = wait_for_log_row(db_.dsn(), id);
    EXPECT_TRUE(row.has_value()) << "no log row for " << id;
    return row.value_or(LogRow{});
  }

  // Counts the log rows among `ids` that match `condition` (SQL over webhook_event_log).
  long rows_where(const std::vector<std::string>& ids, const std::string& condition) {
    std::string list = "'{";
    for (std::size_t i = 0; i < ids.size(); ++i) list += (i ? "," : "") + ids[i];
    list += "}'::uuid[]";
    return std::stol(
        query_value(db_.dsn(), "SELECT count(*) FROM webhook_event_log WHERE request_id = ANY(" +
                                   list + ") AND (" + condition + ")"));
  }

  // Declared first: stopped last, after the gateway that uses it.
  ThrowawayRedis redis_;
  PgTestDb db_;
  UpstreamServer upstream_;
  std::unique_ptr<GatewayProcess> gateway_;
};

// Verifies that a request waiting for a hung Redis does not hold up the only reactor thread:
// with one ingress thread, a request to a trigger without a rate limit is forwarded at once
// while a rate-limited request waits out the Redis command timeout, and the waiting one then
// fails open (DESIGN §2 on_store_error: open) with the store error in its row. A gateway that
// called Redis on the reactor thread would answer the neighbour only after that timeout.
TEST_F(RedisAsyncE2E, AHungRedisCallDoesNotHoldUpTheReactorThread) {
  auto limited_spec = basic_trigger("async-limited", upstream_.url("/limited"));
  limited_spec.policy.rate_limit.enabled = true;
  limited_spec.policy.rate_limit.requests = 1000;
  limited_spec.policy.rate_limit.on_store_error = policy::StoreErrorMode::kOpen;
  auto limited = add(limited_spec);
  auto plain = add(basic_trigger("async-plain", upstream_.url("/plain")));
  start_gateway(1);

  // Warm up: the pipeline's connection is open and the script cached, the breaker closed.
  auto warm = post(limited.spec.key);
  ASSERT_EQ(warm.status, 200) << warm.body;
  ASSERT_TRUE(warm.headers.get("RateLimit-Remaining").has_value()) << "the warm-up was not counted";
  ASSERT_EQ(post(plain.spec.key).status, 200);

  long plain_ms = -1;
  long limited_ms = -1;
  HttpResponse waiting;
  {
    FrozenRedis frozen(redis_);
    const auto sent = Clock::now();
    auto limited_answer = std::async(std::launch::async, [&] { return post(limited.spec.key); });
    // The one deliberate pause: lets the rate-limited request reach the gateway and its Redis
    // call start before the neighbour is sent.
    std::this_thread::sleep_for(milliseconds(50));
    const auto plain_sent = Clock::now();
    auto neighbour = post(plain.spec.key);
    plain_ms = ms_since(plain_sent);
    EXPECT_EQ(neighbour.status, 200) << neighbour.body;
    EXPECT_EQ(neighbour.body, R"({"ok":true})");
    EXPECT_LT(plain_ms, 500) << "the neighbour waited for the hung Redis call";
    EXPECT_EQ(limited_answer.wait_for(milliseconds(0)), std::future_status::timeout)
        << "the rate-limited request did not wait for the hung Redis (" << ms_since(sent) << " ms)";
    // Bounded: the client gives up after 5 s.
    waiting = limited_answer.get();
    limited_ms = ms_since(sent);
    frozen.resume();
  }
  std::printf("[ timings  ] Redis frozen: neighbour %ld ms, rate-limited %ld ms (timeout %d ms)\n",
              plain_ms, limited_ms, kRedisCommandTimeoutMs);

  EXPECT_EQ(waiting.status, 200) << waiting.body;
  EXPECT_GE(limited_ms, kRedisCommandTimeoutMs - 100);
  EXPECT_LT(limited_ms, kRedisCommandTimeoutMs + 1500);
  EXPECT_FALSE(waiting.headers.get("RateLimit-Remaining").has_value());
  auto row = row_of(waiting);
  EXPECT_EQ(row["outcome"], "forwarded");
  EXPECT_EQ(row["status_code"], "200");
  EXPECT_EQ(row["rate_limited"], "f");
  EXPECT_NE(row["error_message"].value_or("").find("rate_limit_store_error"), std::string::npos)
      << row["error_message"].value_or("<null>");
  EXPECT_EQ(upstream_.request_count(), 4u);

  // Counting again once the breaker (open for 1 s after the failure) lets a probe through.
  bool counted = false;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!counted && Clock::now() < deadline) {
    counted = post(limited.spec.key).headers.get("RateLimit-Remaining").has_value();
    if (!counted) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(counted) << "the rate limit did not count again after Redis resumed";
}

// Verifies the pipelined rate limit under concurrency: 200 signed requests from 64 senders over
// four reactor threads, limit 50, get exactly 50 forwards and 150 answers 429, one log row
// each; every request cost Redis one EVALSHA, and all of them came over a single connection
// (the store's pipeline), where a reactor-thread call would open one per reactor thread.
TEST_F(RedisAsyncE2E, ConcurrentRequestsShareOnePipelinedConnectionAndCountExactly) {
  constexpr int kSenders = 64;
  constexpr int kRequests = 200;
  constexpr int kLimit = 50;
  auto spec = basic_trigger("async-burst", upstream_.url("/burst"));
  spec.policy.rate_limit.enabled = true;
  spec.policy.rate_limit.requests = kLimit;
  // An hour, not a minute: a burst that crosses a window boundary would see the sliding
  // estimate drop below the limit and let one more through.
  spec.policy.rate_limit.window_seconds = 3600;
  spec.policy.hmac.enabled = true;
  spec.policy.hmac.scheme = policy::SignatureScheme::kGithub;
  auto t = add(spec, kSecret);
  start_gateway(4);

  DirectRedis redis("127.0.0.1", redis_.port());
  ASSERT_TRUE(redis.ok());
  const long connections_before =
      info_number(redis.run({"INFO", "stats"}), "total_connections_received");
  ASSERT_GT(connections_before, 0);

  std::atomic<int> next{0};
  std::mutex mutex;
  std::vector<HttpResponse> answers;
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&] {
      for (int i = next.fetch_add(1); i < kRequests; i = next.fetch_add(1)) {
        const std::string body = R"({"n":)" + std::to_string(i) + "}";
        auto r = post(t.spec.key, body, github_headers(body, "burst-" + std::to_string(i)));
        std::lock_guard lock(mutex);
        answers.push_back(std::move(r));
      }
    });
  }
  for (auto& sender : senders) sender.join();

  ASSERT_EQ(answers.size(), static_cast<std::size_t>(kRequests));
  int forwarded = 0;
  int limited = 0;
  std::vector<std::string> ids;
  for (const auto& r : answers) {
    if (r.status == 200) {
      ++forwarded;
      EXPECT_EQ(r.body, R"({"ok":true})");
    } else if (r.status == 429) {
      ++limited;
      EXPECT_EQ(error_of(r), "rate_limited");
    } else {
      ADD_FAILURE() << "unexpected answer " << r.status << " " << r.body << r.error;
    }
    ids.push_back(request_id_of(r));
  }
  EXPECT_EQ(forwarded, kLimit);
  EXPECT_EQ(limited, kRequests - kLimit);
  EXPECT_EQ(upstream_.request_count(), static_cast<std::size_t>(kLimit));

  // Redis saw at most one script call per request (requests that arrived while a call for
  // their key was still queued rode on it), over one new connection.
  const long script_calls = command_calls(redis, "evalsha") + command_calls(redis, "eval");
  EXPECT_GE(script_calls, 1);
  EXPECT_LE(script_calls, kRequests);
  const long connections =
      info_number(redis.run({"INFO", "stats"}), "total_connections_received") - connections_before;
  std::printf(
      "[ redis    ] %d requests: %ld EVALSHA, %ld EVAL (NOSCRIPT retries), %ld new "
      "connection(s)\n",
      kRequests, command_calls(redis, "evalsha"), command_calls(redis, "eval"), connections);
  EXPECT_EQ(connections, 1);
  // The gateway counts its round trips: one per pipelined batch, at least one, at most one per
  // request (fewer when requests shared one).
  const double round_trips = metric(http_request("GET", gateway_->admin_url("/metrics")).body,
                                    "hookguard_redis_round_trips_total");
  EXPECT_GE(round_trips, 1);
  EXPECT_LE(round_trips, kRequests);

  // Exactly one row per answer, flagged as the answer was.
  ASSERT_TRUE(wait_for_value(db_.dsn(), "SELECT count(*) FROM webhook_event_log",
                             std::to_string(kRequests), std::chrono::seconds(20)))
      << query_value(db_.dsn(), "SELECT count(*) FROM webhook_event_log") << " rows";
  EXPECT_EQ(rows_where(ids, "true"), kRequests);
  EXPECT_EQ(rows_where(ids, "rate_limited AND outcome = 'rate_limited' AND status_code = 429"),
            kRequests - kLimit);
  EXPECT_EQ(rows_where(ids,
                       "NOT rate_limited AND outcome = 'forwarded' AND status_code = 200 "
                       "AND error_message IS NULL"),
            kLimit);
}

// Verifies replay protection through the pipelined store: concurrent copies of one delivery
// are forwarded exactly once, every other copy is told it is in flight (409) or a duplicate.
TEST_F(RedisAsyncE2E, ConcurrentCopiesOfOneDeliveryAreForwardedOnce) {
  constexpr int kCopies = 8;
  // Slow enough that the first copy is still being forwarded when the others arrive.
  auto spec = basic_trigger("async-replay", upstream_.url("/delay/300"));
  spec.policy.hmac.enabled = true;
  spec.policy.hmac.scheme = policy::SignatureScheme::kGithub;
  spec.policy.replay.enabled = true;
  auto t = add(spec, kSecret);
  start_gateway(2);

  const std::string body = R"({"ref":"main"})";
  std::atomic<bool> go{false};
  std::vector<std::future<HttpResponse>> copies;
  for (int i = 0; i < kCopies; ++i) {
    copies.push_back(std::async(std::launch::async, [&] {
      while (!go.load()) std::this_thread::yield();
      return post(t.spec.key, body, github_headers(body, "d-concurrent"));
    }));
  }
  go.store(true);

  int forwarded = 0;
  int in_flight = 0;
  int duplicates = 0;
  std::vector<std::string> ids;
  for (auto& copy : copies) {
    const auto r = copy.get();  // each bounded by the client's 5 s
    ids.push_back(request_id_of(r));
    if (r.status == 200 && r.body == R"({"ok":true})") {
      ++forwarded;
    } else if (r.status == 200 && r.body == R"({"status":"duplicate"})") {
      ++duplicates;
    } else if (r.status == 409 && error_of(r) == "delivery_in_flight") {
      ++in_flight;
    } else {
      ADD_FAILURE() << "unexpected answer " << r.status << " " << r.body << r.error;
    }
  }
  std::printf("[ replay   ] %d copies: %d forwarded, %d in flight, %d duplicate\n", kCopies,
              forwarded, in_flight, duplicates);
  EXPECT_EQ(forwarded, 1);
  EXPECT_EQ(in_flight + duplicates, kCopies - 1);
  EXPECT_EQ(upstream_.request_count(), 1u);

  ASSERT_TRUE(
      wait_for_value(db_.dsn(), "SELECT count(*) FROM webhook_event_log", std::to_string(kCopies)));
  EXPECT_EQ(rows_where(ids, "delivery_id = 'd-concurrent'"), kCopies);
  EXPECT_EQ(rows_where(ids, "outcome = 'forwarded'"), 1);
  EXPECT_EQ(rows_where(ids, "outcome IN ('delivery_in_flight', 'duplicate')"), kCopies - 1);
  EXPECT_EQ(rows_where(ids, "error_message LIKE '%replay_store_error%'"), 0);
}

}  // namespace
}  // namespace hookguard::testing
