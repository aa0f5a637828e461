// gateway/maintenance_loop.cc against the PostgreSQL of deploy/local: stop() between runs is
// immediate, and a run that waits inside PostgreSQL (here behind the advisory lock the
// maintenance functions take, standing in for a hung server) is cut after the stop grace.
#include "gateway/maintenance_loop.h"

#include <gtest/gtest.h>

#include <chrono>
#include <pqxx/pqxx>
#include <string>

#include "tests/support/fixtures.h"
#include "tests/support/test_env.h"

namespace hookguard::gateway {
namespace {

using hookguard::testing::ms_since;

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// The loop's sessions on the test database ("hookguard-maintenance", dsn_with_defaults).
std::string sessions_sql(const std::string& condition) {
  return "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
         " AND application_name = 'hookguard-maintenance' AND " +
         condition;
}

// Verifies that a stop between runs neither waits for the interval nor for the stop grace.
TEST(MaintenanceLoop, StopBetweenRunsReturnsAtOnce) {
  testing::PgTestDb db;
  db::MaintenanceOptions options;
  options.dsn = db.dsn();
  MaintenanceLoop loop(*db::Maintenance::create(options), std::chrono::hours(1));
  loop.start();
  // The first run has rolled up once rolled_up_at is set, and has ended once its session left.
  ASSERT_TRUE(testing::wait_for_value(
      db.dsn(), "SELECT rolled_up_at IS NOT NULL FROM webhook_rollup_state", "t"));
  ASSERT_TRUE(testing::wait_for_value(db.dsn(), sessions_sql("true"), "0"));
  const auto start = Clock::now();
  loop.stop();
  EXPECT_LT(ms_since(start), 500);
}

// Verifies that stop() is bounded while a run waits inside PostgreSQL: the run's connection is
// cut after the stop grace, and the loop's thread is joined without the lock ever going away.
TEST(MaintenanceLoop, StopCutsARunThatWaitsPastTheGrace) {
  testing::PgTestDb db;
  pqxx::connection holder(db.dsn());
  {
    pqxx::nontransaction tx(holder);
    tx.exec("SELECT pg_advisory_lock(hashtext('hookguard_ensure_partitions'))");
  }
  db::MaintenanceOptions options;
  options.dsn = db.dsn();
  MaintenanceLoop loop(*db::Maintenance::create(options), std::chrono::hours(1));
  loop.start();
  ASSERT_TRUE(testing::wait_for_value(db.dsn(), sessions_sql("wait_event_type = 'Lock'"), "1"))
      << "the run never blocked on the lock";

  const auto start = Clock::now();
  loop.stop();
  const long stop_ms = ms_since(start);
  EXPECT_GE(stop_ms, MaintenanceLoop::kStopGrace.count() - 50);
  EXPECT_LT(stop_ms, MaintenanceLoop::kStopGrace.count() + 1000);
  pqxx::nontransaction tx(holder);
  tx.exec("SELECT pg_advisory_unlock_all()");
}

}  // namespace
}  // namespace hookguard::gateway
