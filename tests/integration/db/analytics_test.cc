// Integration tests of the analytics schema (db/migrations/0003_analytics.sql) and of the
// ready-made queries in docs/analytics.md: rollups, the windowed stats function, histograms.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <pqxx/pqxx>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_env.h"

namespace hookguard::db {
namespace {

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

// Each row as its cells joined by '|' (NULL as empty), the way `psql -At` prints it.
std::vector<std::string> rows_of(const pqxx::result& result) {
  std::vector<std::string> out;
  for (const auto& row : result) {
    std::string line;
    for (const auto& field : row) {
      if (field.num() > 0) line += '|';
      line += field.is_null() ? "" : field.c_str();
    }
    out.push_back(line);
  }
  return out;
}

// 10'000 requests for triggers 1..3, one every 37 s from 2024-05-01 (about 4.3 days), with
// processing times spread over 0..2999 ms and a mix of outcomes.
void insert_spread(pqxx::connection& conn, int from, int to) {
  run(conn,
      "INSERT INTO webhook_event_log (created, trigger_id, request_id, outcome, status_code,"
      " processing_time_ms) SELECT timestamptz '2024-05-01 00:00:00+00' + i * interval '37 s',"
      " 1 + i % 3, gen_random_uuid(), o.outcome, o.status, (i * 7919) % 3000"
      " FROM generate_series(" +
          std::to_string(from) + ", " + std::to_string(to) +
          ") AS i CROSS JOIN LATERAL (SELECT (ARRAY['forwarded', 'forwarded', 'forwarded',"
          " 'rate_limited', 'signature_invalid', 'ip_denied', 'upstream_error',"
          " 'payload_too_large'])[1 + (i * 7) % 8] AS outcome) n"
          " CROSS JOIN LATERAL (SELECT n.outcome, CASE n.outcome WHEN 'forwarded' THEN 200"
          " WHEN 'rate_limited' THEN 429 WHEN 'signature_invalid' THEN 401"
          " WHEN 'ip_denied' THEN 403 WHEN 'upstream_error' THEN 502 ELSE 413 END AS status) o");
}

void insert_triggers(pqxx::connection& conn) {
  run(conn,
      "INSERT INTO webhook_trigger (id, key, name, upstream_url) VALUES"
      " (1, 'wh_one', 'one', 'http://x/'), (2, 'wh_two', 'two', 'http://x/'),"
      " (3, 'wh_three', 'three', 'http://x/'), (4, 'wh_idle', 'idle', 'http://x/')");
}

// The answer computed straight from the log, as 0001's view did.
constexpr const char* kDirectStats =
    "SELECT t.id, count(l.request_id),"
    " count(l.request_id) FILTER (WHERE l.status_code BETWEEN 200 AND 299),"
    " count(l.request_id) FILTER (WHERE l.status_code NOT BETWEEN 200 AND 299),"
    " count(l.request_id) FILTER (WHERE l.outcome = 'rate_limited'),"
    " count(l.request_id) FILTER (WHERE l.outcome IN ('signature_invalid', 'signature_missing')),"
    " count(l.request_id) FILTER (WHERE l.outcome = 'ip_denied'),"
    " count(l.request_id) FILTER (WHERE l.outcome = 'payload_too_large'),"
    " count(l.request_id) FILTER (WHERE l.outcome IN ('upstream_error', 'upstream_timeout',"
    " 'upstream_denied')),"
    " COALESCE(avg(l.processing_time_ms), 0)::float8,"
    " COALESCE(percentile_cont(0.50) WITHIN GROUP (ORDER BY l.processing_time_ms), 0),"
    " COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY l.processing_time_ms), 0),"
    " COALESCE(percentile_cont(0.99) WITHIN GROUP (ORDER BY l.processing_time_ms), 0),"
    " max(l.created)"
    " FROM webhook_trigger t LEFT JOIN webhook_event_log l ON l.trigger_id = t.id"
    " AND l.created >= $1 AND l.created < $2 GROUP BY t.id ORDER BY t.id";

constexpr const char* kStatsColumns =
    "trigger_id, total_requests, successful_requests, failed_requests, rate_limited_requests,"
    " signature_failures, ip_denied_requests, payload_too_large_requests, upstream_errors,"
    " avg_processing_time_ms, p50_processing_time_ms, p95_processing_time_ms,"
    " p99_processing_time_ms, last_request_at";

// Counts and last_request_at must be equal, the average exact, percentiles within 5 %.
void expect_agree(const pqxx::result& got, const pqxx::result& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t r = 0; r < want.size(); ++r) {
    for (int c = 0; c <= 8; ++c) {
      EXPECT_EQ(got[r][c].as<std::int64_t>(), want[r][c].as<std::int64_t>())
          << what << ": trigger " << want[r][0].c_str() << ", column " << c;
    }
    EXPECT_NEAR(got[r][9].as<double>(), want[r][9].as<double>(), 1e-6)
        << what << ": trigger " << want[r][0].c_str() << ", avg";
    for (int c = 10; c <= 12; ++c) {
      const double exact = want[r][c].as<double>();
      EXPECT_NEAR(got[r][c].as<double>(), exact, 0.05 * exact + 1e-9)
          << what << ": trigger " << want[r][0].c_str() << ", percentile column " << c;
    }
    EXPECT_EQ(got[r][13].is_null(), want[r][13].is_null()) << what;
    if (!want[r][13].is_null()) {
      EXPECT_EQ(got[r][13].as<std::string>(), want[r][13].c_str());
    }
  }
}

// Verifies the heart of #8: the view and webhook_stats() (rollups + tail) give the answer a
// scan of the log gives, for windows of whole days, whole hours, partial hours and less than an
// hour, with 6'000 rows rolled up and 4'000 still in the tail.
TEST(Analytics, ViewAndWindowFunctionAgreeWithDirectComputationOverRawRows) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  run(conn, "SET TimeZone = 'UTC'");
  insert_triggers(conn);
  insert_spread(conn, 0, 5999);
  EXPECT_EQ(scalar(conn, "SELECT hookguard_rollup()"), 6000);
  insert_spread(conn, 6000, 9999);
  EXPECT_EQ(scalar(conn, "SELECT watermark FROM webhook_rollup_state"), 6000);
  EXPECT_EQ(scalar(conn, "SELECT sum(requests) FROM webhook_stats_hourly"), 6000);
  EXPECT_EQ(scalar(conn, "SELECT sum(requests) FROM webhook_stats_daily"), 6000);

