// End-to-end: audit.durability with the real binary. In strict mode an answer leaves only once
// its row is committed (or fdatasync'd in the spool), so a SIGKILL loses no answered row; async
// answers first and can lose the rows still queued in memory.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"
#include "tests/support/upstream_server.h"

namespace hookguard::testing {
namespace {

using hookguard::testing::metric;

using hookguard::testing::request_id_of;

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Holds a SHARE lock on webhook_event_log while it lives: reads go on, but no COPY into the
// table can finish, so no log row can be committed.
class LogTableLock {
 public:
  explicit LogTableLock(const std::string& dsn) : conn_(dsn), tx_(conn_) {
    tx_.exec0("LOCK TABLE webhook_event_log IN SHARE MODE");
  }
  void release() { tx_.commit(); }

 private:
  pqxx::connection conn_;
  pqxx::work tx_;
};

class AuditDurabilityE2E : public ::testing::Test {
 protected:
  // The test's own spool (it outlives a killed gateway) and a flush interval no test waits
  // for: in async mode only a full batch (1000 rows) or a shutdown writes rows, so a row found
  // in the table right after its answer was written for that answer.
  std::unique_ptr<GatewayProcess> start_gateway(const std::string& durability) {
    auto gateway = std::make_unique<GatewayProcess>(
        db_.dsn(), "audit: {spool_dir: " + spool_.path() +
                       ", flush_interval_ms: 60000, durability: " + durability + "}");
    EXPECT_TRUE(gateway->start()) << gateway->log();
    return gateway;
  }

  long rows_for(const std::string& request_id) {
    return std::stol(query_value(
        db_.dsn(),
        "SELECT count(*) FROM webhook_event_log WHERE request_id = '" + request_id + "'"));
  }

  // How many of `ids` have a row, counting duplicates.
  long rows_for(const std::vector<std::string>& ids) {
    if (ids.empty()) return 0;
    std::string list = "'{";
    for (std::size_t i = 0; i < ids.size(); ++i) list += (i ? "," : "") + ids[i];
    list += "}'::uuid[]";
    return std::stol(query_value(
        db_.dsn(), "SELECT count(*) FROM webhook_event_log WHERE request_id = ANY(" + list + ")"));
  }

  long distinct_rows_for(const std::vector<std::string>& ids) {
    std::string list = "'{";
    for (std::size_t i = 0; i < ids.size(); ++i) list += (i ? "," : "") + ids[i];
    list += "}'::uuid[]";
    return std::stol(query_value(
        db_.dsn(),
        "SELECT count(DISTINCT request_id) FROM webhook_event_log WHERE request_id = ANY(" + list +
            ")"));
  }

  // Posts from `senders` threads until SIGKILL ends the gateway (sent once `answered_before_kill`
  // answers arrived, or after 20 s); returns the ids of every answered request.
  std::vector<std::string> answered_then_killed(GatewayProcess& gateway, const std::string& key,
                                                int senders, int answered_before_kill) {
    std::mutex mutex;
    std::vector<std::string> ids;
    std::atomic<bool> killed{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < senders; ++i) {
      threads.emplace_back([&] {
        while (!killed.load()) {
          auto r = http_request("POST", gateway.ingress_url("/webhooks/" + key), {}, "{}", 3000);
          if (r.status == 0) continue;  // no answer: nothing was promised
          EXPECT_EQ(r.status, 200) << r.body;
          std::lock_guard lock(mutex);
          ids.push_back(request_id_of(r));
        }
      });
    }
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(mutex);
        if (static_cast<int>(ids.size()) >= answered_before_kill) break;
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    gateway.signal(SIGKILL);  // senders are still posting: the kill lands mid-burst
    EXPECT_NE(gateway.wait_exit(10000), 0);
    killed = true;
    for (auto& t : threads) t.join();
    return ids;
  }

