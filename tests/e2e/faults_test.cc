// End-to-end fault injection (issue #7): Redis and PostgreSQL stopped and restarted under the
// real gateway, upstreams that refuse, reset, stall or answer too much, and SIGTERM under load.
// Suites named *Outage stop the shared services: they run under the ctest label `fault`, alone.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/http_client.h"
#include "tests/support/test_env.h"
#include "tests/support/upstream_server.h"

namespace hookguard::testing {
namespace {

using hookguard::testing::error_of;
using hookguard::testing::ms_since;
using hookguard::testing::request_id_of;

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// deploy/local's scripts, found from the source tree; HOOKGUARD_PG_CTL wins when set.
std::string deploy_script(const std::string& name) {
  return std::string(HOOKGUARD_SOURCE_DIR) + "/deploy/local/" + name;
}

int run_quiet(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str());
}

enum class Service { kRedis, kPostgres };

// Stops a shared service for the duration of a scope and always starts it again, even when an
// assertion fails half-way: other suites (and PgTestDb's destructor) need it back.
class ServiceOutage {
 public:
  explicit ServiceOutage(Service service) : service_(service) {
    stopped_ = run_quiet(command(false)) == 0;
  }
  ~ServiceOutage() { restore(); }
  ServiceOutage(const ServiceOutage&) = delete;
  ServiceOutage& operator=(const ServiceOutage&) = delete;

  bool stopped() const { return stopped_; }
  /// Starts the service again (waits until it accepts connections); true on success.
  bool restore() {
    if (restored_) return true;
    restored_ = true;
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (run_quiet(command(true)) == 0) return true;
      std::this_thread::sleep_for(milliseconds(500));
    }
    return false;
  }

 private:
  std::string command(bool start) const {
    if (service_ == Service::kPostgres) {
      const char* ctl = std::getenv("HOOKGUARD_PG_CTL");
      std::string script = ctl != nullptr && *ctl != '\0' ? ctl : deploy_script("pg-ctl.sh");
      return script + (start ? " start" : " stop");
    }
    return deploy_script(start ? "start-services.sh" : "stop-services.sh") + " --only redis";
  }

  Service service_;
  bool stopped_ = false;
  bool restored_ = false;
};

// A loopback port with nothing listening on it (bound, then closed).
int closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class FaultsBase : public ::testing::Test {
 protected:
  void start_gateway(const std::string& extra_yaml = "") {
    gateway_ = std::make_unique<GatewayProcess>(db_.dsn(), extra_yaml);
    ASSERT_TRUE(gateway_->start()) << gateway_->log();
  }

  db::StoredTrigger add(policy::TriggerSpec spec) {
    return insert_trigger(db_.dsn(), std::move(spec));
  }

  HttpResponse post(const std::string& key, const std::string& body = "{}",
                    long timeout_ms = 10000) {
    return http_request("POST", gateway_->ingress_url("/webhooks/" + key), {}, body, timeout_ms);
  }

  LogRow row_of(const HttpResponse& r) {
    const auto id = request_id_of(r);
    EXPECT_FALSE(id.empty()) << "no X-Request-Id in the answer: " << r.status << " " << r.body;
    if (id.empty()) return {};
    auto row = wait_for_log_row(db_.dsn(), id);
    EXPECT_TRUE(row.has_value()) << "no log row for " << id;
    return row.value_or(LogRow{});
  }

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
        // PostgreSQL may still be starting up.
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
  }

  PgTestDb db_;
  UpstreamServer upstream_;
  std::unique_ptr<GatewayProcess> gateway_;
};

// --- Redis ----------------------------------------------------------------------------------

class RedisOutage : public FaultsBase {};