  pqxx::work tx(conn);
  const auto want_all = tx.exec_params(kDirectStats, "-infinity", "infinity");
  ASSERT_EQ(want_all[0][1].as<int>(), 3334);  // i % 3 == 0 for 0..9999
  expect_agree(tx.exec(std::string("SELECT ") + kStatsColumns +
                       " FROM webhook_stats_detailed ORDER BY trigger_id"),
               want_all, "view");

  const std::vector<std::pair<std::string, std::string>> windows = {
      {"-infinity", "infinity"},
      {"2024-05-01 10:17:00+00", "2024-05-04 05:43:10+00"},  // days, hours, partial hours, tail
      {"2024-05-02 00:00:00+00", "2024-05-03 00:00:00+00"},  // one whole day
      {"2024-05-02 03:00:00+00", "2024-05-02 07:00:00+00"},  // whole hours
      {"2024-05-02 03:10:00+00", "2024-05-02 03:50:00+00"},  // inside one hour
      {"2024-05-03 20:30:00+00", "2024-05-04 02:15:00+00"},  // the tail only
      {"2024-06-01 00:00:00+00", "2024-06-02 00:00:00+00"},  // no traffic
  };
  for (const auto& [since, until] : windows) {
    const auto want = tx.exec_params(kDirectStats, since, until);
    const auto got = tx.exec_params(
        std::string("SELECT ") + kStatsColumns + " FROM webhook_stats($1, $2) ORDER BY trigger_id",
        since, until);
    expect_agree(got, want, since + " .. " + until);
  }
  // One trigger: the same numbers, one row.
  const auto want =
      tx.exec_params(kDirectStats, "2024-05-01 10:17:00+00", "2024-05-04 05:43:10+00");
  const auto got = tx.exec_params(
      std::string("SELECT ") + kStatsColumns + " FROM webhook_stats($1, $2, trigger_id => 2)",
      "2024-05-01 10:17:00+00", "2024-05-04 05:43:10+00");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0][0].as<int>(), 2);
  EXPECT_EQ(got[0][1].as<std::int64_t>(), want[1][1].as<std::int64_t>());
  EXPECT_GT(got[0][1].as<std::int64_t>(), 0);
}

