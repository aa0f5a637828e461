// Integration tests of db/maintenance.cc: partitions ahead, rollups, retention of the log and of
// the rollups, against the PostgreSQL of deploy/local.
#include "db/maintenance.h"

#include <gtest/gtest.h>

#include <chrono>
#include <pqxx/pqxx>
#include <string>

#include "tests/support/test_env.h"

namespace hookguard::db {
namespace {

using std::chrono::hours;
using std::chrono::system_clock;

constexpr hours kDay{24};

std::int64_t scalar(pqxx::connection& conn, const std::string& sql) {
  pqxx::work tx(conn);
  const auto v = tx.exec1(sql)[0].as<std::int64_t>();
  tx.commit();
  return v;
}

void run(pqxx::connection& conn, const std::string& sql) {
  pqxx::work tx(conn);
  tx.exec(sql);
  tx.commit();
}

std::string day_offset_sql(int days) {
  return "((now() AT TIME ZONE 'UTC')::date + " + std::to_string(days) + ")";
}

std::int64_t partitions_named(pqxx::connection& conn, int day_offset) {
  return scalar(conn,
                "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'webhook_event_log'::regclass AND c.relname ="
                " 'webhook_event_log_' || to_char(" +
                    day_offset_sql(day_offset) + ", 'YYYYMMDD')");
}

// Five requests at noon UTC on each day offset in [from, to].
void insert_days(pqxx::connection& conn, int from, int to) {
  run(conn,
      "INSERT INTO webhook_event_log (created, trigger_id, request_id, outcome, status_code,"
      " processing_time_ms) SELECT (((now() AT TIME ZONE 'UTC')::date + d)::timestamp"
      " + interval '12 hours' + k * interval '1 minute') AT TIME ZONE 'UTC', 1,"
      " gen_random_uuid(), 'forwarded', 200, 10 + k FROM generate_series(" +
          std::to_string(from) + ", " + std::to_string(to) + ") d, generate_series(1, 5) k");
}

MaintenanceOptions options_for(const testing::PgTestDb& db) {
  MaintenanceOptions options;
  options.dsn = db.dsn();
  return options;
}

// Verifies that maintenance keeps partitions a week ahead of the clock it is given, so that rows
// for today .. today+6 never land in the default partition.
TEST(Maintenance, CreatesPartitionsAheadSoTheDefaultPartitionStaysEmpty) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  auto maintenance = Maintenance::create(options_for(db));
  ASSERT_TRUE(maintenance) << maintenance.error().message;

  // 30 days on: the migration's partitions do not reach that far; maintenance must make them.
  EXPECT_EQ(partitions_named(conn, 30), 0);
  auto report = maintenance->run_once(system_clock::now() + 30 * kDay);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->partitions_created, 9);  // today+29 .. today+37
  for (int d = 29; d <= 37; ++d) EXPECT_EQ(partitions_named(conn, d), 1) << "day +" << d;
  EXPECT_EQ(partitions_named(conn, 38), 0);

  // And for the real today: today-1 .. today+7 exist; rows for today .. today+6 go to them.
  report = maintenance->run_once(system_clock::now());
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->partitions_created, 0);  // the migration made these already
  insert_days(conn, 0, 6);
  insert_days(conn, 30, 36);
  EXPECT_EQ(scalar(conn, "SELECT hookguard_default_partition_rows()"), 0);
  EXPECT_EQ(scalar(conn, "SELECT count(*) FROM webhook_event_log"), 70);

  // A row nobody made a partition for is caught, and the report says so.
  insert_days(conn, 200, 200);
  report = maintenance->run_once(system_clock::now());
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->default_partition_rows, 5);
  EXPECT_EQ(report->rows_rolled_up, 75);
  EXPECT_TRUE(report->rollup_caught_up);
  EXPECT_EQ(report->rollup_watermark, 75);
}