// Verifies DESIGN §2 on_store_error for both branches with Redis really stopped, that each
// answer stays bounded (the breaker, not one connect timeout per request), and that the gateway
// recovers by itself once Redis is back.
TEST_F(RedisOutage, OpenTriggerForwardsClosedTriggerGets503AndBothRecoverWithoutRestart) {
  auto open_spec = basic_trigger("rl-open", upstream_.url("/open"));
  open_spec.policy.rate_limit.enabled = true;
  open_spec.policy.rate_limit.requests = 100000;
  open_spec.policy.rate_limit.on_store_error = policy::StoreErrorMode::kOpen;
  auto open = add(open_spec);
  auto closed_spec = basic_trigger("rl-closed", upstream_.url("/closed"));
  closed_spec.policy.rate_limit = open_spec.policy.rate_limit;
  closed_spec.policy.rate_limit.on_store_error = policy::StoreErrorMode::kClosed;
  auto closed = add(closed_spec);
  start_gateway();

  ASSERT_EQ(post(open.spec.key).status, 200);
  ASSERT_EQ(post(closed.spec.key).status, 200);
  const auto forwarded_before = upstream_.request_count();

  {
    ServiceOutage outage(Service::kRedis);
    ASSERT_TRUE(outage.stopped()) << "could not stop Redis";
    for (int i = 0; i < 5; ++i) {
      auto start = Clock::now();
      auto o = post(open.spec.key);
      EXPECT_LT(ms_since(start), 1500) << "open request " << i;
      EXPECT_EQ(o.status, 200) << o.body;
      auto row = row_of(o);
      EXPECT_EQ(row["outcome"], "forwarded");
      ASSERT_TRUE(row["error_message"].has_value());
      EXPECT_NE(row["error_message"]->find("rate_limit_store_error"), std::string::npos)
          << *row["error_message"];

      start = Clock::now();
      auto c = post(closed.spec.key);
      EXPECT_LT(ms_since(start), 1500) << "closed request " << i;
      EXPECT_EQ(c.status, 503) << c.body;
      EXPECT_EQ(error_of(c), "rate_limit_store_error");
      EXPECT_EQ(row_of(c)["outcome"], "rate_limit_store_error");
    }
    // Only the open trigger's requests reached the upstream.
    EXPECT_EQ(upstream_.request_count(), forwarded_before + 5);
    auto ready = http_request("GET", gateway_->admin_url("/readyz"));
    EXPECT_EQ(ready.status, 503) << ready.body;
    EXPECT_NE(ready.body.find("redis"), std::string::npos) << ready.body;
    ASSERT_TRUE(outage.restore()) << "could not start Redis again";
  }

  // Back without a gateway restart: the breaker lets a reconnect through within ~1 s.
  bool recovered = false;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!recovered && Clock::now() < deadline) {
    recovered = post(closed.spec.key).status == 200;
    if (!recovered) std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_TRUE(recovered) << "closed trigger still failing after Redis came back";
  auto o = post(open.spec.key);
  EXPECT_EQ(o.status, 200);
  EXPECT_EQ(row_of(o)["error_message"], std::nullopt);
  EXPECT_EQ(http_request("GET", gateway_->admin_url("/readyz")).status, 200);
}

// --- PostgreSQL -----------------------------------------------------------------------------

class PostgresOutage : public FaultsBase {};

// Verifies that the request path never waits for PostgreSQL (DESIGN §3): webhooks keep being
// forwarded while it is stopped and restarted, and afterwards the spool has replayed every row
// exactly once (counted by the X-Request-Id values the senders got back).
TEST_F(PostgresOutage, GatewayKeepsForwardingAndLogsEveryRequestExactlyOnce) {
  auto t = add(basic_trigger("pg-outage", upstream_.url("/in")));
  start_gateway();

  std::mutex mutex;
  std::vector<std::string> ids;
  std::atomic<int> failures{0}, during_outage{0};
  std::atomic<bool> outage_on{false}, stop{false};
  std::vector<std::thread> senders;
  for (int i = 0; i < 2; ++i) {
    senders.emplace_back([&] {
      while (!stop.load()) {
        auto r = post(t.spec.key, "{\"n\":1}", 5000);
        if (r.status != 200) {
          ++failures;
        } else if (outage_on.load()) {
          ++during_outage;
        }
        auto id = request_id_of(r);
        if (!id.empty()) {
          std::lock_guard lock(mutex);
          ids.push_back(id);
        }
        std::this_thread::sleep_for(milliseconds(10));
      }
    });
  }
  {
    ServiceOutage outage(Service::kPostgres);
    std::this_thread::sleep_for(milliseconds(300));
    if (outage.stopped()) {
      outage_on = true;
      std::this_thread::sleep_for(std::chrono::seconds(2));
      outage_on = false;
    }
    const bool restored = outage.restore();
    std::this_thread::sleep_for(milliseconds(500));
    stop = true;
    for (auto& s : senders) s.join();
    ASSERT_TRUE(outage.stopped()) << "could not stop PostgreSQL";
    ASSERT_TRUE(restored) << "could not start PostgreSQL again";
  }

  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(during_outage.load(), 10) << "too few requests were answered during the outage";
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(upstream_.request_count(), ids.size());
  EXPECT_TRUE(wait_for_rows(ids, std::chrono::seconds(30)))
      << "rows missing after PostgreSQL came back\n"
      << gateway_->log();
  auto [rows, distinct] = rows_for(ids);
  EXPECT_EQ(distinct, static_cast<long>(ids.size()));
  EXPECT_EQ(rows, static_cast<long>(ids.size())) << "some request was logged twice";
  // Nothing else wrote to this database: no stray rows either.
  EXPECT_EQ(query_value(db_.dsn(), "SELECT count(*) FROM webhook_event_log"),
            std::to_string(ids.size()));
}

