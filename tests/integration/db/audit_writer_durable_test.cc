// Integration tests of AuditWriter::enqueue(row, durable), the strict durability mode, against
// the real PostgreSQL of deploy/local: a callback runs only once its row is committed or
// fdatasync'd in the spool, rows that wait are committed together, and nobody waits forever.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "db/audit_writer.h"
#include "policy/encoding.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"
#include "tests/support/wait.h"

namespace hookguard::db {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

using hookguard::testing::TempDir;

AuditRow make_row() {
  AuditRow row;
  row.created_unix_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  row.webhook_key = "wh_durable_test";
  row.request_id = policy::generate_uuid_v4();
  row.method = "POST";
  row.outcome = "forwarded";
  row.status_code = 200;
  return row;
}

AuditWriterOptions options_for(const std::string& dsn, const std::string& spool_dir) {
  AuditWriterOptions o;
  o.dsn = dsn;
  o.batch_size = 1000;
  // Far beyond every wait below: a row with a callback must not wait for the flush interval.
  o.flush_interval_ms = 600000;
  o.spool_dir = spool_dir;
  return o;
}

long rows_with_id(const std::string& dsn, const std::string& request_id) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction tx(conn);
  return tx
      .exec_params1("SELECT count(*) FROM webhook_event_log WHERE request_id = $1::uuid",
                    request_id)[0]
      .as<long>();
}

long count_rows(const std::string& dsn) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction tx(conn);
  return tx.exec1("SELECT count(*) FROM webhook_event_log")[0].as<long>();
}

// Every line of every spool file in `dir` (not quarantine.log).
std::string spool_text(const std::string& dir) {
  std::string all;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("spool-", 0) != 0) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), {});
  }
  return all;
}

std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Enqueues `row` with a callback that records what `probe` returns at that moment, and waits
// for it at most 10 s. `probe` runs on the writer's threads, maybe after this returned: it
// must capture by value.
template <class Probe>
auto enqueue_and_wait(AuditWriter& writer, const AuditRow& row, Probe probe)
    -> std::optional<decltype(probe())> {
  auto result = std::make_shared<std::promise<decltype(probe())>>();
  auto future = result->get_future();
  writer.enqueue(row, [result, probe] { result->set_value(probe()); });
  if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return std::nullopt;
  return future.get();
}

// A loopback port nothing listens on: bound once to get a free number, then released.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Accepts TCP connections (from the backlog) and never answers: a hung PostgreSQL.
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

std::string unreachable_dsn(int port) {
  return "postgresql://hookguard@127.0.0.1:" + std::to_string(port) + "/x";
}