// Verifies that a row drawn before a concurrent, larger one but committed after it is not
// skipped: the watermark waits for the open writer.
TEST(Analytics, RollupWaitsForOpenWritersAndIsIdempotent) {
  testing::PgTestDb db;
  pqxx::connection writer(db.dsn());
  pqxx::connection other(db.dsn());
  pqxx::connection roller(db.dsn());
  insert_triggers(roller);
  const std::string insert =
      "INSERT INTO webhook_event_log (created, trigger_id, request_id, outcome, status_code,"
      " processing_time_ms) VALUES (now(), 1, gen_random_uuid(), 'forwarded', 200, 5)";

  pqxx::work open_tx(writer);
  open_tx.exec(insert);  // draws id 1, not committed
  run(other, insert);    // id 2, committed
  EXPECT_EQ(scalar(roller, "SELECT hookguard_rollup()"), 0);
  EXPECT_EQ(scalar(roller, "SELECT watermark FROM webhook_rollup_state"), 0);
  EXPECT_EQ(scalar(roller, "SELECT pending_hi FROM webhook_rollup_state"), 2);
  // The stats still count the committed row, from the tail.
  EXPECT_EQ(scalar(roller,
                   "SELECT total_requests FROM webhook_stats(now() - interval '1 hour',"
                   " now() + interval '1 hour', 1)"),
            1);
  open_tx.commit();

  EXPECT_EQ(scalar(roller, "SELECT hookguard_rollup()"), 2);
  EXPECT_EQ(scalar(roller, "SELECT watermark FROM webhook_rollup_state"), 2);
  EXPECT_EQ(scalar(roller, "SELECT hookguard_rollup()"), 0);
  EXPECT_EQ(scalar(roller, "SELECT sum(requests) FROM webhook_stats_hourly"), 2);
  EXPECT_EQ(scalar(roller, "SELECT sum(requests) FROM webhook_stats_daily"), 2);
}

// Verifies that concurrent callers, each in small batches, fold every row exactly once.
TEST(Analytics, ConcurrentRollupsFoldEveryRowExactlyOnce) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  insert_triggers(conn);
  insert_spread(conn, 0, 1999);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&db] {
      pqxx::connection c(db.dsn());
      while (scalar(c, "SELECT hookguard_rollup(150)") > 0) {
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(scalar(conn, "SELECT watermark FROM webhook_rollup_state"), 2000);
  EXPECT_EQ(scalar(conn, "SELECT sum(requests) FROM webhook_stats_hourly"), 2000);
  EXPECT_EQ(scalar(conn, "SELECT sum(requests) FROM webhook_stats_daily"), 2000);
  EXPECT_EQ(scalar(conn,
                   "SELECT sum(requests) FROM webhook_stats_hourly WHERE trigger_id = 2"
                   " AND outcome = 'forwarded'"),
            scalar(conn,
                   "SELECT count(*) FROM webhook_event_log WHERE trigger_id = 2"
                   " AND outcome = 'forwarded'"));
  // The histograms hold every row too.
  EXPECT_EQ(scalar(conn, "SELECT sum(c) FROM webhook_stats_daily, unnest(latency_hist) AS c"),
            2000);
}

// Verifies that a late row (created days ago, inserted after a rollup) is folded into its own
// hour, not the current one.
TEST(Analytics, LateRowIsRolledUpIntoItsOwnHour) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  insert_triggers(conn);
  insert_spread(conn, 0, 99);
  EXPECT_EQ(scalar(conn, "SELECT hookguard_rollup()"), 100);
  run(conn,
      "INSERT INTO webhook_event_log (created, trigger_id, request_id, outcome, status_code,"
      " processing_time_ms) VALUES ('2024-04-20 07:45:00+00', 3, gen_random_uuid(),"
      " 'rate_limited', 429, 0)");
  EXPECT_EQ(scalar(conn, "SELECT hookguard_rollup()"), 1);
  EXPECT_EQ(scalar(conn,
                   "SELECT requests FROM webhook_stats_hourly WHERE trigger_id = 3"
                   " AND hour = '2024-04-20 07:00:00+00' AND outcome = 'rate_limited'"),
            1);
  EXPECT_EQ(
      scalar(conn,
             "SELECT rate_limited_requests FROM webhook_stats('2024-04-20', '2024-04-21', 3)"),
      1);
}

