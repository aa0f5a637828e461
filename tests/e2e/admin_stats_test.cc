// End-to-end: the admin API's stats endpoints of the real hookguard binary over log rows written
// straight into PostgreSQL: windows are answered from the rollups plus the log's tail, so they
// reach past the log's retention, and their bounds are exact to the microsecond.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/http_client.h"
#include "tests/support/test_env.h"

namespace hookguard::testing {
namespace {

using Json = nlohmann::json;

constexpr const char* kToken = "e2e-admin-token-stats-0123456789";

class AdminStatsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    gateway_ = std::make_unique<GatewayProcess>(
        db_.dsn(), "",
        std::vector<std::pair<std::string, std::string>>{{"HOOKGUARD_ADMIN_TOKEN", kToken}});
    ASSERT_TRUE(gateway_->start()) << gateway_->log();
    a_ = insert_trigger(db_.dsn(), basic_trigger("stats-a", "http://127.0.0.1:9/")).spec.id;
    b_ = insert_trigger(db_.dsn(), basic_trigger("stats-b", "http://127.0.0.1:9/")).spec.id;
  }

  // GET `path` on the admin API; the parsed 200 body (a failed expectation otherwise).
  Json get(const std::string& path) {
    auto r = http_request("GET", gateway_->admin_url(path),
                          {{"Authorization", std::string("Bearer ") + kToken}});
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    auto j = Json::parse(r.body, nullptr, false);
    return j.is_discarded() ? Json::object() : j;
  }

  // One trigger's row for the window given as a query string ("" = all time).
  Json trigger_stats(std::int64_t id, const std::string& window) {
    return get("/api/v1/triggers/" + std::to_string(id) + "/stats" +
               (window.empty() ? "" : "?" + window));
  }

  // The UTC date `offset` days from today, "YYYY-MM-DD", as PostgreSQL counts it.
  std::string utc_day(int offset) {
    return query_value(db_.dsn(), "SELECT to_char((now() AT TIME ZONE 'UTC')::date + " +
                                      std::to_string(offset) + ", 'YYYY-MM-DD')");
  }

  // Writes one log row as the audit writer would; `created` is "YYYY-MM-DD HH:MM:SS[.ffffff]"
  // in UTC, `trigger` 0 for a request that matched no trigger.
  void log_row(std::int64_t trigger, const std::string& created, const std::string& outcome,
               int status, int ms) {
    query_value(db_.dsn(),
                "INSERT INTO webhook_event_log (created, trigger_id, webhook_key, request_id,"
                " outcome, status_code, processing_time_ms) VALUES ('" +
                    created + "+00', " + (trigger ? std::to_string(trigger) : "NULL") +
                    ", 'wh_stats', gen_random_uuid(), '" + outcome + "', " +
                    std::to_string(status) + ", " + std::to_string(ms) + ")");
  }

  // Folds every log row into the rollups, as the maintenance loop does (which may also be
  // running: the rollup lets one caller at a time in and folds each row once).
  void roll_up() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    const std::string pending =
        "SELECT count(*) FROM webhook_event_log l, webhook_rollup_state s"
        " WHERE l.id > s.watermark";
    do {
      query_value(db_.dsn(), "SELECT hookguard_rollup()");
    } while (query_value(db_.dsn(), pending) != "0" && std::chrono::steady_clock::now() < deadline);
    ASSERT_EQ(query_value(db_.dsn(), pending), "0");
  }

  PgTestDb db_;
  std::unique_ptr<GatewayProcess> gateway_;
  std::int64_t a_ = 0, b_ = 0;
};

