// Integration tests of db/audit_writer.cc against the real PostgreSQL of deploy/local.
#include "db/audit_writer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "db/spool.h"
#include "policy/encoding.h"
#include "tests/support/proc_stat.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"
#include "tests/support/wait.h"

namespace hookguard::db {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

using hookguard::testing::TempDir;

std::int64_t now_unix_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Rows with distinct, increasing `created` so that order can be checked by it.
std::vector<AuditRow> make_rows(std::size_t n) {
  const std::int64_t base = now_unix_us();
  std::vector<AuditRow> rows(n);
  for (std::size_t i = 0; i < n; ++i) {
    AuditRow& row = rows[i];
    row.created_unix_us = base + static_cast<std::int64_t>(i);
    row.webhook_key = "wh_audit_test";
    row.request_id = policy::generate_uuid_v4();
    row.delivery_id = "delivery-" + std::to_string(i);
    row.event_type = "push";
    row.source_ip = "203.0.113.7";
    row.peer_ip = "::1";
    row.user_agent = "GitHub-Hookshot/abc";
    row.method = "POST";
    row.payload_size_bytes = static_cast<std::int64_t>(i);
    row.outcome = "forwarded";
    row.status_code = 200;
    row.hmac_verified = true;
    row.ip_allowed = true;
    row.upstream_status = 200;
    row.upstream_ms = 3;
    row.processing_time_ms = 4;
  }
  return rows;
}

AuditWriterOptions options_for(const std::string& dsn, const std::string& spool_dir) {
  AuditWriterOptions o;
  o.dsn = dsn;
  o.batch_size = 1000;
  o.flush_interval_ms = 20;
  o.queue_capacity = 100000;
  o.spool_dir = spool_dir;
  return o;
}

std::int64_t count_rows(const std::string& dsn) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction tx(conn);
  return tx.exec1("SELECT count(*) FROM webhook_event_log")[0].as<std::int64_t>();
}

// Request ids as committed (by id) and as they happened (by created): equal when every row
// was written in the order it was enqueued.
std::pair<std::vector<std::string>, std::vector<std::string>> ids_by_id_and_created(
    const std::string& dsn) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction tx(conn);
  std::vector<std::string> by_id;
  std::vector<std::string> by_created;
  for (const auto& r : tx.exec("SELECT request_id::text FROM webhook_event_log ORDER BY id")) {
    by_id.push_back(r[0].as<std::string>());
  }
  for (const auto& r : tx.exec("SELECT request_id::text FROM webhook_event_log ORDER BY created")) {
    by_created.push_back(r[0].as<std::string>());
  }
  return {by_id, by_created};
}

std::vector<std::string> request_ids(const std::vector<AuditRow>& rows) {
  std::vector<std::string> ids;
  for (const auto& r : rows) ids.push_back(r.request_id);
  return ids;
}

using hookguard::testing::wait_for;

// A loopback port nothing listens on: bound once to get a free number, then released.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A server that accepts TCP connections (the kernel does, from the backlog) and never says a
// word: what a SIGSTOPped PostgreSQL looks like to a client.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(AuditWriter, StoresTenThousandRowsExactlyOnce) {
  testing::PgTestDb db;
  TempDir spool;
  auto rows = make_rows(10000);
  AuditWriter writer(options_for(db.dsn(), spool.path()));
  writer.start();
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& row : rows) writer.enqueue(row);
  writer.stop();
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ info ] 10000 rows enqueued and committed in %.3f s (%.0f rows/s)\n", elapsed,
              10000 / elapsed);

  EXPECT_EQ(count_rows(db.dsn()), 10000);
  EXPECT_EQ(writer.counters().enqueued.load(), 10000U);
  EXPECT_EQ(writer.counters().written.load(), 10000U);
  EXPECT_EQ(writer.counters().spooled.load(), 0U);
  EXPECT_EQ(writer.counters().dropped.load(), 0U);
  auto [by_id, by_created] = ids_by_id_and_created(db.dsn());
  EXPECT_EQ(by_id, request_ids(rows));
  EXPECT_EQ(by_created, request_ids(rows));
}