TEST(Analytics, HistogramPercentilesAreExactBelow20MsAndWithin5PercentAbove) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  // Every value 0..19 is its own bucket.
  for (int ms = 0; ms < 20; ++ms) {
    EXPECT_EQ(tx.exec1("SELECT hookguard_latency_bucket(" + std::to_string(ms) + ")")[0].as<int>(),
              ms);
  }
  EXPECT_EQ(tx.exec1("SELECT hookguard_latency_bucket(-5)")[0].as<int>(), 0);
  EXPECT_EQ(tx.exec1("SELECT hookguard_latency_bucket(21)")[0].as<int>(), 21);
  EXPECT_EQ(tx.exec1("SELECT hookguard_latency_bucket(2147483647)")[0].as<int>(), 399);
  // Every bucket is at most 5 % wide, and each value lies inside its bucket's bounds.
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM generate_series(1, 200000) v"
                     " WHERE v < hookguard_latency_bucket_low(hookguard_latency_bucket(v))"
                     " OR v > hookguard_latency_bucket_high(hookguard_latency_bucket(v))")[0]
                .as<int>(),
            0);
  EXPECT_LE(
      tx.exec1("SELECT max((hookguard_latency_bucket_high(k) - hookguard_latency_bucket_low(k))"
               " / hookguard_latency_bucket_low(k)) FROM generate_series(20, 398) k")[0]
          .as<double>(),
      0.05);
  // Against percentile_cont over values spread from 20 ms to 100 s.
  for (double p : {0.5, 0.9, 0.95, 0.99, 0.999}) {
    const auto r = tx.exec_params(
        "WITH v AS (SELECT 20 + (i * 7919) % 100000 AS ms FROM generate_series(1, 30000) i),"
        " h AS (SELECT hookguard_latency_bucket(ms) AS b, count(*) AS n FROM v GROUP BY 1)"
        " SELECT (SELECT hookguard_hist_percentile(hookguard_hist_from_pairs(array_agg(b),"
        " array_agg(n)), $1) FROM h), (SELECT percentile_cont($1) WITHIN GROUP (ORDER BY ms)"
        " FROM v)",
        p)[0];
    EXPECT_NEAR(r[0].as<double>(), r[1].as<double>(), 0.05 * r[1].as<double>()) << "p=" << p;
  }
  EXPECT_EQ(
      tx.exec1("SELECT hookguard_hist_percentiles('{1,2,3}', '{1,1,1}', '{0.5,1.0}')::text")[0]
          .as<std::string>(),
      "{2,3}");
  EXPECT_EQ(tx.exec1("SELECT hookguard_hist_add('[3:4]={1,2}', '[5:6]={3,4}')::text")[0]
                .as<std::string>(),
            "[3:6]={1,2,3,4}");
  EXPECT_TRUE(tx.exec1("SELECT hookguard_hist_percentile('[0:0]={0}', 0.5) IS NULL")[0].as<bool>());
}

// ---------------------------------------------------------------------------------------------
// docs/analytics.md: every query between `<!-- query: name -->` and its ```sql fence runs
// against this fixture and must return exactly the rows below.

constexpr const char* kFixture = R"sql(
SELECT hookguard_ensure_partitions('2024-03-01', 3);
INSERT INTO webhook_trigger (id, key, name, upstream_url) VALUES
  (1, 'wh_alpha', 'alpha', 'http://127.0.0.1:9/'), (2, 'wh_beta', 'beta', 'http://127.0.0.1:9/');
INSERT INTO webhook_event_log (created, trigger_id, webhook_key, request_id, outcome, status_code,
  source_ip, event_type, delivery_id, processing_time_ms, payload_size_bytes)
