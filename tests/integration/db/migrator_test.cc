// Integration tests of db/migrator.cc and db/migrations/*.sql against the PostgreSQL of
// deploy/local: idempotence, refusal of unknown versions, partitions, the stats view, NOTIFY.
#include "db/migrator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "tests/support/test_env.h"

namespace hookguard::db {
namespace {

// A textual dump of everything the migrations define in schema public: columns, constraints,
// indexes, functions, triggers, views, partitions. Equal dumps mean an unchanged schema.
std::string catalog_dump(pqxx::connection& conn) {
  pqxx::work tx(conn);
  std::string out;
  const char* queries[] = {
      "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' ||"
      " COALESCE(column_default, '') FROM information_schema.columns"
      " WHERE table_schema = 'public' ORDER BY 1",
      "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)"
      " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1",
      "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
      "SELECT p.oid::regprocedure::text || md5(p.prosrc) FROM pg_proc p"
      " WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1",
      "SELECT tgrelid::regclass::text || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal"
      " ORDER BY 1",
      "SELECT viewname || ' ' || definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
      "SELECT inhrelid::regclass::text FROM pg_inherits ORDER BY 1",
      "SELECT version FROM schema_migrations ORDER BY 1"};
  for (const char* q : queries) {
    for (const auto& row : tx.exec(q)) out += row[0].as<std::string>() + "\n";
    out += "--\n";
  }
  return out;
}

std::int64_t count(pqxx::connection& conn, const std::string& sql) {
  pqxx::work tx(conn);
  return tx.exec1(sql)[0].as<std::int64_t>();
}

TEST(Migrator, EmbedsMigrationsInNameOrderStartingWithInit) {
  const auto& migrations = embedded_migrations();
  ASSERT_FALSE(migrations.empty());
  EXPECT_EQ(migrations.front().name, "0001_init.sql");
  EXPECT_NE(migrations.front().sql.find("CREATE TABLE webhook_trigger"), std::string::npos);
  for (std::size_t i = 1; i < migrations.size(); ++i) {
    EXPECT_LT(migrations[i - 1].name, migrations[i].name);
  }
}

// Verifies that a second run applies nothing and leaves the catalog exactly as it was.
TEST(Migrator, SecondRunAppliesNothingAndLeavesSchemaUnchanged) {
  testing::PgTestDb db;  // already migrated once
  pqxx::connection conn(db.dsn());
  const std::string before = catalog_dump(conn);
  EXPECT_NE(before.find("webhook_trigger.hmac_secret_enc bytea YES"), std::string::npos);

  auto again = migrate(conn);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->applied.empty());
  EXPECT_EQ(again->already_applied.size(), embedded_migrations().size());
  EXPECT_EQ(catalog_dump(conn), before);

  auto via_dsn = migrate(db.dsn());
  ASSERT_TRUE(via_dsn) << via_dsn.error().message;
  EXPECT_TRUE(via_dsn->applied.empty());
  EXPECT_EQ(catalog_dump(conn), before);
}

TEST(Migrator, FreshDatabaseGetsEveryMigrationRecorded) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  EXPECT_EQ(count(conn, "SELECT count(*) FROM schema_migrations"),
            static_cast<std::int64_t>(embedded_migrations().size()));
  EXPECT_EQ(count(conn, "SELECT count(*) FROM schema_migrations WHERE applied_at <= now()"),
            static_cast<std::int64_t>(embedded_migrations().size()));
}

TEST(Migrator, RefusesDatabaseWithUnknownMigrationAndAppliesNothing) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  {
    pqxx::work tx(conn);
    tx.exec("INSERT INTO schema_migrations (version) VALUES ('9999_from_the_future.sql')");
    tx.commit();
  }
  // A binary that also carries a new migration must not apply it to such a database.
  std::vector<Migration> list = embedded_migrations();
  list.push_back({"9000_new.sql", "CREATE TABLE must_not_exist (x int)"});
  auto result = migrate(conn, list);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, "migration_unknown");
  EXPECT_NE(result.error().message.find("9999_from_the_future.sql"), std::string::npos);
  EXPECT_EQ(count(conn, "SELECT count(*) FROM pg_class WHERE relname = 'must_not_exist'"), 0);
}