  PgTestDb db_;
  UpstreamServer upstream_;
  TempDir spool_;
};

// Verifies the strict promise on the wire: the moment each answer arrives (forwarded, or a
// rejection: 404 unknown key, 405 wrong method), its row is already in webhook_event_log.
TEST_F(AuditDurabilityE2E, StrictAnswerArrivesOnlyAfterItsRowIsInTheLog) {
  auto t = insert_trigger(db_.dsn(), basic_trigger("strict", upstream_.url("/")));
  auto gateway = start_gateway("strict");
  ASSERT_GT(gateway->ingress_port(), 0);
  for (int i = 0; i < 30; ++i) {
    HttpResponse r;
    int expected = 200;
    if (i % 3 == 0) {
      r = http_request("POST", gateway->ingress_url("/webhooks/" + t.spec.key), {}, "{}");
    } else if (i % 3 == 1) {
      r = http_request("GET", gateway->ingress_url("/webhooks/" + t.spec.key));
      expected = 405;
    } else {
      r = http_request("POST", gateway->ingress_url("/webhooks/wh_unknownunknownunknown0000"), {},
                       "{}");
      expected = 404;
    }
    ASSERT_EQ(r.status, expected) << r.body;
    const std::string id = request_id_of(r);
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(rows_for(id), 1) << "answer " << i << " (" << r.status << ") arrived before its row";
  }
  const auto metrics = http_request("GET", gateway->admin_url("/metrics"));
  EXPECT_EQ(metric(metrics.body, "hookguard_audit_durable_waits_total"), 30);
  EXPECT_GT(metric(metrics.body, "hookguard_audit_durable_wait_seconds_total"), 0);
  EXPECT_EQ(metric(metrics.body, "hookguard_audit_durable_rescues_total"), 0);
  EXPECT_EQ(gateway->stop(), 0) << gateway->log();
}

// Verifies the strict promise deterministically: while PostgreSQL cannot commit the row (the
// table is locked), the answer is held; it arrives once the lock goes, with the row in place.
TEST_F(AuditDurabilityE2E, StrictAnswerIsHeldWhileItsRowCannotBeCommitted) {
  auto t = insert_trigger(db_.dsn(), basic_trigger("strict-held", upstream_.url("/")));
  auto gateway = start_gateway("strict");
  ASSERT_GT(gateway->ingress_port(), 0);
  auto lock = std::make_unique<LogTableLock>(db_.dsn());
  const auto t0 = Clock::now();
  auto answer = std::async(std::launch::async, [&] {
    return http_request("POST", gateway->ingress_url("/webhooks/" + t.spec.key), {}, "{}", 10000);
  });
  // Well inside the 1000 ms after which the watchdog would spool the row and answer.
  EXPECT_EQ(answer.wait_for(milliseconds(300)), std::future_status::timeout)
      << "answered while its row could not be committed";
  lock->release();
  const HttpResponse r = answer.get();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(rows_for(request_id_of(r)), 1);
  std::printf(
      "[ info ] answered %lld ms after sending, the lock held for 300 ms\n",
      static_cast<long long>(std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count()));
  EXPECT_EQ(gateway->stop(), 0) << gateway->log();
}

// Verifies the bound on the wait (kStrictAuditWaitMs): when the commit hangs, the row is
// fdatasync'd to the spool after about a second and the answer goes out; once PostgreSQL
// moves again the row is stored exactly once (the hung COPY and the replay do not double it).
TEST_F(AuditDurabilityE2E, StrictAnswerIsReleasedThroughTheSpoolWhenTheCommitHangs) {
  auto t = insert_trigger(db_.dsn(), basic_trigger("strict-hung", upstream_.url("/")));
  auto gateway = start_gateway("strict");
  ASSERT_GT(gateway->ingress_port(), 0);
  LogTableLock lock(db_.dsn());
  const auto t0 = Clock::now();
  auto r = http_request("POST", gateway->ingress_url("/webhooks/" + t.spec.key), {}, "{}", 10000);
  const auto waited = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(waited, 900) << "answered before the row was durable anywhere";
  EXPECT_LT(waited, 5000) << "the wait was not bounded";
  const std::string id = request_id_of(r);
  EXPECT_EQ(rows_for(id), 0);  // still locked: the row can only be in the spool
  const auto metrics = http_request("GET", gateway->admin_url("/metrics"));
  EXPECT_EQ(metric(metrics.body, "hookguard_audit_durable_rescues_total"), 1);
  EXPECT_EQ(metric(metrics.body, "hookguard_audit_rows_spooled_total"), 1);
  lock.release();
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (rows_for(id) == 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(gateway->stop(), 0) << gateway->log();
  EXPECT_EQ(rows_for(id), 1);
}

// Verifies that async keeps its behaviour: the answer does not wait for the row (with this
// flush interval the row is not written yet when the answer arrives), and the row is written
// by the graceful shutdown.
TEST_F(AuditDurabilityE2E, AsyncAnswersFirstAndWritesTheRowLater) {
  auto t = insert_trigger(db_.dsn(), basic_trigger("async", upstream_.url("/")));
  auto gateway = start_gateway("async");
  ASSERT_GT(gateway->ingress_port(), 0);
  auto r = http_request("POST", gateway->ingress_url("/webhooks/" + t.spec.key), {}, "{}");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string id = request_id_of(r);
  EXPECT_EQ(rows_for(id), 0) << "async answered only after writing the row";
  const auto metrics = http_request("GET", gateway->admin_url("/metrics"));
  EXPECT_EQ(metric(metrics.body, "hookguard_audit_durable_waits_total"), 0);
  EXPECT_EQ(gateway->stop(), 0) << gateway->log();
  EXPECT_EQ(rows_for(id), 1);
}

// Verifies the README's strict guarantee under SIGKILL: every request answered before the kill
// has its row, either committed already or in the spool, which the next gateway replays.
TEST_F(AuditDurabilityE2E, StrictSigkillLosesNoAnsweredRow) {
  auto t = insert_trigger(db_.dsn(), basic_trigger("strict-kill", upstream_.url("/")));
  std::vector<std::string> ids;
  {
    auto gateway = start_gateway("strict");
    ASSERT_GT(gateway->ingress_port(), 0);
    ids = answered_then_killed(*gateway, t.spec.key, 8, 300);
  }
  ASSERT_GE(ids.size(), 300U);
  const long before_replay = distinct_rows_for(ids);
  std::printf("[ info ] %zu answered before SIGKILL; %ld rows committed, the rest in the spool\n",
              ids.size(), before_replay);

  auto restarted = start_gateway("strict");  // same spool: replays what the killed one kept
  ASSERT_GT(restarted->ingress_port(), 0);
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (distinct_rows_for(ids) < static_cast<long>(ids.size()) && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(distinct_rows_for(ids), static_cast<long>(ids.size()))
      << "answered requests without a row after SIGKILL";
  EXPECT_EQ(rows_for(ids), static_cast<long>(ids.size())) << "some row was written twice";
  EXPECT_EQ(restarted->stop(), 0) << restarted->log();
}

// Verifies what the README says async can lose: rows still queued in memory when the process
// is killed. With this flush interval every answered row is still queued, so all are lost.
TEST_F(AuditDurabilityE2E, AsyncSigkillLosesTheRowsStillQueued) {
  auto t = insert_trigger(db_.dsn(), basic_trigger("async-kill", upstream_.url("/")));
  std::vector<std::string> ids;
  {
    auto gateway = start_gateway("async");
    ASSERT_GT(gateway->ingress_port(), 0);
    ids = answered_then_killed(*gateway, t.spec.key, 4, 50);
  }
  ASSERT_GE(ids.size(), 50U);
  auto restarted = start_gateway("async");
  ASSERT_GT(restarted->ingress_port(), 0);
  EXPECT_EQ(restarted->stop(), 0) << restarted->log();
  EXPECT_EQ(rows_for(ids), 0) << "async rows survived a SIGKILL: the README's loss model is off";
}

}  // namespace
}  // namespace hookguard::testing
