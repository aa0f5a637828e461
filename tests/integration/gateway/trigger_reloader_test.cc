// gateway/trigger_cache.cc's TriggerReloader against the PostgreSQL of deploy/local: reloads on
// a change, and a stop that is quick when PostgreSQL answers and bounded when a call waits. A
// reload blocked on a table lock stands in for a hung server (HungPostgresOutage freezes one).
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "gateway/trigger_cache.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/test_env.h"
#include "tests/support/wait.h"

namespace hookguard::gateway {
namespace {

using hookguard::testing::ms_since;

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// The reloader's sessions on the test database ("hookguard-triggers", dsn_with_defaults), by
// what they do: "" for all of them.
std::string sessions_sql(const std::string& condition = "") {
  return "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
         " AND application_name = 'hookguard-triggers'" +
         (condition.empty() ? "" : " AND " + condition);
}

using hookguard::testing::wait_for;

policy::SecretBox box() { return *policy::SecretBox::from_base64_key(testing::kTestMasterKey); }

class TriggerReloaderTest : public ::testing::Test {
 protected:
  // Starts the reloader and waits for its LISTEN and first reload.
  void start() {
    reloader_ = std::make_unique<TriggerReloader>(db_.dsn(), box(), cache_, std::chrono::hours(1));
    reloader_->start();
    ASSERT_TRUE(wait_for([&] { return reloader_->connected() && cache_.reloads() >= 1; },
                         std::chrono::seconds(10)));
  }

  testing::PgTestDb db_;
  TriggerCache cache_;
  std::unique_ptr<TriggerReloader> reloader_;
};

// Verifies the normal path: a committed change reaches the cache through the notification, and
// stop() returns within a poll or two (no stop grace waited out), its session gone with it.
TEST_F(TriggerReloaderTest, ReloadsOnAChangeAndStopsQuicklyWhenPostgresAnswers) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto added = testing::insert_trigger(db_.dsn(), testing::basic_trigger("reloaded", "http://u"));
  EXPECT_TRUE(
      wait_for([&] { return cache_.find(added.spec.key) != nullptr; }, std::chrono::seconds(5)))
      << "the change did not reach the cache";
  ASSERT_EQ(testing::query_value(db_.dsn(), sessions_sql()), "1");

  const auto start = Clock::now();
  reloader_->stop();
  const long stop_ms = ms_since(start);
  EXPECT_LT(stop_ms, 1000) << "a stop with PostgreSQL answering took " << stop_ms << " ms";
  EXPECT_TRUE(testing::wait_for_value(db_.dsn(), sessions_sql(), "0", std::chrono::seconds(5)))
      << "the LISTEN session outlived stop()";
}

// Verifies that stop() is bounded while the thread waits inside a PostgreSQL call: a reload
// blocked behind a lock (as one on a hung server would be) is cut after the stop grace, and the
// thread is joined soon after instead of when the lock goes away.
TEST_F(TriggerReloaderTest, StopCutsAReloadThatWaitsPastTheGrace) {
  ASSERT_NO_FATAL_FAILURE(start());
  const auto reloads_before = cache_.reloads();
  pqxx::connection locker(db_.dsn());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE webhook_trigger IN ACCESS EXCLUSIVE MODE");
  testing::query_value(db_.dsn(), "SELECT pg_notify('hookguard_trigger_changed', '0')");
  ASSERT_TRUE(testing::wait_for_value(db_.dsn(), sessions_sql("wait_event_type = 'Lock'"), "1",
                                      std::chrono::seconds(5)))
      << "the reload never blocked on the lock";

  const auto start = Clock::now();
  reloader_->stop();
  const long stop_ms = ms_since(start);
  EXPECT_GE(stop_ms, TriggerReloader::kStopGrace.count() - 50);
  EXPECT_LT(stop_ms, TriggerReloader::kStopGrace.count() + 1000);
  EXPECT_EQ(cache_.reloads(), reloads_before) << "the blocked reload cannot have finished";
  lock.abort();
}

}  // namespace
}  // namespace hookguard::gateway