TEST(Migrator, AppliesPendingMigrationWithItsRecordInOneTransaction) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  std::vector<Migration> list = embedded_migrations();
  list.push_back({"9000_ok.sql", "CREATE TABLE extra_ok (x int)"});
  list.push_back({"9001_broken.sql", "CREATE TABLE extra_broken (x int); SELECT 1/0"});
  auto result = migrate(conn, list);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, "migration_failed");
  EXPECT_NE(result.error().message.find("9001_broken.sql"), std::string::npos);
  // The good one is committed with its record; the broken one left neither table nor record.
  EXPECT_EQ(count(conn, "SELECT count(*) FROM schema_migrations WHERE version = '9000_ok.sql'"), 1);
  EXPECT_EQ(count(conn, "SELECT count(*) FROM pg_class WHERE relname = 'extra_ok'"), 1);
  EXPECT_EQ(count(conn, "SELECT count(*) FROM schema_migrations WHERE version = '9001_broken.sql'"),
            0);
  EXPECT_EQ(count(conn, "SELECT count(*) FROM pg_class WHERE relname = 'extra_broken'"), 0);
}

TEST(Migrator, RefusesPendingMigrationOlderThanTheNewestApplied) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  std::vector<Migration> list = embedded_migrations();
  list.push_back({"9002_late.sql", "SELECT 1"});
  ASSERT_TRUE(migrate(conn, list));
  list.insert(list.end() - 1, Migration{"9001_forgotten.sql", "CREATE TABLE forgotten (x int)"});
  auto result = migrate(conn, list);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, "migration_out_of_order");
  EXPECT_EQ(count(conn, "SELECT count(*) FROM pg_class WHERE relname = 'forgotten'"), 0);
}

TEST(Migrator, ConnectionErrorNeverShowsThePassword) {
  // Nothing listens on port 1; libpq's message names host and port, and must not show the
  // password.
  auto result = migrate(
      "postgresql://hookguard:S3cr3tPassw0rd@127.0.0.1:1/hookguard"
      "?connect_timeout=2");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, "db_unavailable");
  EXPECT_EQ(result.error().message.find("S3cr3tPassw0rd"), std::string::npos);
  EXPECT_NE(result.error().message.find("migrate"), std::string::npos);
}

TEST(Schema, HasDailyPartitionsFromTodayToSevenDaysAhead) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  for (int day = 0; day <= 7; ++day) {
    const std::string sql =
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'webhook_event_log'::regclass AND c.relname = 'webhook_event_log_'"
        " || to_char((now() AT TIME ZONE 'UTC')::date + " +
        std::to_string(day) + ", 'YYYYMMDD')";
    EXPECT_EQ(count(conn, sql), 1) << "no partition for today + " << day;
  }
  EXPECT_EQ(count(conn,
                  "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c"
                  " ON c.oid = p.partdefid WHERE c.relname = 'webhook_event_log_default'"),
            1);
  // Calling it again creates nothing new.
  EXPECT_EQ(count(conn, "SELECT hookguard_ensure_partitions((now() AT TIME ZONE 'UTC')::date, 8)"),
            0);
}

TEST(Schema, RowsLandInTheirDayOrTheDefaultPartition) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  {
    pqxx::work tx(conn);
    tx.exec(
        "INSERT INTO webhook_event_log (created, request_id, outcome) VALUES"
        " ('1999-03-04 10:00:00+00', '00000000-0000-4000-8000-000000000001', 'forwarded'),"
        " (now(), '00000000-0000-4000-8000-000000000002', 'forwarded')");
    tx.commit();
  }
  pqxx::work tx(conn);
  EXPECT_EQ(tx.exec1("SELECT tableoid::regclass::text FROM webhook_event_log"
                     " WHERE request_id = '00000000-0000-4000-8000-000000000001'")[0]
                .as<std::string>(),
            "webhook_event_log_default");
  EXPECT_EQ(tx.exec1("SELECT tableoid::regclass::text = 'webhook_event_log_' ||"
                     " to_char((now() AT TIME ZONE 'UTC')::date, 'YYYYMMDD')"
                     " FROM webhook_event_log"
                     " WHERE request_id = '00000000-0000-4000-8000-000000000002'")[0]
                .as<bool>(),
            true);
}

