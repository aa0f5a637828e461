// End-to-end faults with hung, not stopped, services: Redis or every PostgreSQL process is
// SIGSTOPped under the real gateway. Unlike a stopped server, a hung one still completes TCP
// handshakes (the backlog) and acknowledges what it is sent, so only the gateway's own timeouts
// bound a call, and TCP keepalives never fire. Suites named *Outage freeze the shared services:
// they run under the ctest label `fault`, alone, and ServiceFreeze always resumes them.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "policy/signature.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/http_client.h"
#include "tests/support/service_freeze.h"
#include "tests/support/test_env.h"
#include "tests/support/upstream_server.h"

namespace hookguard::testing {
namespace {

using hookguard::testing::metric;

using hookguard::testing::error_of;
using hookguard::testing::ms_since;
using hookguard::testing::request_id_of;

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kSecret = "hung-services-secret";
// The Redis timeouts these tests configure (the defaults of DESIGN §6, spelled out because
// they are what the answers are measured against).
constexpr int kRedisConnectTimeoutMs = 200;
constexpr int kRedisCommandTimeoutMs = 100;
// What one request may cost beyond a full Redis connect + command budget: scheduling on a
// loaded two-core machine, the upstream round trip, the HTTP client.
constexpr long kSlackMs = 700;
constexpr long kRedisBoundMs = kRedisConnectTimeoutMs + kRedisCommandTimeoutMs + kSlackMs;

policy::HeaderList github_headers(const std::string& body, const std::string& delivery) {
  return {{"X-Hub-Signature-256",
           "sha256=" + policy::hmac_hex(policy::HmacAlgorithm::kSha256, kSecret, body)},
          {"X-GitHub-Delivery", delivery}};
}

// Latencies of one kind of request, for the assertions and the failure messages.
struct Timings {
  std::vector<long> ms;
  void add(long v) { ms.push_back(v); }
  long max() const { return ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end()); }
  long median() const {
    if (ms.empty()) return 0;
    auto sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    return sorted[sorted.size() / 2];
  }
  std::string summary() const {
    return std::to_string(ms.size()) + " requests, median " + std::to_string(median()) +
           " ms, max " + std::to_string(max()) + " ms";
  }
};

class HungServicesBase : public ::testing::Test {
 protected:
  void start_gateway(const std::string& extra_yaml = "") {
    gateway_ = std::make_unique<GatewayProcess>(db_.dsn(), extra_yaml);
    ASSERT_TRUE(gateway_->start()) << gateway_->log();
  }

  db::StoredTrigger add(policy::TriggerSpec spec, const std::string& secret = "") {
    return insert_trigger(db_.dsn(), std::move(spec), secret);
  }

  HttpResponse post(const std::string& key, const std::string& body = "{}",
                    const policy::HeaderList& headers = {}, long timeout_ms = 5000) {
    return http_request("POST", gateway_->ingress_url("/webhooks/" + key), headers, body,
                        timeout_ms);
  }

  // Sends one request and records how long its answer took.
  HttpResponse timed_post(Timings& timings, const std::string& key, const std::string& body = "{}",
                          const policy::HeaderList& headers = {}) {
    const auto start = Clock::now();
    auto r = post(key, body, headers);
    timings.add(ms_since(start));
    return r;
  }

  LogRow row_of(const std::string& request_id) {
    EXPECT_FALSE(request_id.empty()) << "no X-Request-Id in the answer";
    if (request_id.empty()) return {};
    auto row = wait_for_log_row(db_.dsn(), request_id);
    EXPECT_TRUE(row.has_value()) << "no log row for " << request_id;
    return row.value_or(LogRow{});
  }
  LogRow row_of(const HttpResponse& r) { return row_of(request_id_of(r)); }

  // How many log rows carry one of `ids`, and how many distinct ids among them.
  std::pair<long, long> rows_for(const std::vector<std::string>& ids) {
    std::string list = "'{";
    for (std::size_t i = 0; i < ids.size(); ++i) list += (i ? "," : "") + ids[i];
    list += "}'::uuid[]";
    const auto rows = std::stol(query_value(
        db_.dsn(), "SELECT count(*) FROM webhook_event_log WHERE request_id = ANY(" + list + ")"));
    const auto distinct = std::stol(query_value(
        db_.dsn(),
        "SELECT count(DISTINCT request_id) FROM webhook_event_log WHERE request_id = ANY(" + list +
            ")"));
    return {rows, distinct};
  }