// Verifies idempotency: the same rows (same request_id and created) written again, once from
// the queue and once by replaying a spool, leave exactly one copy each.
TEST(AuditWriter, ReplayedRowsAreNotDuplicated) {
  testing::PgTestDb db;
  TempDir spool_dir;
  auto rows = make_rows(500);
  {
    AuditWriter writer(options_for(db.dsn(), spool_dir.path()));
    writer.start();
    for (const auto& row : rows) writer.enqueue(row);
    for (const auto& row : rows) writer.enqueue(row);
    writer.stop();
    EXPECT_EQ(writer.counters().written.load(), 500U);
  }
  {
    auto spool = Spool::open(SpoolOptions{spool_dir.path()});
    ASSERT_TRUE(spool.has_value());
    ASSERT_EQ((*spool)->append(rows).value_or(0), 500U);
  }
  AuditWriter writer(options_for(db.dsn(), spool_dir.path()));
  writer.start();
  ASSERT_TRUE(
      wait_for([&] { return writer.counters().replayed.load() == 500; }, milliseconds(10000)));
  writer.stop();
  EXPECT_EQ(writer.counters().written.load(), 0U);
  EXPECT_EQ(count_rows(db.dsn()), 500);
}

TEST(AuditWriter, StoresUserControlledStringsSanitised) {
  testing::PgTestDb db;
  TempDir spool;
  auto rows = make_rows(3);
  rows[0].user_agent = std::string(
      "evil\xFF\x00"
      "agent",
      11);
  rows[1].user_agent = "tab\there\nnewline \\N backslash caf\xC3\xA9";
  rows[2].user_agent = std::string(2000, 'A');
  rows[2].delivery_id = std::string("d\x00", 2) + std::string(400, 'd');
  {
    AuditWriter writer(options_for(db.dsn(), spool.path()));
    writer.start();
    for (const auto& row : rows) writer.enqueue(row);
    writer.stop();
    EXPECT_EQ(writer.counters().quarantined.load(), 0U);
  }
  pqxx::connection conn(db.dsn());
  pqxx::nontransaction tx(conn);
  auto r = tx.exec("SELECT user_agent, delivery_id FROM webhook_event_log ORDER BY created");
  ASSERT_EQ(r.size(), 3U);
  EXPECT_EQ(r[0][0].as<std::string>(),
            "evil\xEF\xBF\xBD\xEF\xBF\xBD"
            "agent");
  EXPECT_EQ(r[1][0].as<std::string>(), "tab\there\nnewline \\N backslash caf\xC3\xA9");
  EXPECT_EQ(r[2][0].as<std::string>(), std::string(512, 'A'));
  EXPECT_EQ(r[2][1].as<std::string>(), "d\xEF\xBF\xBD" + std::string(252, 'd'));
}