// Verifies the strict promise against PostgreSQL itself: when the callback runs, another
// connection already sees the row (committed, not merely sent).
TEST(DurableAuditWriter, CallbackRunsOnlyOnceAnotherConnectionSeesTheRow) {
  testing::PgTestDb db;
  TempDir spool;
  AuditWriter writer(options_for(db.dsn(), spool.path()));
  writer.start();
  for (int i = 0; i < 5; ++i) {
    const AuditRow row = make_row();
    const auto t0 = Clock::now();
    const auto seen = enqueue_and_wait(
        writer, row, [dsn = db.dsn(), id = row.request_id] { return rows_with_id(dsn, id); });
    ASSERT_TRUE(seen) << "the callback did not run (did the row wait for flush_interval_ms?)";
    EXPECT_EQ(*seen, 1) << "callback ran before the row was visible";
    std::printf("[ info ] row %d durable after %.1f ms\n", i,
                std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  writer.stop();
  EXPECT_EQ(writer.counters().durable_waits.load(), 5U);
  EXPECT_EQ(writer.counters().written.load(), 5U);
  EXPECT_EQ(writer.counters().spooled.load(), 0U);
  EXPECT_EQ(writer.counters().durable_rescued.load(), 0U);
}

// Verifies that a sender waiting for its row does not wait for an open COPY (ordinary rows
// streamed into it, the flush far away) to reach its flush: the COPY ends and the row is
// committed at once, well inside the watchdog's bound, with every row before it.
TEST(DurableAuditWriter, AWaitingSenderEndsTheOpenCopyAtOnce) {
  testing::PgTestDb db;
  TempDir spool;
  auto options = options_for(db.dsn(), spool.path());
  options.batch_size = 100000;
  AuditWriter writer(options);
  writer.start();
  for (int i = 0; i < 600; ++i) writer.enqueue(make_row());
  ASSERT_TRUE(testing::wait_for([&] { return writer.queue_depth() < 256; }, milliseconds(5000)))
      << "the writer took no chunk into a COPY";
  const AuditRow row = make_row();
  const auto t0 = Clock::now();
  const auto seen = enqueue_and_wait(
      writer, row, [dsn = db.dsn(), id = row.request_id] { return rows_with_id(dsn, id); });
  const auto waited = Clock::now() - t0;
  ASSERT_TRUE(seen) << "the callback did not run";
  EXPECT_EQ(*seen, 1);
  EXPECT_LT(waited, milliseconds(options.durable_wait_max_ms * 8 / 10));
  EXPECT_EQ(writer.counters().durable_rescued.load(), 0U);
  EXPECT_EQ(count_rows(db.dsn()), 601);
  writer.stop();
  EXPECT_EQ(count_rows(db.dsn()), 601);
  EXPECT_EQ(writer.counters().spooled.load(), 0U);
}

// Verifies the other half of the promise: with PostgreSQL unreachable, the callback runs only
// once the spool file holds the row, and a later writer replays it into the table.
TEST(DurableAuditWriter, WithPostgresUnreachableCallbackRunsOnceTheSpoolHoldsTheRow) {
  testing::PgTestDb db;
  TempDir spool;
  std::vector<std::string> ids;
  {
    AuditWriter writer(options_for(unreachable_dsn(closed_port()), spool.path()));
    writer.start();
    for (int i = 0; i < 3; ++i) {
      const AuditRow row = make_row();
      ids.push_back(row.request_id);
      const auto in_spool = enqueue_and_wait(
          writer, row,
          [dir = spool.path(), id = row.request_id] { return occurrences(spool_text(dir), id); });
      ASSERT_TRUE(in_spool);
      EXPECT_EQ(*in_spool, 1U) << "callback ran before the spool held the row";
    }
    writer.stop();
    EXPECT_EQ(writer.counters().spooled.load(), 3U);
    EXPECT_EQ(writer.counters().durable_waits.load(), 3U);
  }
  AuditWriter writer(options_for(db.dsn(), spool.path()));
  writer.start();
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (count_rows(db.dsn()) < 3 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  writer.stop();
  for (const auto& id : ids) EXPECT_EQ(rows_with_id(db.dsn(), id), 1) << id;
}

// Verifies group commit: many senders each waiting for their own row share transactions, so
// there are far fewer commits than rows (one commit per row would fail this).
TEST(DurableAuditWriter, ManySendersShareCommits) {
  testing::PgTestDb db;
  TempDir spool;
  AuditWriter writer(options_for(db.dsn(), spool.path()));
  writer.start();
  constexpr int kSenders = 16;
  constexpr int kRowsEach = 100;
  std::atomic<int> late{0};
  std::vector<std::thread> senders;
  const auto t0 = Clock::now();
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&] {
      for (int i = 0; i < kRowsEach; ++i) {
        if (!enqueue_and_wait(writer, make_row(), [] { return true; })) {
          ++late;
          return;
        }
      }
    });
  }
  for (auto& s : senders) s.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  writer.stop();
  ASSERT_EQ(late.load(), 0);
  const auto total = static_cast<std::uint64_t>(kSenders * kRowsEach);
  const auto commits = writer.counters().commits.load();
  std::printf("[ info ] %llu rows, %llu commits (%.1f rows per commit), %.0f rows/s\n",
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(commits),
              static_cast<double>(total) / static_cast<double>(commits ? commits : 1),
              static_cast<double>(total) / seconds);
  EXPECT_EQ(count_rows(db.dsn()), static_cast<long>(total));
  EXPECT_EQ(writer.counters().durable_waits.load(), total);
  EXPECT_GT(commits, 0U);
  EXPECT_LE(commits * 2, total) << "rows waiting together were not committed together";
}