// Verifies retention: whole partitions older than retention_days go (never a DELETE), rollups
// of those days stay, and the stats for those days are unchanged.
TEST(Maintenance, RetentionDropsOldPartitionsAndKeepsTheirRollups) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  run(conn,
      "INSERT INTO webhook_trigger (id, key, name, upstream_url) VALUES (1, 'wh_r', 'r', 'u')");
  run(conn, "SELECT hookguard_ensure_partitions(" + day_offset_sql(-40) + ", 10)");
  insert_days(conn, -40, -31);  // 50 rows, days -40 .. -31
  insert_days(conn, 0, 0);      // 5 rows today
  const std::string window =
      "webhook_stats(now() - interval '45 days', now() + interval '1 day', 1)";
  const auto before = scalar(conn, "SELECT total_requests FROM " + window);
  EXPECT_EQ(before, 55);

  auto options = options_for(db);
  options.retention_days = 30;
  auto maintenance = Maintenance::create(options);
  ASSERT_TRUE(maintenance) << maintenance.error().message;
  auto report = maintenance->run_once(system_clock::now());
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->rows_rolled_up, 55);
  EXPECT_EQ(report->partitions_dropped, 10);  // days -40 .. -31 lie before today-30
  EXPECT_EQ(partitions_named(conn, -31), 0);
  EXPECT_EQ(partitions_named(conn, -30), 0);  // never existed; nothing else went
  EXPECT_EQ(partitions_named(conn, -1), 1);
  EXPECT_EQ(scalar(conn, "SELECT count(*) FROM webhook_event_log"), 5);
  EXPECT_EQ(scalar(conn, "SELECT total_requests FROM " + window), 55);
  EXPECT_EQ(scalar(conn, "SELECT total_requests FROM webhook_stats_detailed"), 55);
  EXPECT_EQ(report->rollup_rows_deleted, 0);

  // A second run finds nothing more to do.
  report = maintenance->run_once(system_clock::now());
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->partitions_dropped, 0);
  EXPECT_EQ(report->rows_rolled_up, 0);
}

TEST(Maintenance, WithoutRetentionDaysNothingIsDropped) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  run(conn, "SELECT hookguard_ensure_partitions(" + day_offset_sql(-90) + ", 2)");
  insert_days(conn, -90, -89);
  auto maintenance = Maintenance::create(options_for(db));
  ASSERT_TRUE(maintenance);
  auto report = maintenance->run_once(system_clock::now());
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->partitions_dropped, 0);
  EXPECT_EQ(partitions_named(conn, -90), 1);
  EXPECT_EQ(scalar(conn, "SELECT count(*) FROM webhook_event_log"), 10);
}

// Verifies that rollups older than rollup_retention_days are deleted, younger ones kept.
TEST(Maintenance, RollupRetentionDeletesOnlyRollupsOlderThanConfigured) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  // Neither day has a partition (the migration made today-1 onwards): both go to DEFAULT.
  insert_days(conn, -500, -500);
  insert_days(conn, -10, -10);
  auto options = options_for(db);
  options.rollup_retention_days = 400;
  auto maintenance = Maintenance::create(options);
  ASSERT_TRUE(maintenance);
  auto report = maintenance->run_once(system_clock::now());
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->rows_rolled_up, 10);
  EXPECT_EQ(report->rollup_rows_deleted, 2);  // one hourly and one daily row of day -500
  EXPECT_EQ(scalar(conn, "SELECT coalesce(sum(requests), 0) FROM webhook_stats_daily"), 5);
  EXPECT_EQ(scalar(conn, "SELECT coalesce(sum(requests), 0) FROM webhook_stats_hourly"), 5);
  EXPECT_EQ(report->default_partition_rows, 10);
}