TEST(AuditWriter, QuarantinesPoisonRowsAndStoresTheRest) {
  testing::PgTestDb db;
  TempDir spool;
  auto rows = make_rows(100);
  rows[37].request_id = "not-a-uuid";
  rows[60].source_ip = "999.1.1.1";
  {
    AuditWriter writer(options_for(db.dsn(), spool.path()));
    writer.start();
    for (const auto& row : rows) writer.enqueue(row);
    writer.stop();
    EXPECT_EQ(writer.counters().quarantined.load(), 2U);
    EXPECT_EQ(writer.counters().written.load(), 98U);
    EXPECT_EQ(writer.counters().spooled.load(), 0U);
  }
  EXPECT_EQ(count_rows(db.dsn()), 98);
  std::ifstream in(spool.path() + "/quarantine.log");
  std::string all((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(all.find("not-a-uuid"), std::string::npos);
  EXPECT_NE(all.find("999.1.1.1"), std::string::npos);
}

TEST(AuditWriter, StopDrainsTheQueue) {
  testing::PgTestDb db;
  TempDir spool;
  auto options = options_for(db.dsn(), spool.path());
  options.flush_interval_ms = 600000;  // only stop() can make it flush
  options.batch_size = 100000;
  AuditWriter writer(options);
  writer.start();
  for (const auto& row : make_rows(1234)) writer.enqueue(row);
  // Chunks of them may already be in the open COPY (stream_batch); none is committed yet.
  EXPECT_EQ(count_rows(db.dsn()), 0);
  writer.stop();
  writer.stop();  // idempotent
  EXPECT_EQ(writer.queue_depth(), 0U);
  EXPECT_EQ(count_rows(db.dsn()), 1234);
}

// Rows the server has taken into COPYs still running on the test database, by PostgreSQL's
// progress view.
std::int64_t rows_in_open_copies(const std::string& dsn) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction tx(conn);
  return tx
      .exec1(
          "SELECT coalesce(sum(tuples_processed), 0) FROM pg_stat_progress_copy "
          "WHERE datname = current_database()")[0]
      .as<std::int64_t>();
}

// Rows stream into one COPY that stays open for 3 s, whatever the count.
AuditWriterOptions open_copy_options(const std::string& dsn, const std::string& spool_dir) {
  auto options = options_for(dsn, spool_dir);
  options.flush_interval_ms = 3000;
  options.batch_size = 100000;
  return options;
}

// Verifies that rows queued under load go to PostgreSQL a chunk at a time into one open COPY,
// before its transaction commits at the flush (so the server does not take a whole batch in
// one burst), and that the transaction holds them all: one commit, every row once, in order.
TEST(AuditWriter, RowsStreamIntoAnOpenCopyThatCommitsAtTheFlush) {
  testing::PgTestDb db;
  TempDir spool;
  AuditWriter writer(open_copy_options(db.dsn(), spool.path()));
  writer.start();
  auto rows = make_rows(1000);
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& row : rows) writer.enqueue(row);
  // All but what is left below a chunk (< 256 rows, joining at the flush) and what libpq still
  // buffers (it sends COPY data in 8 KiB pieces, some 30 of these rows) reach the server.
  EXPECT_TRUE(wait_for([&] { return rows_in_open_copies(db.dsn()) >= 700; }, milliseconds(2000)))
      << "rows in open COPYs: " << rows_in_open_copies(db.dsn());
  EXPECT_EQ(count_rows(db.dsn()), 0) << "committed before the flush";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(2500));
  EXPECT_TRUE(wait_for([&] { return count_rows(db.dsn()) == 1000; }, milliseconds(6000)));
  EXPECT_EQ(writer.counters().commits.load(), 1U);
  EXPECT_EQ(writer.counters().written.load(), 1000U);
  writer.stop();
  auto [by_id, by_created] = ids_by_id_and_created(db.dsn());
  EXPECT_EQ(by_id, request_ids(rows));
}

// Verifies that a writer with nothing to write sleeps between flushes: after its rows are
// committed, it costs (almost) no CPU while the queue stays empty, across many flush times.
TEST(AuditWriter, AnIdleWriterSleepsBetweenFlushes) {
  testing::PgTestDb db;
  TempDir spool;
  auto options = options_for(db.dsn(), spool.path());  // flush every 20 ms
  AuditWriter writer(options);
  writer.start();
  for (const auto& row : make_rows(300)) writer.enqueue(row);  // a streamed batch, then idle
  ASSERT_TRUE(wait_for([&] { return count_rows(db.dsn()) == 300; }, milliseconds(5000)));
  const long idle_ms = testing::cpu_ms_over(::getpid(), milliseconds(1000));
  EXPECT_LT(idle_ms, 100) << "the writer spun while idle";
  writer.stop();
}