// Verifies that a window whose log partition retention has dropped still counts every request
// of that day from the rollups (a scan of the raw log would find nothing), with every column of
// the answer, for one trigger and for the list, and the same before and after the roll-up.
TEST_F(AdminStatsE2E, WindowsCountRequestsThatOnlyTheRollupsStillHold) {
  const std::string day = utc_day(-10), next = utc_day(-9);
  query_value(db_.dsn(), "SELECT hookguard_ensure_partitions('" + day + "', 1)");
  log_row(a_, day + " 10:05:00", "forwarded", 200, 4);
  log_row(a_, day + " 10:20:00", "forwarded", 200, 6);
  log_row(a_, day + " 11:30:00", "signature_invalid", 401, 1);
  log_row(a_, day + " 13:00:00", "rate_limited", 429, 2);
  log_row(a_, day + " 14:00:00", "ip_denied", 403, 3);
  log_row(a_, day + " 15:00:00", "payload_too_large", 413, 5);
  log_row(a_, day + " 16:00:00", "upstream_error", 502, 8);
  log_row(a_, day + " 23:59:59.5", "upstream_timeout", 504, 10);
  log_row(b_, day + " 12:00:00", "forwarded", 200, 7);
  log_row(b_, day + " 12:30:00", "forwarded", 200, 7);
  log_row(0, day + " 12:00:00", "not_found", 404, 0);

  const std::string whole_day = "since=" + day + "T00:00:00Z&until=" + next + "T00:00:00Z";
  const auto expect_all = [&](const std::string& stage) {
    SCOPED_TRACE(stage);
    for (const std::string& window : {whole_day, std::string()}) {
      SCOPED_TRACE("window: " + window);
      auto s = trigger_stats(a_, window);
      EXPECT_EQ(s["trigger_id"], a_);
      EXPECT_EQ(s["trigger_name"], "stats-a");
      EXPECT_EQ(s["total_requests"], 8);
      EXPECT_EQ(s["successful_requests"], 2);
      EXPECT_EQ(s["failed_requests"], 6);
      EXPECT_EQ(s["rate_limited_requests"], 1);
      EXPECT_EQ(s["signature_failures"], 1);
      EXPECT_EQ(s["ip_denied_requests"], 1);
      EXPECT_EQ(s["payload_too_large_requests"], 1);
      EXPECT_EQ(s["upstream_errors"], 2);
      // Latencies 1 2 3 4 5 6 8 10 ms: below 20 ms the histograms are exact, so these are
      // percentile_cont's values.
      EXPECT_NEAR(s.value("avg_processing_time_ms", -1.0), 4.875, 1e-9);
      EXPECT_NEAR(s.value("p50_processing_time_ms", -1.0), 4.5, 1e-9);
      EXPECT_NEAR(s.value("p95_processing_time_ms", -1.0), 9.3, 1e-9);
      EXPECT_NEAR(s.value("p99_processing_time_ms", -1.0), 9.86, 1e-9);
      EXPECT_EQ(s["last_request_at"], day + "T23:59:59.500Z");
    }
    // Whole hours come from the hourly rollups: 10:05, 10:20 and 11:30.
    auto hours = trigger_stats(a_, "since=" + day + "T10:00:00Z&until=" + day + "T12:00:00Z");
    EXPECT_EQ(hours["total_requests"], 3);
    EXPECT_EQ(hours["signature_failures"], 1);
    EXPECT_EQ(hours["last_request_at"], day + "T11:30:00.000Z");
    auto list = get("/api/v1/stats?" + whole_day);
    ASSERT_EQ(list["items"].size(), 2u) << list.dump();
    EXPECT_EQ(list["items"][0]["trigger_id"], a_);
    EXPECT_EQ(list["items"][0]["total_requests"], 8);
    EXPECT_EQ(list["items"][1]["trigger_id"], b_);
    EXPECT_EQ(list["items"][1]["total_requests"], 2);
    EXPECT_EQ(list["items"][1]["successful_requests"], 2);
  };

  expect_all("log rows only");
  roll_up();
  expect_all("rolled up");

  // Retention drops the day's partition: from now on only the rollups know these requests.
  const std::string part =
      "webhook_event_log_" + day.substr(0, 4) + day.substr(5, 2) + day.substr(8, 2);
  ASSERT_EQ(query_value(db_.dsn(), "SELECT hookguard_retention('" + next + "')"), "1");
  ASSERT_EQ(query_value(db_.dsn(), "SELECT to_regclass('" + part + "') IS NULL"), "t");
  ASSERT_EQ(query_value(db_.dsn(),
                        "SELECT count(*) FROM webhook_event_log WHERE created < '" + next + "'"),
            "0");
  expect_all("log partition dropped");
}

