// db/pg_socket_guard.cc against the PostgreSQL of deploy/local: a call that waits (pg_sleep, a
// lock) stands in for one on a hung server, which only the fault suites can produce.
#include "db/pg_socket_guard.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "tests/support/test_env.h"

namespace hookguard::db {
namespace {

using hookguard::testing::ms_since;

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string select_one(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  return tx.exec1("SELECT 1")[0].c_str();
}

// Verifies the point of the guard: another thread ends a call that would wait for 30 s, and
// the call fails the way a lost connection does.
TEST(PgSocketGuard, CutEndsACallWaitingOnAnotherThread) {
  testing::PgTestDb db;
  PgSocketGuard guard;
  std::atomic<bool> calling{false};
  auto call = std::async(std::launch::async, [&] {
    pqxx::connection conn(db.dsn());
    const PgSocketGuard::Tracked tracked = guard.track(conn);
    calling = true;
    try {
      pqxx::nontransaction tx(conn);
      tx.exec("SELECT pg_sleep(30)");
      return std::string("returned");
    } catch (const pqxx::broken_connection&) {
      return std::string("broken_connection");
    } catch (const std::exception& e) {
      return std::string("other: ") + e.what();
    }
  });
  while (!calling.load()) std::this_thread::sleep_for(milliseconds(10));
  std::this_thread::sleep_for(milliseconds(300));  // let the query reach the server
  ASSERT_EQ(guard.tracked(), 1U);
  const auto start = Clock::now();
  guard.cut();
  ASSERT_EQ(call.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "the call did not end after cut()";
  EXPECT_LT(ms_since(start), 1000);
  EXPECT_EQ(call.get(), "broken_connection");
  EXPECT_EQ(guard.tracked(), 0U) << "the handle's destruction did not release the socket";
}

// Verifies that releasing a handle takes its socket out of the guard: a later cut() must not
// touch a connection that still lives, and the others stay registered until released.
TEST(PgSocketGuard, ReleasedSocketsAreNotCut) {
  testing::PgTestDb db;
  PgSocketGuard guard;
  pqxx::connection kept(db.dsn());
  pqxx::connection other(db.dsn());
  {
    const PgSocketGuard::Tracked tracked = guard.track(kept);
    PgSocketGuard::Tracked moved = guard.track(other);
    PgSocketGuard::Tracked target = std::move(moved);
    EXPECT_EQ(guard.tracked(), 2U);
    target = PgSocketGuard::Tracked();
    EXPECT_EQ(guard.tracked(), 1U);
  }
  EXPECT_EQ(guard.tracked(), 0U);
  guard.cut();
  EXPECT_EQ(select_one(kept), "1");
  EXPECT_EQ(select_one(other), "1");
}

// Verifies wait_or_cut() both ways: a worker that finishes in time is never cut (and nothing
// waits for the grace), one that stays in a call past it is cut and then waited for.
TEST(PgSocketGuard, WaitOrCutCutsOnlyAWorkerThatOutstaysTheGrace) {
  testing::PgTestDb db;
  {
    PgSocketGuard guard;
    pqxx::connection conn(db.dsn());
    const PgSocketGuard::Tracked tracked = guard.track(conn);
    const auto start = Clock::now();
    EXPECT_FALSE(guard.wait_or_cut(milliseconds(2000), [](milliseconds) { return true; }));
    EXPECT_LT(ms_since(start), 100);
    EXPECT_EQ(select_one(conn), "1");
  }

  PgSocketGuard guard;
  std::promise<void> connected;
  auto worker = std::async(std::launch::async, [&] {
    pqxx::connection conn(db.dsn());
    const PgSocketGuard::Tracked tracked = guard.track(conn);
    connected.set_value();
    try {
      pqxx::nontransaction tx(conn);
      tx.exec("SELECT pg_sleep(30)");
    } catch (const std::exception&) {
    }
  });
  connected.get_future().wait();
  const auto start = Clock::now();
  EXPECT_TRUE(guard.wait_or_cut(milliseconds(500), [&](milliseconds timeout) {
    return worker.wait_for(timeout) == std::future_status::ready;
  }));
  const long waited = ms_since(start);
  EXPECT_GE(waited, 500);
  EXPECT_LT(waited, 1500);
  EXPECT_EQ(worker.wait_for(milliseconds(0)), std::future_status::ready);
}

}  // namespace
}  // namespace hookguard::db