SELECT v.created::timestamptz, v.trigger_id, v.key, gen_random_uuid(), v.outcome, v.status,
       v.ip::inet, v.event_type, v.delivery_id, v.ms, v.bytes
  FROM (VALUES
  (1, '2024-03-01 10:05:00+00', 1, 'wh_alpha', 'forwarded', 200, '10.0.0.1', 'push', 'd-1', 20, 100),
  (2, '2024-03-01 10:06:00+00', 1, 'wh_alpha', 'duplicate', 200, '10.0.0.1', 'push', 'd-1', 30, 100),
  (3, '2024-03-01 10:10:00+00', 1, 'wh_alpha', 'signature_invalid', 401, '10.0.0.9', 'push', 'd-2', 1, 100),
  (4, '2024-03-01 10:20:00+00', 1, 'wh_alpha', 'signature_invalid', 401, '10.0.0.9', 'push', 'd-3', 1, 100),
  (5, '2024-03-01 11:15:00+00', 1, 'wh_alpha', 'signature_missing', 401, '10.0.0.9', NULL, NULL, 0, 100),
  (6, '2024-03-01 11:30:00+00', 1, 'wh_alpha', 'rate_limited', 429, '10.0.0.7', 'issues', 'd-4', 0, 100),
  (7, '2024-03-01 11:31:00+00', 1, 'wh_alpha', 'rate_limited', 429, '10.0.0.7', 'issues', 'd-5', 0, 100),
  (8, '2024-03-01 11:32:00+00', 1, 'wh_alpha', 'forwarded', 200, '10.0.0.7', 'issues', 'd-6', 40, 100),
  (9, '2024-03-01 12:00:00+00', 2, 'wh_beta', 'forwarded', 200, '10.0.0.2', 'release', 'd-7', 100, 100),
  (10, '2024-03-01 12:01:00+00', 2, 'wh_beta', 'upstream_error', 502, '10.0.0.2', 'release', 'd-8', 200, 100),
  (11, '2024-03-01 12:02:00+00', 2, 'wh_beta', 'upstream_timeout', 504, '10.0.0.2', 'release', 'd-9', 8000, 100),
  (12, '2024-03-01 12:03:00+00', 2, 'wh_beta', 'ip_denied', 403, '192.0.2.1', 'release', 'd-10', 0, 100),
  (13, '2024-03-01 12:04:00+00', 2, 'wh_beta', 'payload_too_large', 413, '10.0.0.2', 'release', 'd-11', 1, 2000000),
  (14, '2024-03-01 12:05:00+00', NULL, 'wh_scan', 'not_found', 404, '203.0.113.5', NULL, NULL, 0, 10),
  (15, '2024-03-01 12:06:00+00', NULL, 'wh_scan', 'not_found', 404, '203.0.113.5', NULL, NULL, 0, 10),
  (16, '2024-03-02 09:00:00+00', 1, 'wh_alpha', 'forwarded', 200, '10.0.0.1', 'push', 'd-12', 25, 100),
  (17, '2024-03-02 09:01:00+00', 1, 'wh_alpha', 'rate_limited', 429, '10.0.0.7', 'push', 'd-13', 0, 100),
  (18, '2024-03-02 09:02:00+00', 2, 'wh_beta', 'forwarded', 200, '10.0.0.2', 'release', 'd-14', 120, 100),
  (19, '2024-03-02 09:03:00+00', 2, 'wh_beta', 'forwarded', 200, '10.0.0.2', 'release', 'd-8', 110, 100),
  (20, '2024-03-03 01:00:00+00', 1, 'wh_alpha', 'forwarded', 200, '10.0.0.1', 'push', 'd-15', 50, 100)
  ) AS v(n, created, trigger_id, key, outcome, status, ip, event_type, delivery_id, ms, bytes)
 ORDER BY v.n;
SELECT hookguard_rollup();
)sql";

const std::map<std::string, std::string> kQueryParameters = {
    {"since", "2024-03-01 00:00:00+00"},
    {"until", "2024-03-03 00:00:00+00"},
    {"trigger_id", "1"},
    {"outcome", "signature_invalid"},
    {"cursor_created", "2024-03-01 10:20:00+00"},
    {"cursor_id", "4"}};