// Verifies the DEFAULT-partition pitfall: a partition created for a day that already has rows
// in DEFAULT takes those rows over instead of failing.
TEST(Schema, EnsurePartitionsMovesRowsOutOfTheDefaultPartition) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  tx.exec(
      "INSERT INTO webhook_event_log (created, request_id, outcome) VALUES"
      " ('2001-01-01 23:59:59+00', '00000000-0000-4000-8000-000000000011', 'forwarded'),"
      " ('2001-01-02 00:00:00+00', '00000000-0000-4000-8000-000000000012', 'forwarded')");
  EXPECT_EQ(tx.exec1("SELECT hookguard_ensure_partitions('2001-01-01', 1)")[0].as<int>(), 1);
  EXPECT_EQ(tx.exec1("SELECT tableoid::regclass::text FROM webhook_event_log"
                     " WHERE request_id = '00000000-0000-4000-8000-000000000011'")[0]
                .as<std::string>(),
            "webhook_event_log_20010101");
  EXPECT_EQ(tx.exec1("SELECT tableoid::regclass::text FROM webhook_event_log"
                     " WHERE request_id = '00000000-0000-4000-8000-000000000012'")[0]
                .as<std::string>(),
            "webhook_event_log_default");
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM webhook_event_log")[0].as<int>(), 2);
}

TEST(Schema, RetentionDropsWholeOldPartitionsButNeverTheDefault) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  tx.exec("SELECT hookguard_ensure_partitions('2001-01-01', 3)");
  tx.exec(
      "INSERT INTO webhook_event_log (created, request_id, outcome) VALUES"
      " ('2001-01-01 12:00:00+00', '00000000-0000-4000-8000-000000000021', 'forwarded'),"
      " ('1990-01-01 12:00:00+00', '00000000-0000-4000-8000-000000000022', 'forwarded')");
  // Cutoff 2001-01-03: the days 01-01 and 01-02 lie wholly before it, 01-03 does not.
  EXPECT_EQ(tx.exec1("SELECT hookguard_drop_partitions_older_than('2001-01-03')")[0].as<int>(), 2);
  EXPECT_TRUE(tx.exec1("SELECT to_regclass('webhook_event_log_20010101') IS NULL")[0].as<bool>());
  EXPECT_FALSE(tx.exec1("SELECT to_regclass('webhook_event_log_20010103') IS NULL")[0].as<bool>());
  EXPECT_FALSE(tx.exec1("SELECT to_regclass('webhook_event_log_default') IS NULL")[0].as<bool>());
  // The 1990 row in DEFAULT survives; the 2001-01-01 row went with its partition.
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM webhook_event_log")[0].as<int>(), 1);
}

TEST(Schema, DuplicateRequestIdAndCreatedIsRejected) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  const std::string insert =
      "INSERT INTO webhook_event_log (created, request_id, outcome) VALUES"
      " ('2001-05-05 00:00:00+00', '00000000-0000-4000-8000-000000000031', 'forwarded')";
  tx.exec(insert);
  EXPECT_THROW(tx.exec(insert), pqxx::unique_violation);
}