// Verifies that a COPY cut while it is open (its backend terminated between two chunks) loses
// no row and stores none twice: the whole batch is written again on a new connection (or
// spooled and replayed, were PostgreSQL still away).
TEST(AuditWriter, ACopyCutWhileOpenLosesNoRow) {
  testing::PgTestDb db;
  TempDir spool;
  AuditWriter writer(open_copy_options(db.dsn(), spool.path()));
  writer.start();
  auto rows = make_rows(1000);
  for (std::size_t i = 0; i < 600; ++i) writer.enqueue(rows[i]);
  // At least one chunk (256 rows) less what libpq still buffers is in the open COPY.
  ASSERT_TRUE(wait_for([&] { return rows_in_open_copies(db.dsn()) >= 200; }, milliseconds(2500)));
  {
    pqxx::connection conn(db.dsn());
    pqxx::nontransaction tx(conn);
    EXPECT_EQ(tx.exec1("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_progress_copy "
                       "WHERE datname = current_database()")[0]
                  .as<int>(),
              1);
  }
  for (std::size_t i = 600; i < rows.size(); ++i) writer.enqueue(rows[i]);
  EXPECT_TRUE(wait_for([&] { return count_rows(db.dsn()) == 1000; }, milliseconds(15000)))
      << count_rows(db.dsn()) << " rows";
  writer.stop();
  EXPECT_EQ(count_rows(db.dsn()), 1000);
  pqxx::connection conn(db.dsn());
  pqxx::nontransaction tx(conn);
  EXPECT_EQ(tx.exec1("SELECT count(DISTINCT request_id) FROM webhook_event_log")[0].as<int>(),
            1000);
  EXPECT_EQ(writer.counters().dropped.load(), 0U);
}

// Verifies the unreachable-database path: everything goes to the spool (counted), and a later
// writer that can reach PostgreSQL replays it, in order, before anything newer.
TEST(AuditWriter, SpoolsWhilePostgresIsUnreachableAndReplaysInOrder) {
  testing::PgTestDb db;
  TempDir spool;
  auto rows = make_rows(2500);
  {
    auto options = options_for(
        "postgresql://hookguard@127.0.0.1:" + std::to_string(closed_port()) + "/x", spool.path());
    AuditWriter writer(options);
    writer.start();
    for (std::size_t i = 0; i < 2000; ++i) writer.enqueue(rows[i]);
    writer.stop();
    EXPECT_EQ(writer.counters().spooled.load(), 2000U);
    EXPECT_EQ(writer.counters().written.load(), 0U);
    EXPECT_GT(writer.counters().flush_errors.load(), 0U);
  }
  AuditWriter writer(options_for(db.dsn(), spool.path()));
  writer.start();
  for (std::size_t i = 2000; i < rows.size(); ++i) writer.enqueue(rows[i]);
  ASSERT_TRUE(wait_for([&] { return count_rows(db.dsn()) == 2500; }, milliseconds(15000)));
  writer.stop();
  EXPECT_EQ(writer.counters().replayed.load(), 2000U);
  auto [by_id, by_created] = ids_by_id_and_created(db.dsn());
  EXPECT_EQ(by_id, request_ids(rows));
  EXPECT_EQ(by_created, request_ids(rows));
}

TEST(AuditWriter, ProducersSpoolWhenTheQueueIsFull) {
  testing::PgTestDb db;
  TempDir spool;
  auto options = options_for(db.dsn(), spool.path());
  options.queue_capacity = 10;
  AuditWriter writer(options);
  auto rows = make_rows(50);
  for (const auto& row : rows) writer.enqueue(row);  // not started: the queue fills up
  EXPECT_EQ(writer.queue_depth(), 10U);
  EXPECT_EQ(writer.counters().spooled.load(), 40U);
  writer.start();
  ASSERT_TRUE(wait_for([&] { return count_rows(db.dsn()) == 50; }, milliseconds(10000)));
  writer.stop();
  EXPECT_EQ(writer.counters().replayed.load(), 40U);
}