const std::map<std::string, std::vector<std::string>> kExpected = {
    {"top_rejected_source_ips",
     {"10.0.0.2|3", "10.0.0.7|3", "10.0.0.9|3", "203.0.113.5|2", "192.0.2.1|1"}},
    {"signature_failures_per_trigger_per_hour",
     {"1|2024-03-01 10:00:00+00|2", "1|2024-03-01 11:00:00+00|1"}},
    // alpha 03-01: 0 0 0 1 1 20 30 40 -> exact 38.5, from the histogram 37.0 (within 5 %).
    {"p95_latency_per_trigger_per_day",
     {"1|2024-03-01 00:00:00+00|37.0", "1|2024-03-02 00:00:00+00|23.8",
      "2|2024-03-01 00:00:00+00|6349.5", "2|2024-03-02 00:00:00+00|118.0"}},
    {"rate_limit_hits_by_hour", {"2024-03-01 11:00:00+00|2", "2024-03-02 09:00:00+00|1"}},
    {"upstream_error_rate_per_trigger", {"1|0|3|0.0", "2|2|5|40.0"}},
    {"requests_by_event_type", {"release|7|3", "push|6|2", "(none)|3|0", "issues|3|1"}},
    {"delivery_first_last_seen",
     {"d-1|1|2|2024-03-01 10:05:00+00|2024-03-01 10:06:00+00|forwarded,duplicate",
      "d-8|2|2|2024-03-01 12:01:00+00|2024-03-02 09:03:00+00|upstream_error,forwarded"}},
    {"stats_for_window",
     {"1|alpha|10|4|6|3|3|0|11.7|1.0|2024-03-02 09:01:00+00",
      "2|beta|7|3|4|0|0|2|1218.7|108.0|2024-03-02 09:03:00+00"}},
    {"unmatched_keys_by_source", {"wh_scan|203.0.113.5|2|2024-03-01 12:06:00+00"}},
    {"payload_too_large_per_trigger", {"2|1|2000000"}},
    {"slowest_hours",
     {"2|2024-03-01 12:00:00+00|8000|5", "2|2024-03-02 09:00:00+00|120|2",
      "1|2024-03-01 11:00:00+00|40|4", "1|2024-03-01 10:00:00+00|30|4",
      "1|2024-03-02 09:00:00+00|25|2"}},
    {"events_page", {"3|2024-03-01 10:10:00+00|10.0.0.9|d-2|401"}},
    {"rollup_health", {"20|0|0"}},
};

struct DocQuery {
  std::string name;
  std::string sql;
};

std::vector<DocQuery> documented_queries() {
  std::ifstream in(std::string(HOOKGUARD_SOURCE_DIR) + "/docs/analytics.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  static const std::regex kBlock(R"(<!-- query: ([a-z0-9_]+) -->\s*```sql\n([^`]*)```)");
  std::vector<DocQuery> out;
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), kBlock); it != std::sregex_iterator();
       ++it) {
    out.push_back({(*it)[1].str(), (*it)[2].str()});
  }
  return out;
}

// psql's :'name' variables become quoted literals.
std::string bind_parameters(const std::string& sql, pqxx::connection& conn) {
  static const std::regex kVariable(R"(:'([a-z_]+)')");
  std::string out;
  std::size_t last = 0;
  for (auto it = std::sregex_iterator(sql.begin(), sql.end(), kVariable);
       it != std::sregex_iterator(); ++it) {
    out += sql.substr(last, static_cast<std::size_t>(it->position()) - last);
    const auto value = kQueryParameters.find((*it)[1].str());
    EXPECT_NE(value, kQueryParameters.end()) << "unknown parameter " << (*it)[1].str();
    out += value == kQueryParameters.end() ? "NULL" : conn.quote(value->second);
    last = static_cast<std::size_t>(it->position() + it->length());
  }
  return out + sql.substr(last);
}

TEST(AnalyticsDocs, EveryDocumentedQueryReturnsItsExpectedRows) {
  const auto queries = documented_queries();
  ASSERT_GE(queries.size(), 10u) << "docs/analytics.md lost its queries";
  std::vector<std::string> names;
  for (const auto& q : queries) names.push_back(q.name);
  std::vector<std::string> expected_names;
  for (const auto& [name, rows] : kExpected) expected_names.push_back(name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, expected_names) << "every documented query needs an expectation here";

  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  run(conn, kFixture);
  run(conn, "SET TimeZone = 'UTC'");
  for (const auto& q : queries) {
    const auto expected = kExpected.find(q.name);
    if (expected == kExpected.end()) continue;
    pqxx::work tx(conn);
    try {
      EXPECT_EQ(rows_of(tx.exec(bind_parameters(q.sql, conn))), expected->second) << q.name;
    } catch (const std::exception& e) {
      ADD_FAILURE() << q.name << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace hookguard::db