// Verifies the bound on the wait: while the writer hangs on a server that never answers (its
// connect alone takes connect_timeout = 2 s), the watchdog spools the row and runs the
// callback after durable_wait_max_ms; the writer does not spool it a second time.
TEST(DurableAuditWriter, AStuckWriterStillAnswersWithinTheBound) {
  TempDir spool;
  SilentServer silent;
  auto options = options_for(unreachable_dsn(silent.port()), spool.path());
  options.durable_wait_max_ms = 300;
  AuditWriter writer(options);
  writer.start();
  const AuditRow row = make_row();
  const auto t0 = Clock::now();
  const auto in_spool = enqueue_and_wait(writer, row, [dir = spool.path(), id = row.request_id] {
    return occurrences(spool_text(dir), id);
  });
  ASSERT_TRUE(in_spool);
  const auto waited = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  EXPECT_EQ(*in_spool, 1U) << "callback ran before the spool held the row";
  EXPECT_GE(waited, 300);
  EXPECT_LT(waited, 1500) << "the callback waited for the writer, not for the watchdog";
  EXPECT_EQ(writer.counters().durable_rescued.load(), 1U);
  writer.stop();  // the writer's connect fails meanwhile: it must not spool the row again
  EXPECT_EQ(occurrences(spool_text(spool.path()), row.request_id), 1U);
  EXPECT_EQ(writer.counters().durable_waits.load(), 1U);
}

// Verifies that nobody waits forever: even when the row cannot be kept anywhere (the spool is
// full and PostgreSQL unreachable), the callback runs, and the loss is counted.
TEST(DurableAuditWriter, CallbackRunsEvenWhenTheRowIsLost) {
  TempDir spool;
  auto options = options_for(unreachable_dsn(closed_port()), spool.path());
  options.spool_max_bytes = 10;  // no spool line fits
  AuditWriter writer(options);
  writer.start();
  ASSERT_TRUE(enqueue_and_wait(writer, make_row(), [] { return true; }));
  writer.stop();
  EXPECT_EQ(writer.counters().dropped.load(), 1U);
  EXPECT_EQ(writer.counters().spooled.load(), 0U);
}

// Verifies that stop() answers rows still queued (here: a writer that never started) after
// spooling them, and that rows enqueued after stop() are spooled and answered at once.
TEST(DurableAuditWriter, StopAnswersQueuedRowsAndLaterRowsAreAnsweredFromTheSpool) {
  TempDir spool;
  auto options = options_for(unreachable_dsn(closed_port()), spool.path());
  options.durable_wait_max_ms = 600000;  // only stop() can answer the queued row
  std::atomic<std::size_t> queued_in_spool{99};
  std::atomic<std::size_t> late_in_spool{99};
  AuditWriter writer(options);
  const AuditRow queued = make_row();
  writer.enqueue(
      queued, [&] { queued_in_spool = occurrences(spool_text(spool.path()), queued.request_id); });
  EXPECT_EQ(queued_in_spool.load(), 99U) << "answered before stop()";
  writer.stop();
  EXPECT_EQ(queued_in_spool.load(), 1U);

  const AuditRow late = make_row();
  writer.enqueue(late,
                 [&] { late_in_spool = occurrences(spool_text(spool.path()), late.request_id); });
  EXPECT_EQ(late_in_spool.load(), 1U) << "a row enqueued after stop() must be answered at once";
  EXPECT_EQ(writer.counters().durable_waits.load(), 2U);
}

}  // namespace
}  // namespace hookguard::db
