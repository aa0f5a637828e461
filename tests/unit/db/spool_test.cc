// Unit tests of db/spool.cc: the on-disk spool of audit rows (real files in a temp dir).
#include "db/spool.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace hookguard::db {
namespace {

namespace fs = std::filesystem;

using hookguard::testing::TempDir;

AuditRow make_row(int i) {
  AuditRow row;
  row.created_unix_us = 1700000000000000 + i;
  row.webhook_key = "wh_test";
  row.request_id = "00000000-0000-4000-8000-" + std::to_string(100000000000 + i);
  row.method = "POST";
  row.outcome = "forwarded";
  row.status_code = 200;
  row.payload_size_bytes = i;
  return row;
}

std::vector<AuditRow> make_rows(int from, int to) {
  std::vector<AuditRow> rows;
  for (int i = from; i < to; ++i) rows.push_back(make_row(i));
  return rows;
}

std::vector<fs::path> spool_files(const std::string& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("spool-", 0) == 0) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Reads everything left in the spool, acking each chunk, in the order replay would see it.
std::vector<AuditRow> drain(Spool& spool, std::size_t chunk_rows = 1000) {
  std::vector<AuditRow> rows;
  for (;;) {
    auto chunk = spool.peek(chunk_rows);
    EXPECT_TRUE(chunk.has_value());
    if (!chunk || chunk->rows.empty()) return rows;
    rows.insert(rows.end(), chunk->rows.begin(), chunk->rows.end());
    EXPECT_TRUE(spool.ack(*chunk).has_value());
  }
}

std::unique_ptr<Spool> open_spool(const std::string& dir, std::uint64_t file_bytes = 64 << 20,
                                  std::uint64_t max_bytes = std::uint64_t{1} << 30) {
  auto spool = Spool::open(SpoolOptions{dir, max_bytes, file_bytes});
  EXPECT_TRUE(spool.has_value()) << (spool ? "" : spool.error().message);
  return spool ? std::move(*spool) : nullptr;
}

TEST(Spool, RoundTripsEveryField) {
  TempDir dir;
  AuditRow full = make_row(7);
  full.trigger_id = 42;
  full.delivery_id = "d-1";
  full.event_type = "push";
  full.source_ip = "2001:db8::1";
  full.peer_ip = "127.0.0.1";
  full.user_agent = "ua\twith\ttabs\nand newline \\ and \xE2\x98\x83";
  full.error_message = "boom";
  full.hmac_verified = false;
  full.rate_limited = true;
  full.ip_allowed = true;
  full.monitor = true;
  full.upstream_status = 502;
  full.upstream_ms = 17;
  full.processing_time_ms = 19;
  AuditRow sparse = make_row(8);

  auto spool = open_spool(dir.path());
  ASSERT_TRUE(spool);
  ASSERT_EQ(spool->append({full, sparse}).value_or(0), 2U);
  std::vector<AuditRow> rows = drain(*spool);
  ASSERT_EQ(rows.size(), 2U);
  const AuditRow& a = rows[0];
  EXPECT_EQ(a.created_unix_us, full.created_unix_us);
  EXPECT_EQ(a.trigger_id, full.trigger_id);
  EXPECT_EQ(a.webhook_key, full.webhook_key);
  EXPECT_EQ(a.request_id, full.request_id);
  EXPECT_EQ(a.delivery_id, full.delivery_id);
  EXPECT_EQ(a.event_type, full.event_type);
  EXPECT_EQ(a.source_ip, full.source_ip);
  EXPECT_EQ(a.peer_ip, full.peer_ip);
  EXPECT_EQ(a.user_agent, full.user_agent);
  EXPECT_EQ(a.method, full.method);
  EXPECT_EQ(a.payload_size_bytes, full.payload_size_bytes);
  EXPECT_EQ(a.outcome, full.outcome);
  EXPECT_EQ(a.status_code, full.status_code);
  EXPECT_EQ(a.error_message, full.error_message);
  EXPECT_EQ(a.hmac_verified, full.hmac_verified);
  EXPECT_EQ(a.rate_limited, full.rate_limited);
  EXPECT_EQ(a.ip_allowed, full.ip_allowed);
  EXPECT_EQ(a.monitor, full.monitor);
  EXPECT_EQ(a.upstream_status, full.upstream_status);
  EXPECT_EQ(a.upstream_ms, full.upstream_ms);
  EXPECT_EQ(a.processing_time_ms, full.processing_time_ms);
  const AuditRow& b = rows[1];
  EXPECT_FALSE(b.trigger_id.has_value());
  EXPECT_FALSE(b.user_agent.has_value());
  EXPECT_FALSE(b.hmac_verified.has_value());
  EXPECT_FALSE(b.upstream_ms.has_value());
  EXPECT_TRUE(spool->empty());
  EXPECT_TRUE(spool_files(dir.path()).empty());
}

// Verifies that a line cut short by a crash (no trailing newline) is skipped and counted,
// the whole lines before it survive, and new appends never glue onto the torn line.
TEST(Spool, SkipsATornLastLineAfterACrash) {
  TempDir dir;
  {
    auto spool = open_spool(dir.path());
    ASSERT_TRUE(spool);
    ASSERT_EQ(spool->append(make_rows(0, 3)).value_or(0), 3U);
  }
  auto files = spool_files(dir.path());
  ASSERT_EQ(files.size(), 1U);
  {
    std::string torn = encode_spool_line(make_row(3));
    std::ofstream out(files[0], std::ios::app | std::ios::binary);
    out << torn.substr(0, torn.size() / 2);
  }
  auto spool = open_spool(dir.path());
  ASSERT_TRUE(spool);
  ASSERT_EQ(spool->append(make_rows(4, 5)).value_or(0), 1U);
  std::vector<AuditRow> rows = drain(*spool);
  ASSERT_EQ(rows.size(), 4U);
  EXPECT_EQ(rows[0].payload_size_bytes, 0);
  EXPECT_EQ(rows[2].payload_size_bytes, 2);
  EXPECT_EQ(rows[3].payload_size_bytes, 4);
  EXPECT_EQ(spool->stats().corrupt, 1U);
}

TEST(Spool, SkipsALineWithABadCrc) {
  TempDir dir;
  {
    auto spool = open_spool(dir.path());
    ASSERT_TRUE(spool);
    ASSERT_EQ(spool->append(make_rows(0, 3)).value_or(0), 3U);
  }
  auto files = spool_files(dir.path());
  ASSERT_EQ(files.size(), 1U);
  std::string content;
  {
    std::ifstream in(files[0], std::ios::binary);
    content.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::size_t second = content.find('\n') + 1;
  std::size_t pos = content.find("\"outcome\"", second);
  ASSERT_NE(pos, std::string::npos);
  content[pos + 1] = 'O';  // a flipped byte inside the second line
  {
    std::ofstream out(files[0], std::ios::trunc | std::ios::binary);
    out << content;
  }
  auto spool = open_spool(dir.path());
  ASSERT_TRUE(spool);
  std::vector<AuditRow> rows = drain(*spool);
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0].payload_size_bytes, 0);
  EXPECT_EQ(rows[1].payload_size_bytes, 2);
  EXPECT_EQ(spool->stats().corrupt, 1U);
}