  bool wait_for_rows(const std::vector<std::string>& ids, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      try {
        if (rows_for(ids).second == static_cast<long>(ids.size())) return true;
      } catch (const std::exception&) {
        // PostgreSQL may still be catching up after the resume.
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
  }

  // Waits until no session on the test database but this one is inside a query (start-up
  // reload, maintenance, a flush), twice in a row, so that a freeze catches the gateway at
  // rest rather than in one of its start-up calls.
  bool wait_until_gateway_idle(milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = Clock::now() + timeout;
    int idle_checks = 0;
    while (Clock::now() < deadline && idle_checks < 2) {
      const auto busy =
          query_value(db_.dsn(),
                      "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                      " AND pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle'");
      idle_checks = busy == "0" ? idle_checks + 1 : 0;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return idle_checks >= 2;
  }

  PgTestDb db_;
  UpstreamServer upstream_;
  std::unique_ptr<GatewayProcess> gateway_;
};

// --- Redis ----------------------------------------------------------------------------------

class HungRedisOutage : public HungServicesBase {
 protected:
  // The GatewayProcess default Redis section, with the timeouts spelled out.
  std::string redis_yaml() const {
    return "redis: {host: " + redis_host() + ", port: " + std::to_string(redis_port()) +
           ", key_prefix: \"" + db_.name() +
           ":\", connect_timeout_ms: " + std::to_string(kRedisConnectTimeoutMs) +
           ", command_timeout_ms: " + std::to_string(kRedisCommandTimeoutMs) + "}\n";
  }
};

// Verifies DESIGN §2 on_store_error against a Redis that accepts connections but never answers:
// every hiredis call is bounded by the command timeout (connect alone would not time out), the
// open trigger forwards with the store-error flag, the closed one answers 503, a trigger without
// a rate limit is not held up by its neighbours' Redis calls on the shared reactor threads, a
// replay-enabled trigger fails open (DESIGN §4 replay), and after SIGCONT everything counts
// again without a restart.
TEST_F(HungRedisOutage, RateLimitAndReplayCallsAreBoundedAndRecoverAfterResume) {
  auto open_spec = basic_trigger("hung-open", upstream_.url("/open"));
  open_spec.policy.rate_limit.enabled = true;
  open_spec.policy.rate_limit.requests = 100000;
  open_spec.policy.rate_limit.on_store_error = policy::StoreErrorMode::kOpen;
  auto open = add(open_spec);
  auto closed_spec = basic_trigger("hung-closed", upstream_.url("/closed"));
  closed_spec.policy.rate_limit = open_spec.policy.rate_limit;
  closed_spec.policy.rate_limit.on_store_error = policy::StoreErrorMode::kClosed;
  auto closed = add(closed_spec);
  auto plain = add(basic_trigger("hung-plain", upstream_.url("/plain")));
  auto replay_spec = basic_trigger("hung-replay", upstream_.url("/replay"));
  replay_spec.policy.hmac.enabled = true;
  replay_spec.policy.hmac.scheme = policy::SignatureScheme::kGithub;
  replay_spec.policy.replay.enabled = true;
  auto replay = add(replay_spec, kSecret);
  start_gateway(redis_yaml());

  const std::string body = R"({"ref":"main"})";
  ASSERT_EQ(post(open.spec.key).status, 200);
  ASSERT_EQ(post(closed.spec.key).status, 200);
  ASSERT_EQ(post(replay.spec.key, body, github_headers(body, "before")).status, 200);

  Timings open_ms, closed_ms, plain_ms, replay_ms, ready_ms;
  std::vector<std::string> open_ids, closed_ids, replay_ids;
  int plain_failures = 0;
  {
    ServiceFreeze freeze(FrozenService::kRedis);
    ASSERT_TRUE(freeze.frozen()) << "could not freeze Redis: " << freeze.error();
    // Neighbours on the same reactor threads keep hitting the hung store meanwhile: every
    // breaker period lets one of them wait for a full timeout.
    std::atomic<bool> stop{false};
    std::thread neighbour([&] {
      while (!stop.load()) {
        post(open.spec.key, "{}", {}, 3000);
        std::this_thread::sleep_for(milliseconds(20));
      }
    });
    // Over about 4 s, so that the breaker (open 1 s after a failure) lets several probes wait
    // on the hung server.
    for (int round = 0; round < 12; ++round) {
      auto o = timed_post(open_ms, open.spec.key);
      EXPECT_EQ(o.status, 200) << o.body;
      open_ids.push_back(request_id_of(o));
      auto c = timed_post(closed_ms, closed.spec.key);
      EXPECT_EQ(c.status, 503) << c.body;
      EXPECT_EQ(error_of(c), "rate_limit_store_error");
      closed_ids.push_back(request_id_of(c));
      auto p = timed_post(plain_ms, plain.spec.key);
      if (p.status != 200) ++plain_failures;
      auto r = timed_post(replay_ms, replay.spec.key, body,
                          github_headers(body, "during-" + std::to_string(round)));
      EXPECT_EQ(r.status, 200) << r.body;
      replay_ids.push_back(request_id_of(r));
      std::this_thread::sleep_for(milliseconds(250));
    }
    const auto start = Clock::now();
    auto ready = http_request("GET", gateway_->admin_url("/readyz"), {}, "", 5000);
    ready_ms.add(ms_since(start));
    EXPECT_EQ(ready.status, 503) << ready.body;
    stop = true;
    neighbour.join();
    freeze.resume();
  }

  EXPECT_EQ(plain_failures, 0);
  EXPECT_LT(open_ms.max(), kRedisBoundMs) << "open trigger: " << open_ms.summary();
  EXPECT_LT(closed_ms.max(), kRedisBoundMs) << "closed trigger: " << closed_ms.summary();
  EXPECT_LT(replay_ms.max(), kRedisBoundMs) << "replay trigger: " << replay_ms.summary();
  EXPECT_LT(plain_ms.max(), kRedisBoundMs)
      << "trigger without a rate limit: " << plain_ms.summary();
  EXPECT_LT(ready_ms.max(), kRedisBoundMs) << "/readyz";
  std::printf("[ timings  ] hung Redis: open %s; closed %s; replay %s; plain %s; /readyz %ld ms\n",
              open_ms.summary().c_str(), closed_ms.summary().c_str(), replay_ms.summary().c_str(),
              plain_ms.summary().c_str(), ready_ms.max());

  // Every answer of the hang has its row, flagged as DESIGN §2 and §4 say.
  for (const auto& id : open_ids) {
    auto row = row_of(id);
    EXPECT_EQ(row["outcome"], "forwarded");
    EXPECT_EQ(row["status_code"], "200");
    EXPECT_NE(row["error_message"].value_or("").find("rate_limit_store_error"), std::string::npos)
        << row["error_message"].value_or("<null>");
  }
  for (const auto& id : closed_ids) {
    auto row = row_of(id);
    EXPECT_EQ(row["outcome"], "rate_limit_store_error");
    EXPECT_EQ(row["status_code"], "503");
  }
  for (const auto& id : replay_ids) {
    auto row = row_of(id);
    EXPECT_EQ(row["outcome"], "forwarded");
    EXPECT_NE(row["error_message"].value_or("").find("replay_store_error"), std::string::npos)
        << row["error_message"].value_or("<null>");
  }

  // Back without a restart: once the breaker lets a probe through, the closed trigger passes.
  bool recovered = false;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!recovered && Clock::now() < deadline) {
    recovered = post(closed.spec.key).status == 200;
    if (!recovered) std::this_thread::sleep_for(milliseconds(200));
  }
  ASSERT_TRUE(recovered) << "closed trigger still failing after Redis resumed";
  // Counting works again: each hit takes exactly one from the window, and no row is flagged.
  auto first = post(open.spec.key);
  auto second = post(open.spec.key);
  ASSERT_EQ(first.status, 200);
  ASSERT_EQ(second.status, 200);
  auto remaining = [](const HttpResponse& r) {
    auto v = r.headers.get("RateLimit-Remaining");
    return v ? std::stol(std::string(*v)) : -1L;
  };
  EXPECT_GE(remaining(first), 0);
  EXPECT_EQ(remaining(second), remaining(first) - 1);
  EXPECT_EQ(row_of(second)["error_message"], std::nullopt);
  // Replay protection is back too: a new delivery is forwarded once, its copy is a duplicate.
  auto fresh = post(replay.spec.key, body, github_headers(body, "after"));
  EXPECT_EQ(fresh.status, 200);
  EXPECT_EQ(row_of(fresh)["error_message"], std::nullopt);
  auto copy = post(replay.spec.key, body, github_headers(body, "after"));
  EXPECT_EQ(copy.status, 200);
  EXPECT_EQ(copy.body, R"({"status":"duplicate"})");
  EXPECT_EQ(http_request("GET", gateway_->admin_url("/readyz")).status, 200);
}

// --- PostgreSQL -----------------------------------------------------------------------------

class HungPostgresOutage : public HungServicesBase {};

// Verifies DESIGN §3 "the audit writer never blocks a request on PostgreSQL" against a server
// that hangs with the writer's COPY on the wire (every process of the cluster SIGSTOPped, so no
// keepalive or tcp_user_timeout fires): requests keep their latency, rows go to the spool once
// the writer is seen stalled, and after SIGCONT every answered request has exactly one row.
TEST_F(HungPostgresOutage, RequestsKeepTheirLatencyAndEveryOneIsLoggedExactlyOnce) {
  auto t = add(basic_trigger("hung-pg", upstream_.url("/in")));
  start_gateway();

  Timings baseline, during, after;
  std::vector<std::string> ids;
  std::mutex mutex;
  std::atomic<int> failures{0};
  auto record = [&](const HttpResponse& r) {
    if (r.status != 200) ++failures;
    auto id = request_id_of(r);
    std::lock_guard lock(mutex);
    if (!id.empty()) ids.push_back(id);
  };
  for (int i = 0; i < 20; ++i) record(timed_post(baseline, t.spec.key));
  ASSERT_TRUE(wait_for_rows(ids, std::chrono::seconds(10)));
  ASSERT_TRUE(wait_until_gateway_idle()) << "the gateway kept querying PostgreSQL";

  double spooled_during = -1;
  {
    ServiceFreeze freeze(FrozenService::kPostgres);
    ASSERT_TRUE(freeze.frozen()) << "could not freeze PostgreSQL: " << freeze.error();
    // Longer than the writer's stall threshold (2 s), so producers must spool.
    const auto until = Clock::now() + std::chrono::milliseconds(4000);
    std::vector<std::thread> senders;
    std::vector<Timings> per_sender(2);
    for (int s = 0; s < 2; ++s) {
      senders.emplace_back([&, s] {
        while (Clock::now() < until) {
          record(timed_post(per_sender[s], t.spec.key, "{\"n\":1}"));
          std::this_thread::sleep_for(milliseconds(10));
        }
      });
    }
    for (auto& s : senders) s.join();
    for (const auto& s : per_sender) during.ms.insert(during.ms.end(), s.ms.begin(), s.ms.end());
    auto metrics = http_request("GET", gateway_->admin_url("/metrics"), {}, "", 3000);
    spooled_during = metric(metrics.body, "hookguard_audit_rows_spooled_total");
    freeze.resume();
  }
  for (int i = 0; i < 20; ++i) record(timed_post(after, t.spec.key));
  std::printf("[ timings  ] hung PostgreSQL: before %s; frozen %s; after %s\n",
              baseline.summary().c_str(), during.summary().c_str(), after.summary().c_str());

  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(during.ms.size(), 40u) << "too few requests were answered while PostgreSQL hung";
  // "Normal latency": no answer waits for PostgreSQL (whose hang lasted 4 s).
  EXPECT_LT(during.max(), 500) << during.summary();
  EXPECT_LT(during.median(), baseline.median() + 50) << during.summary();
  EXPECT_GT(spooled_during, 0) << "the stalled writer was not detected: nothing was spooled";

  ASSERT_EQ(upstream_.request_count(), ids.size());
  EXPECT_TRUE(wait_for_rows(ids, std::chrono::seconds(20)))
      << "rows missing after PostgreSQL resumed\n"
      << gateway_->log();
  auto [rows, distinct] = rows_for(ids);
  EXPECT_EQ(distinct, static_cast<long>(ids.size()));
  EXPECT_EQ(rows, static_cast<long>(ids.size())) << "some request was logged twice";
  EXPECT_EQ(query_value(db_.dsn(), "SELECT count(*) FROM webhook_event_log"),
            std::to_string(ids.size()));
}

// Verifies that shutdown is bounded while PostgreSQL hangs: SIGTERM drains and exits 0 within
// a few seconds instead of waiting forever on a PostgreSQL call, every answered request is in
// the spool (or already committed), and the next gateway on the same spool replays them
// exactly once after the resume. The audit writer stops first and cuts its hung COPY; the
// trigger reloader closes its session without an UNLISTEN, and any PostgreSQL call still hung
// after the stop grace (2 s) is cut.
TEST_F(HungPostgresOutage, SigtermWhilePostgresHangsExitsInBoundedTimeAndLosesNoRow) {
  auto t = add(basic_trigger("hung-pg-stop", upstream_.url("/in")));
  start_gateway();
  const std::string spool_dir = gateway_->dir() + "/spool";
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(request_id_of(post(t.spec.key)));
  ASSERT_TRUE(wait_for_rows(ids, std::chrono::seconds(10)));
  ASSERT_TRUE(wait_until_gateway_idle()) << "the gateway kept querying PostgreSQL";

  int exit_code = -2;
  long exit_ms = -1;
  {
    ServiceFreeze freeze(FrozenService::kPostgres);
    ASSERT_TRUE(freeze.frozen()) << "could not freeze PostgreSQL: " << freeze.error();
    // Rows before and after the writer's stall threshold: some wait in memory behind the hung
    // COPY, later ones go to the spool directly.
    for (int i = 0; i < 12; ++i) {
      auto r = post(t.spec.key);
      EXPECT_EQ(r.status, 200);
      ids.push_back(request_id_of(r));
      std::this_thread::sleep_for(milliseconds(250));
    }
    const auto start = Clock::now();
    gateway_->signal(SIGTERM);
    exit_code = gateway_->wait_exit(10000);
    exit_ms = ms_since(start);
    freeze.resume();
  }
  std::printf("[ timings  ] SIGTERM with PostgreSQL hung: exit %d after %ld ms\n", exit_code,
              exit_ms);
  EXPECT_EQ(exit_code, 0) << "the gateway did not exit while PostgreSQL hung\n" << gateway_->log();
  // The writer cuts its COPY (hung for longer than stall_spool_after_ms, 2 s, by now) at once;
  // a reload or maintenance call caught by the freeze is cut after its stop grace (2 s).
  EXPECT_LT(exit_ms, 6000);
  ASSERT_EQ(std::count(ids.begin(), ids.end(), std::string()), 0);
  if (exit_code == -1) gateway_->wait_exit(15000);  // it may finish once PostgreSQL resumed

  // A new gateway on the same spool replays what the first one could not write.
  GatewayProcess next(db_.dsn(), "audit: {spool_dir: " + spool_dir + ", flush_interval_ms: 20}\n");
  ASSERT_TRUE(next.start()) << next.log();
  EXPECT_TRUE(wait_for_rows(ids, std::chrono::seconds(20))) << "rows missing after the restart\n"
                                                            << gateway_->log() << "\n--- next ---\n"
                                                            << next.log();
  auto [rows, distinct] = rows_for(ids);
  EXPECT_EQ(distinct, static_cast<long>(ids.size()));
  EXPECT_EQ(rows, static_cast<long>(ids.size())) << "some request was logged twice";
}

}  // namespace
}  // namespace hookguard::testing