TEST(Schema, StatsViewCountsOutcomesPerTriggerAndShowsZerosWithoutTraffic) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  tx.exec(
      "INSERT INTO webhook_trigger (id, key, name, upstream_url) VALUES"
      " (1, 'wh_busy', 'busy', 'http://127.0.0.1:9/'), (2, 'wh_idle', 'idle', 'http://x/')");
  // Ten requests to trigger 1 with processing times 1..10 ms, one of each interesting outcome.
  tx.exec(
      "INSERT INTO webhook_event_log (created, trigger_id, request_id, outcome, status_code,"
      " processing_time_ms) SELECT now() - (i || ' seconds')::interval, 1, gen_random_uuid(),"
      " o.outcome, o.status, i FROM (VALUES"
      " (1, 'forwarded', 200), (2, 'forwarded', 201), (3, 'forwarded', 204),"
      " (4, 'rate_limited', 429), (5, 'signature_invalid', 401), (6, 'signature_missing', 401),"
      " (7, 'ip_denied', 403), (8, 'payload_too_large', 413), (9, 'upstream_error', 502),"
      " (10, 'upstream_timeout', 504)) AS o(i, outcome, status)");
  // A row without a trigger must not count anywhere.
  tx.exec(
      "INSERT INTO webhook_event_log (trigger_id, request_id, outcome, status_code)"
      " VALUES (NULL, gen_random_uuid(), 'not_found', 404)");
  const auto busy = tx.exec1(
      "SELECT trigger_name, webhook_key, total_requests, successful_requests, failed_requests,"
      " rate_limited_requests, signature_failures, ip_denied_requests,"
      " payload_too_large_requests, upstream_errors, avg_processing_time_ms,"
      " p50_processing_time_ms, p95_processing_time_ms, p99_processing_time_ms,"
      " last_request_at > now() - interval '2 seconds'"
      " FROM webhook_stats_detailed WHERE trigger_id = 1");
  EXPECT_EQ(busy[0].as<std::string>(), "busy");
  EXPECT_EQ(busy[1].as<std::string>(), "wh_busy");
  EXPECT_EQ(busy[2].as<int>(), 10);
  EXPECT_EQ(busy[3].as<int>(), 3);
  EXPECT_EQ(busy[4].as<int>(), 7);
  EXPECT_EQ(busy[5].as<int>(), 1);
  EXPECT_EQ(busy[6].as<int>(), 2);
  EXPECT_EQ(busy[7].as<int>(), 1);
  EXPECT_EQ(busy[8].as<int>(), 1);
  EXPECT_EQ(busy[9].as<int>(), 2);
  EXPECT_DOUBLE_EQ(busy[10].as<double>(), 5.5);
  EXPECT_DOUBLE_EQ(busy[11].as<double>(), 5.5);  // percentile_cont interpolates
  EXPECT_NEAR(busy[12].as<double>(), 9.55, 1e-9);
  EXPECT_NEAR(busy[13].as<double>(), 9.91, 1e-9);
  EXPECT_TRUE(busy[14].as<bool>());

  const auto idle = tx.exec1(
      "SELECT total_requests, successful_requests, failed_requests, upstream_errors,"
      " avg_processing_time_ms, p99_processing_time_ms, last_request_at IS NULL"
      " FROM webhook_stats_detailed WHERE trigger_id = 2");
  EXPECT_EQ(idle[0].as<int>(), 0);
  EXPECT_EQ(idle[1].as<int>(), 0);
  EXPECT_EQ(idle[2].as<int>(), 0);
  EXPECT_EQ(idle[3].as<int>(), 0);
  EXPECT_DOUBLE_EQ(idle[4].as<double>(), 0.0);
  EXPECT_DOUBLE_EQ(idle[5].as<double>(), 0.0);
  EXPECT_TRUE(idle[6].as<bool>());
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM webhook_stats_detailed")[0].as<int>(), 2);
}