// Verifies the safety net: a partition holding rows not rolled up yet is not dropped.
TEST(Maintenance, RetentionKeepsPartitionWithRowsNotRolledUp) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  run(conn, "SELECT hookguard_ensure_partitions(" + day_offset_sql(-60) + ", 1)");
  insert_days(conn, -60, -60);
  EXPECT_EQ(scalar(conn, "SELECT hookguard_retention(" + day_offset_sql(-30) + ")"), 0);
  EXPECT_EQ(partitions_named(conn, -60), 1);
  EXPECT_EQ(scalar(conn, "SELECT hookguard_rollup()"), 5);
  EXPECT_EQ(scalar(conn, "SELECT hookguard_retention(" + day_offset_sql(-30) + ")"), 1);
  EXPECT_EQ(partitions_named(conn, -60), 0);
}

TEST(Maintenance, DropPartitionsOlderThanRollsUpFirstThenDrops) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  run(conn, "SELECT hookguard_ensure_partitions(" + day_offset_sql(-35) + ", 3)");
  insert_days(conn, -35, -33);
  auto dropped = drop_partitions_older_than(db.dsn(), 34, system_clock::now());
  ASSERT_TRUE(dropped) << dropped.error().message;
  EXPECT_EQ(*dropped, 1);  // day -35 only; -34 is not before today-34
  EXPECT_EQ(partitions_named(conn, -35), 0);
  EXPECT_EQ(partitions_named(conn, -34), 1);
  EXPECT_EQ(scalar(conn, "SELECT sum(requests) FROM webhook_stats_daily"), 15);
  EXPECT_EQ(scalar(conn, "SELECT count(*) FROM webhook_event_log"), 10);

  auto bad = drop_partitions_older_than(db.dsn(), 0);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "invalid_argument");
  EXPECT_EQ(bad.error().message, "retention: --older-than must be 1..36500 days");
}

TEST(Maintenance, CreateRejectsInconsistentOptionsNamingTheKey) {
  MaintenanceOptions options;
  options.dsn = "postgresql://x@127.0.0.1:1/x";
  options.retention_days = 0;
  auto r = Maintenance::create(options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "invalid_config");
  EXPECT_EQ(r.error().message, "audit.retention_days: must be 1..36500");

  options.retention_days = 30;
  options.rollup_retention_days = 7;
  r = Maintenance::create(options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "audit.rollup_retention_days: must be at least audit.retention_days");
  EXPECT_EQ(r.error().field, "audit.rollup_retention_days");

  options.rollup_retention_days = 400;
  options.partition_days_ahead = 0;
  r = Maintenance::create(options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "audit.partition_days_ahead: must be 1..365");

  options.partition_days_ahead = 7;
  options.dsn.clear();
  r = Maintenance::create(options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "maintenance: dsn is empty");
}

TEST(Maintenance, RunOnceWithPostgresDownIsAnErrorWithoutThePassword) {
  MaintenanceOptions options;
  options.dsn = "postgresql://hookguard:S3cr3tPassw0rd@127.0.0.1:1/hookguard?connect_timeout=2";
  auto maintenance = Maintenance::create(options);
  ASSERT_TRUE(maintenance);
  auto report = maintenance->run_once(system_clock::now());
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, "db_unavailable");
  EXPECT_NE(report.error().message.find("maintenance: connecting"), std::string::npos);
  EXPECT_EQ(report.error().message.find("S3cr3tPassw0rd"), std::string::npos);
}

TEST(RetentionPeriod, ParsesDaysWithOrWithoutSuffix) {
  EXPECT_EQ(parse_retention_days("30d").value(), 30);
  EXPECT_EQ(parse_retention_days("30").value(), 30);
  EXPECT_EQ(parse_retention_days("36500d").value(), 36500);
  for (const char* bad : {"", "d", "0d", "-1d", "30h", "3 0d", "36501", "30dd"}) {
    auto r = parse_retention_days(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, "invalid_argument");
    EXPECT_EQ(r.error().message, std::string("retention period: expected days as \"30d\" or "
                                             "\"30\" (1..36500), got \"") +
                                     bad + "\"");
  }
}

}  // namespace
}  // namespace hookguard::db