// Verifies that `since` is inclusive and `until` exclusive to the microsecond, whether a bound
// falls inside an hour (read from the log), on an hour or on a day (read from the rollups once
// rolled up), with open ends, UTC offsets and an empty window.
TEST_F(AdminStatsE2E, WindowBoundsAreSinceInclusiveUntilExclusiveToTheMicrosecond) {
  const std::string prev = utc_day(-6), day = utc_day(-5), next = utc_day(-4);
  query_value(db_.dsn(), "SELECT hookguard_ensure_partitions('" + prev + "', 3)");
  const std::vector<std::string> times = {
      prev + " 23:59:59.999999",  // r1
      day + " 00:00:00",          // r2
      day + " 09:59:59.999999",   // r3
      day + " 10:00:00",          // r4
      day + " 10:20:00.499999",   // r5
      day + " 10:20:00.5",        // r6
      day + " 11:40:00.249999",   // r7
      day + " 11:40:00.25",       // r8
      day + " 11:59:59.999999",   // r9
      day + " 12:00:00",          // r10
      day + " 23:59:59.999999",   // r11
      next + " 00:00:00",         // r12
  };
  for (const auto& t : times) log_row(a_, t, "forwarded", 200, 1);
  log_row(b_, day + " 10:30:00", "forwarded", 200, 1);  // another trigger: never counted

  const std::string t = "T";
  const std::vector<std::pair<std::string, int>> windows = {
      // On hours: r4..r9.
      {"since=" + day + t + "10:00:00Z&until=" + day + t + "12:00:00Z", 6},
      // The same instants with offsets (+ sent as %2B).
      {"since=" + day + t + "11:00:00%2B01:00&until=" + day + t + "07:00:00-05:00", 6},
      // Inside hours: r6, r7.
      {"since=" + day + t + "10:20:00.5Z&until=" + day + t + "11:40:00.25Z", 2},
      // A whole day: r2..r11.
      {"since=" + day + t + "00:00:00Z&until=" + next + t + "00:00:00Z", 10},
      // A microsecond wider than the day on each side: all twelve.
      {"since=" + prev + t + "23:59:59.999999Z&until=" + next + t + "00:00:00.000001Z", 12},
      // A microsecond wider than the hours on each side: r3..r10.
      {"since=" + day + t + "09:59:59.999999Z&until=" + day + t + "12:00:00.000001Z", 8},
      // Open ends: r10..r12 and r1..r3.
      {"since=" + day + t + "12:00:00Z", 3},
      {"until=" + day + t + "10:00:00Z", 3},
      // Empty: since == until.
      {"since=" + day + t + "10:20:00.5Z&until=" + day + t + "10:20:00.5Z", 0},
  };
  const auto expect_windows = [&](const std::string& stage) {
    SCOPED_TRACE(stage);
    for (const auto& [window, want] : windows) {
      EXPECT_EQ(trigger_stats(a_, window)["total_requests"], want) << window;
      auto list = get("/api/v1/stats?" + window);
      ASSERT_EQ(list["items"].size(), 2u) << list.dump();
      EXPECT_EQ(list["items"][0]["total_requests"], want) << window;
    }
  };
  expect_windows("log rows only");
  roll_up();
  expect_windows("rolled up");
}

// Verifies that validation is unchanged: bad times, a reversed window and unknown parameters
// get 400 naming the field, an unknown trigger 404, and none of them reaches the database.
TEST_F(AdminStatsE2E, InvalidWindowsAreRefusedAndUnknownTriggersGet404) {
  const auto status_and_field = [&](const std::string& path) {
    auto r = http_request("GET", gateway_->admin_url(path),
                          {{"Authorization", std::string("Bearer ") + kToken}});
    auto j = Json::parse(r.body, nullptr, false);
    const bool named = j.is_object() && j.contains("field") && j["field"].is_string();
    return std::make_pair(r.status, named ? j["field"].get<std::string>() : std::string());
  };
  using P = std::pair<int, std::string>;
  EXPECT_EQ(status_and_field("/api/v1/stats?since=yesterday"), P(400, "since"));
  EXPECT_EQ(status_and_field("/api/v1/stats?until=2024-02-30T00:00:00Z"), P(400, "until"));
  EXPECT_EQ(status_and_field("/api/v1/stats?since=2024-05-02T00:00:00Z"
                             "&until=2024-05-01T00:00:00Z"),
            P(400, "until"));
  EXPECT_EQ(status_and_field("/api/v1/stats?trigger_id=1").first, 400);
  EXPECT_EQ(status_and_field("/api/v1/triggers/" + std::to_string(a_) + "/stats?since=x"),
            P(400, "since"));
  EXPECT_EQ(status_and_field("/api/v1/triggers/999999/stats").first, 404);
  EXPECT_EQ(status_and_field("/api/v1/triggers/999999/stats?since=2024-05-01T00:00:00Z").first,
            404);
  EXPECT_EQ(status_and_field("/api/v1/triggers/abc/stats"), P(400, "id"));
}

}  // namespace
}  // namespace hookguard::testing