// --- Upstream failures (no shared service is touched) ---------------------------------------

class UpstreamFaults : public FaultsBase {};

TEST_F(UpstreamFaults, RefusedConnectionGets502Quickly) {
  auto t = add(basic_trigger("refused", "http://127.0.0.1:" + std::to_string(closed_port()) + "/"));
  start_gateway();
  const auto start = Clock::now();
  auto r = post(t.spec.key);
  EXPECT_LT(ms_since(start), 1000);
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(error_of(r), "upstream_error");
  auto row = row_of(r);
  EXPECT_EQ(row["outcome"], "upstream_error");
  EXPECT_EQ(row["status_code"], "502");
  EXPECT_EQ(row["upstream_status"], std::nullopt);
}

// Verifies that a POST the upstream reset is answered 502 and is not silently sent again.
TEST_F(UpstreamFaults, ResetMidResponseGets502AndThePostIsNotRetried) {
  auto t = add(basic_trigger("reset", upstream_.url("/reset")));
  start_gateway();
  auto r = post(t.spec.key);
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(error_of(r), "upstream_error");
  EXPECT_EQ(row_of(r)["outcome"], "upstream_error");
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(upstream_.request_count(), 1u);
}

// Verifies the timeout answer and its timing, and the bulkhead: while four requests of one
// trigger wait on a slow upstream, another trigger is answered at once.
TEST_F(UpstreamFaults, SlowUpstreamGets504AtItsTimeoutAndOtherTriggersAreUnaffected) {
  auto slow_spec = basic_trigger("slow", upstream_.url("/delay/3000"));
  slow_spec.upstream_timeout_ms = 800;
  auto slow = add(slow_spec);
  auto hang_spec = basic_trigger("hang", upstream_.url("/hang"));
  hang_spec.upstream_timeout_ms = 800;
  auto hang = add(hang_spec);
  auto fast = add(basic_trigger("fast", upstream_.url("/fast")));
  start_gateway();

  std::vector<std::thread> waiting;
  std::vector<HttpResponse> slow_answers(4);
  std::vector<long> slow_ms(4);
  for (int i = 0; i < 4; ++i) {
    waiting.emplace_back([&, i] {
      const auto start = Clock::now();
      slow_answers[i] = post(i % 2 ? hang.spec.key : slow.spec.key);
      slow_ms[i] = ms_since(start);
    });
  }
  std::this_thread::sleep_for(milliseconds(200));
  const auto start = Clock::now();
  auto f = post(fast.spec.key);
  const auto fast_ms = ms_since(start);
  for (auto& w : waiting) w.join();

  EXPECT_EQ(f.status, 200);
  EXPECT_LT(fast_ms, 400) << "a slow upstream stalled another trigger";
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(slow_answers[i].status, 504) << slow_answers[i].body;
    EXPECT_EQ(error_of(slow_answers[i]), "upstream_timeout");
    EXPECT_GE(slow_ms[i], 750);
    EXPECT_LT(slow_ms[i], 2500);
    EXPECT_EQ(row_of(slow_answers[i])["outcome"], "upstream_timeout");
  }
}