TEST(Spool, RotatesFilesAndReplaysThemInOrder) {
  TempDir dir;
  // 1 KiB files: each holds a handful of rows, so 200 rows span many files.
  auto spool = open_spool(dir.path(), /*file_bytes=*/1024);
  ASSERT_TRUE(spool);
  for (int i = 0; i < 200; i += 20) ASSERT_EQ(spool->append(make_rows(i, i + 20)).value_or(0), 20U);
  EXPECT_GT(spool_files(dir.path()).size(), 10U);
  EXPECT_EQ(spool->stats().files, spool_files(dir.path()).size());
  std::vector<AuditRow> rows = drain(*spool, /*chunk_rows=*/7);
  ASSERT_EQ(rows.size(), 200U);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(rows[i].payload_size_bytes, i);
  EXPECT_TRUE(spool_files(dir.path()).empty());
}

// Verifies that appends made while a replay is under way land behind the replayed rows.
TEST(Spool, KeepsOrderWhenAppendsInterleaveWithReplay) {
  TempDir dir;
  auto spool = open_spool(dir.path());
  ASSERT_TRUE(spool);
  ASSERT_EQ(spool->append(make_rows(0, 10)).value_or(0), 10U);
  auto first = spool->peek(4);
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->rows.size(), 4U);
  ASSERT_EQ(spool->append(make_rows(10, 15)).value_or(0), 5U);
  ASSERT_TRUE(spool->ack(*first).has_value());
  std::vector<AuditRow> rows = drain(*spool, 3);
  ASSERT_EQ(rows.size(), 11U);
  for (int i = 0; i < 11; ++i) EXPECT_EQ(rows[i].payload_size_bytes, i + 4);
}

