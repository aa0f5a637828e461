// db/audit_writer.cc against the real PostgreSQL of deploy/local while every process of the
// cluster is SIGSTOPped: the writer's COPY is on the wire, the kernel acknowledges it, and no
// keepalive, tcp_user_timeout or connect_timeout ever ends the wait. The suite freezes the
// shared server (label `fault`, run alone); ServiceFreeze always resumes it.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "db/audit_writer.h"
#include "policy/encoding.h"
#include "tests/support/service_freeze.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"
#include "tests/support/wait.h"

namespace hookguard::db {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

using hookguard::testing::TempDir;

std::vector<AuditRow> make_rows(std::size_t n) {
  const std::int64_t base = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
  std::vector<AuditRow> rows(n);
  for (std::size_t i = 0; i < n; ++i) {
    rows[i].created_unix_us = base + static_cast<std::int64_t>(i);
    rows[i].webhook_key = "wh_audit_hung";
    rows[i].request_id = policy::generate_uuid_v4();
    rows[i].method = "POST";
    rows[i].outcome = "forwarded";
    rows[i].status_code = 200;
  }
  return rows;
}

using hookguard::testing::wait_for;

// Rows stored, and distinct request ids among them.
std::pair<std::int64_t, std::int64_t> count_rows(const std::string& dsn) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction tx(conn);
  auto r = tx.exec1("SELECT count(*), count(DISTINCT request_id) FROM webhook_event_log");
  return {r[0].as<std::int64_t>(), r[1].as<std::int64_t>()};
}

// Verifies that stop() is bounded while the writer waits on a hung server: past
// stall_spool_after_ms the hung call is cut, its batch goes to the spool, and once the server
// resumes (and perhaps commits that batch after all) the replay leaves every row exactly once.
TEST(AuditWriterHungOutage, StopCutsACallThatHangsOnAFrozenServerAndLosesNoRow) {
  testing::PgTestDb db;
  TempDir spool;
  auto rows = make_rows(20);
  AuditWriterOptions options;
  options.dsn = db.dsn();
  options.flush_interval_ms = 20;
  options.spool_dir = spool.path();
  options.stall_spool_after_ms = 500;

  long stop_ms = -1;
  {
    AuditWriter writer(options);
    writer.start();
    for (std::size_t i = 0; i < 10; ++i) writer.enqueue(rows[i]);
    ASSERT_TRUE(
        wait_for([&] { return writer.counters().written.load() == 10; }, milliseconds(5000)))
        << "the writer never connected";

    testing::ServiceFreeze freeze(testing::FrozenService::kPostgres);
    ASSERT_TRUE(freeze.frozen()) << "could not freeze PostgreSQL: " << freeze.error();
    for (std::size_t i = 10; i < rows.size(); ++i) writer.enqueue(rows[i]);
    // The writer takes the batch at its next flush and waits for the server's answer.
    std::this_thread::sleep_for(milliseconds(300));

    // stop() runs aside, so that a writer that never returns fails this test instead of
    // hanging it: the freeze then ends and the writer finishes on its own.
    const auto start = Clock::now();
    auto stopped = std::async(std::launch::async, [&] { writer.stop(); });
    const bool in_time = stopped.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
    stop_ms =
        static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - start).count());
    freeze.resume();
    stopped.wait();
    EXPECT_TRUE(in_time) << "stop() still waiting on the hung server after " << stop_ms << " ms";
    EXPECT_EQ(writer.counters().spooled.load(), 10U);
    EXPECT_EQ(writer.counters().dropped.load(), 0U);
  }
  std::printf("[ timings  ] AuditWriter::stop() with PostgreSQL hung: %ld ms\n", stop_ms);
  EXPECT_LT(stop_ms, 2500);

  // The next writer on the same spool replays the batch the first could not confirm.
  AuditWriter next(options);
  next.start();
  EXPECT_TRUE(wait_for(
      [&] {
        try {
          return count_rows(db.dsn()).second == 20;
        } catch (const std::exception&) {
          return false;  // still waking up
        }
      },
      milliseconds(15000)));
  next.stop();
  auto [stored, distinct] = count_rows(db.dsn());
  EXPECT_EQ(distinct, 20);
  EXPECT_EQ(stored, 20) << "a row was stored twice";
}

}  // namespace
}  // namespace hookguard::db