// Verifies that a trigger whose own timeout outlives the ingress deadline (stored by `apply` or
// SQL, which do not know the ingress timeouts) is cut at upstream.timeout_ms: otherwise Pistache
// answers 408 itself, closes the peer, the log row claims the upstream's 200, and the late
// reply may be written to whichever new connection reused the file descriptor.
TEST_F(UpstreamFaults, TriggerTimeoutBeyondTheIngressDeadlineIsCappedAtUpstreamTimeout) {
  auto spec = basic_trigger("long-timeout", upstream_.url("/delay/2500"));
  spec.upstream_timeout_ms = 5000;
  auto t = add(spec);
  start_gateway(
      "ingress: {address: 127.0.0.1, port: 0, threads: 2, header_timeout_ms: 1500,"
      " body_timeout_ms: 1500}\n"
      "upstream: {timeout_ms: 1000, connect_timeout_ms: 500}\n");
  const auto start = Clock::now();
  auto r = post(t.spec.key);
  const auto elapsed = ms_since(start);
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(error_of(r), "upstream_timeout");
  EXPECT_LT(elapsed, 1450);
  if (r.status == 504) {
    EXPECT_EQ(row_of(r)["outcome"], "upstream_timeout");
  }
}

TEST_F(UpstreamFaults, ResponseLargerThanMaxResponseBytesGets502) {
  auto big = add(basic_trigger("big", upstream_.url("/big/4096")));
  auto small = add(basic_trigger("small", upstream_.url("/big/1000")));
  start_gateway("upstream: {timeout_ms: 5000, max_response_bytes: 2048}\n");
  auto r = post(big.spec.key);
  EXPECT_EQ(r.status, 502) << r.body.substr(0, 200);
  EXPECT_EQ(error_of(r), "upstream_error");
  auto row = row_of(r);
  EXPECT_EQ(row["outcome"], "upstream_error");
  ASSERT_TRUE(row["error_message"].has_value());
  EXPECT_NE(row["error_message"]->find("too large"), std::string::npos) << *row["error_message"];
  auto ok = post(small.spec.key);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body.size(), 1000u);
}

// --- Shutdown -------------------------------------------------------------------------------

// Verifies DESIGN §3 "graceful shutdown drains the queue" under load: every request that got an
// answer (forwarded, or 503 shutting_down during the drain) has its log row, and exit code 0.
TEST_F(UpstreamFaults, SigtermUnderLoadLogsEveryAnsweredRequestAndExitsZero) {
  auto t = add(basic_trigger("drain", upstream_.url("/delay/50")));
  start_gateway();

  std::mutex mutex;
  std::vector<std::string> ids;
  std::atomic<int> answered{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> senders;
  for (int i = 0; i < 4; ++i) {
    senders.emplace_back([&] {
      while (!stop.load()) {
        auto r = post(t.spec.key, "{}", 3000);
        if (r.status == 0) {
          std::this_thread::sleep_for(milliseconds(20));
          continue;  // the listener is gone: nothing was answered, nothing to log
        }
        ++answered;
        auto id = request_id_of(r);
        EXPECT_FALSE(id.empty()) << r.status << " " << r.body;
        std::lock_guard lock(mutex);
        if (!id.empty()) ids.push_back(id);
      }
    });
  }
  std::this_thread::sleep_for(milliseconds(1000));
  gateway_->signal(SIGTERM);
  const int code = gateway_->wait_exit(15000);
  stop = true;
  for (auto& s : senders) s.join();

  EXPECT_EQ(code, 0) << gateway_->log();
  EXPECT_GT(answered.load(), 20);
  EXPECT_TRUE(wait_for_rows(ids, std::chrono::seconds(10))) << "answered requests without a row";
  auto [rows, distinct] = rows_for(ids);
  EXPECT_EQ(rows, static_cast<long>(ids.size()));
  EXPECT_EQ(distinct, static_cast<long>(ids.size()));
}

}  // namespace
}  // namespace hookguard::testing