TEST(Spool, DeletesAFileOnlyAfterAllItsRowsAreAcknowledged) {
  TempDir dir;
  auto spool = open_spool(dir.path());
  ASSERT_TRUE(spool);
  ASSERT_EQ(spool->append(make_rows(0, 10)).value_or(0), 10U);
  ASSERT_EQ(spool_files(dir.path()).size(), 1U);

  auto a = spool->peek(4);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(spool->ack(*a).has_value());
  auto b = spool->peek(4);
  ASSERT_TRUE(b.has_value());
  ASSERT_TRUE(spool->ack(*b).has_value());
  auto c = spool->peek(4);
  ASSERT_TRUE(c.has_value());
  ASSERT_EQ(c->rows.size(), 2U);
  EXPECT_EQ(spool_files(dir.path()).size(), 1U);  // read, not yet committed
  EXPECT_FALSE(spool->empty());
  ASSERT_TRUE(spool->ack(*c).has_value());
  EXPECT_TRUE(spool_files(dir.path()).empty());
  EXPECT_TRUE(spool->empty());
}

// Verifies that rows read but never acknowledged (a crash before commit) come back.
TEST(Spool, ReplaysUnacknowledgedRowsAfterReopen) {
  TempDir dir;
  {
    auto spool = open_spool(dir.path());
    ASSERT_TRUE(spool);
    ASSERT_EQ(spool->append(make_rows(0, 5)).value_or(0), 5U);
    auto chunk = spool->peek(5);
    ASSERT_TRUE(chunk.has_value());
    ASSERT_EQ(chunk->rows.size(), 5U);
  }
  auto spool = open_spool(dir.path());
  ASSERT_TRUE(spool);
  EXPECT_FALSE(spool->empty());
  EXPECT_EQ(drain(*spool).size(), 5U);
}

TEST(Spool, DropsRowsBeyondMaxBytesAndCountsThem) {
  TempDir dir;
  const std::uint64_t line = encode_spool_line(make_row(0)).size();
  auto spool = open_spool(dir.path(), 64 << 20, /*max_bytes=*/line * 3 + line / 2);
  ASSERT_TRUE(spool);
  auto stored = spool->append(make_rows(0, 5));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(*stored, 3U);
  EXPECT_EQ(spool->stats().dropped, 2U);
  EXPECT_EQ(drain(*spool).size(), 3U);
  // Space comes back once replayed files are deleted.
  EXPECT_EQ(spool->append(make_rows(5, 8)).value_or(0), 3U);
}

TEST(Spool, RefusesADirectoryAnotherSpoolHolds) {
  TempDir dir;
  auto first = open_spool(dir.path());
  ASSERT_TRUE(first);
  auto second = Spool::open(SpoolOptions{dir.path()});
  ASSERT_FALSE(second.has_value());
  EXPECT_NE(second.error().message.find("in use by another process"), std::string::npos);
}

TEST(Spool, WritesQuarantinedRowsWithTheirReason) {
  TempDir dir;
  auto spool = open_spool(dir.path());
  ASSERT_TRUE(spool);
  ASSERT_TRUE(spool->quarantine({{make_row(1), "bad uuid"}, {make_row(2), "bad inet"}}));
  std::ifstream in(dir.path() + "/quarantine.log");
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_NE(line.find("\"error\":\"bad "), std::string::npos) << line;
  }
  EXPECT_EQ(lines, 2);
  EXPECT_TRUE(spool->empty());
}

TEST(SpoolLine, RejectsUnknownVersionAndGarbage) {
  EXPECT_FALSE(decode_spool_line("").has_value());
  EXPECT_FALSE(decode_spool_line("HG9\t00000000\t{}").has_value());
  EXPECT_FALSE(decode_spool_line("HG1\t00000000\t{}").has_value());
  std::string line = encode_spool_line(make_row(1));
  line.pop_back();  // '\n'
  EXPECT_TRUE(decode_spool_line(line).has_value());
}

}  // namespace
}  // namespace hookguard::db