TEST(Schema, TriggerRowRejectsMalformedKeyAndOutOfRangePolicy) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  const char* bad_rows[] = {
      "INSERT INTO webhook_trigger (key, name, upstream_url) VALUES ('wh/evil', 'a', 'http://x')",
      "INSERT INTO webhook_trigger (key, name, upstream_url) VALUES ('', 'a', 'http://x')",
      "INSERT INTO webhook_trigger (key, name, upstream_url, mode)"
      " VALUES ('wh_a', 'a', 'http://x', 'shadow')",
      "INSERT INTO webhook_trigger (key, name, upstream_url, payload_size_limit_kb)"
      " VALUES ('wh_a', 'a', 'http://x', 0)",
      "INSERT INTO webhook_trigger (key, name, upstream_url, payload_size_limit_kb)"
      " VALUES ('wh_a', 'a', 'http://x', 102401)",
      "INSERT INTO webhook_trigger (key, name, upstream_url, rate_limit_on_store_error)"
      " VALUES ('wh_a', 'a', 'http://x', 'maybe')"};
  for (const char* sql : bad_rows) {
    pqxx::work tx(conn);
    EXPECT_THROW(tx.exec(sql), pqxx::check_violation) << sql;
  }
  pqxx::work tx(conn);
  const auto row = tx.exec1(
      "INSERT INTO webhook_trigger (key, name, upstream_url) VALUES ('wh_a', 'a', 'http://x')"
      " RETURNING payload_size_limit_kb, rate_limit_requests, rate_limit_window_seconds,"
      " timestamp_tolerance_seconds, mode, version, methods::text");
  EXPECT_EQ(row[0].as<int>(), 1024);
  EXPECT_EQ(row[1].as<int>(), 100);
  EXPECT_EQ(row[2].as<int>(), 60);
  EXPECT_EQ(row[3].as<int>(), 300);
  EXPECT_EQ(row[4].as<std::string>(), "enforce");
  EXPECT_EQ(row[5].as<int>(), 1);
  EXPECT_EQ(row[6].as<std::string>(), "{POST}");
}

TEST(Schema, UpdateBumpsVersionAndUpdatedEvenFromPlainSql) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  {
    pqxx::work tx(conn);
    tx.exec(
        "INSERT INTO webhook_trigger (id, key, name, upstream_url, updated)"
        " VALUES (7, 'wh_v', 'v', 'http://x', now() - interval '1 hour')");
    tx.commit();
  }
  pqxx::work tx(conn);
  tx.exec("UPDATE webhook_trigger SET description = 'changed', version = 1 WHERE id = 7");
  const auto row = tx.exec1(
      "SELECT version, updated > now() - interval '1 minute' FROM webhook_trigger WHERE id = 7");
  EXPECT_EQ(row[0].as<int>(), 2);
  EXPECT_TRUE(row[1].as<bool>());
}

// Collects hookguard_trigger_changed payloads on its own connection.
class ChangeListener : public pqxx::notification_receiver {
 public:
  explicit ChangeListener(pqxx::connection& conn)
      : pqxx::notification_receiver(conn, "hookguard_trigger_changed") {}
  void operator()(const std::string& payload, int) override { payloads.push_back(payload); }
  std::vector<std::string> payloads;
};

std::vector<std::string> await_payloads(
    pqxx::connection& conn, ChangeListener& listener, std::size_t n,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (listener.payloads.size() < n && std::chrono::steady_clock::now() < deadline) {
    conn.await_notification(0, 200000);
  }
  return listener.payloads;
}

TEST(Schema, TriggerChangesNotifyListenersWithTheId) {
  testing::PgTestDb db;
  pqxx::connection listen_conn(db.dsn());
  ChangeListener listener(listen_conn);
  pqxx::connection conn(db.dsn());

  auto run = [&](const std::string& sql) {
    pqxx::work tx(conn);
    tx.exec(sql);
    tx.commit();
  };
  run("INSERT INTO webhook_trigger (id, key, name, upstream_url) VALUES (41, 'wh_n', 'n', 'u')");
  EXPECT_EQ(await_payloads(listen_conn, listener, 1), std::vector<std::string>{"41"});
  run("UPDATE webhook_trigger SET enabled = false WHERE id = 41");
  EXPECT_EQ(await_payloads(listen_conn, listener, 2), (std::vector<std::string>{"41", "41"}));
  run("DELETE FROM webhook_trigger WHERE id = 41");
  EXPECT_EQ(await_payloads(listen_conn, listener, 3), (std::vector<std::string>{"41", "41", "41"}));

  // A rolled-back change is never announced.
  {
    pqxx::work tx(conn);
    tx.exec("INSERT INTO webhook_trigger (id, key, name, upstream_url) VALUES (42, 'k', 'k', 'u')");
    tx.abort();
  }
  EXPECT_EQ(await_payloads(listen_conn, listener, 4, std::chrono::milliseconds(1000)).size(), 3u);
}

}  // namespace
}  // namespace hookguard::db