// Verifies the hung-server path (C5 #32): while the writer is stuck talking to a server that
// never answers, producers spool directly instead of piling rows into memory.
TEST(AuditWriter, ProducersSpoolWhileTheWriterHangsOnTheServer) {
  testing::PgTestDb db;
  TempDir spool;
  SilentServer silent;
  auto rows = make_rows(11);
  {
    auto options = options_for(
        "postgresql://hookguard@127.0.0.1:" + std::to_string(silent.port()) + "/x", spool.path());
    options.stall_spool_after_ms = 200;
    AuditWriter writer(options);
    writer.start();
    writer.enqueue(rows[0]);  // the writer takes it and hangs in connect (connect_timeout=2)
    std::this_thread::sleep_for(milliseconds(500));
    for (std::size_t i = 1; i < rows.size(); ++i) writer.enqueue(rows[i]);
    EXPECT_GE(writer.counters().spooled.load(), 9U);
    EXPECT_LE(writer.queue_depth(), 1U);
    writer.stop();
    EXPECT_EQ(writer.counters().spooled.load(), 11U);
  }
  AuditWriter writer(options_for(db.dsn(), spool.path()));
  writer.start();
  ASSERT_TRUE(wait_for([&] { return count_rows(db.dsn()) == 11; }, milliseconds(10000)));
  writer.stop();
}

// Restarts the shared PostgreSQL when the outage test ends, however it ends.
class PostgresRestarter {
 public:
  explicit PostgresRestarter(std::string pg_ctl) : pg_ctl_(std::move(pg_ctl)) {}
  ~PostgresRestarter() {
    if (stopped_) run("start");
  }
  bool stop() {
    stopped_ = true;
    return run("stop");
  }
  bool start() {
    bool ok = run("start");
    stopped_ = !ok;
    return ok;
  }

 private:
  bool run(const std::string& action) {
    std::string cmd = "'" + pg_ctl_ + "' " + action + " >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
  }
  std::string pg_ctl_;
  bool stopped_ = false;
};

// Stops the real, shared PostgreSQL (C5 #31): do not run other integration tests at the same
// time. Rows are spooled during the outage and appear exactly once, in order, after restart.
TEST(AuditWriterOutage, SpoolsWhilePostgresIsStoppedAndReplaysInOrderAfterRestart) {
  const char* pg_ctl = std::getenv("HOOKGUARD_PG_CTL");
  if (pg_ctl == nullptr || *pg_ctl == '\0') GTEST_SKIP() << "HOOKGUARD_PG_CTL not set";
  testing::PgTestDb db;
  TempDir spool;
  PostgresRestarter server(pg_ctl);  // declared after db: restarts before db is dropped
  auto rows = make_rows(3000);
  auto options = options_for(db.dsn(), spool.path());
  options.batch_size = 200;
  AuditWriter writer(options);
  writer.start();
  for (std::size_t i = 0; i < 1000; ++i) writer.enqueue(rows[i]);
  ASSERT_TRUE(
      wait_for([&] { return writer.counters().written.load() == 1000; }, milliseconds(10000)));

  ASSERT_TRUE(server.stop());
  for (std::size_t i = 1000; i < 2500; ++i) {
    writer.enqueue(rows[i]);
    if (i % 100 == 0) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(wait_for([&] { return writer.queue_depth() == 0; }, milliseconds(10000)));
  EXPECT_GT(writer.counters().spooled.load(), 0U);
  EXPECT_GT(writer.counters().flush_errors.load(), 0U);

  ASSERT_TRUE(server.start());
  for (std::size_t i = 2500; i < rows.size(); ++i) writer.enqueue(rows[i]);
  ASSERT_TRUE(wait_for(
      [&] {
        try {
          return count_rows(db.dsn()) == 3000;
        } catch (const std::exception&) {
          return false;
        }
      },
      milliseconds(30000)));
  writer.stop();
  EXPECT_EQ(writer.counters().dropped.load(), 0U);
  EXPECT_EQ(writer.counters().replayed.load(), writer.counters().spooled.load());
  auto [by_id, by_created] = ids_by_id_and_created(db.dsn());
  EXPECT_EQ(by_created, request_ids(rows));
  EXPECT_EQ(by_id, request_ids(rows));
}

}  // namespace
}  // namespace hookguard::db
