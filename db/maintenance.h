// Periodic upkeep of the request log: partitions ahead, rollups, retention (DESIGN §3, #8).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "policy/result.h"

namespace hookguard::db {

class PgSocketGuard;

/// What the maintenance loop does; filled from the `audit.*` config keys.
struct MaintenanceOptions {
  std::string dsn;
  /// Daily partitions kept ready beyond today (today-1 .. today+days_ahead exist after a run).
  int partition_days_ahead = 7;
  /// audit.retention_days: drop log partitions whose day ended more than this many days ago;
  /// unset keeps the log forever.
  std::optional<int> retention_days;
  /// audit.rollup_retention_days: rollup rows older than this are deleted.
  int rollup_retention_days = 400;
  /// Rows folded per hookguard_rollup() call, and calls per run (bounds one run's work).
  std::int64_t rollup_batch_rows = 1000000;
  int rollup_max_batches = 50;
};

/// What one run did.
struct MaintenanceReport {
  int partitions_created = 0;
  std::int64_t rows_rolled_up = 0;
  bool rollup_caught_up = false;  // false: the run hit rollup_max_batches, more rows wait
  std::int64_t rollup_watermark = 0;
  int partitions_dropped = 0;  // 0 when retention_days is unset
  std::int64_t rollup_rows_deleted = 0;
  std::int64_t default_partition_rows = 0;  // should stay 0; non-zero deserves a warning
};

/// Runs the maintenance steps against one database; the caller's loop calls run_once every
/// ~30 s (the rollup then lags the log by at most about a minute).
class Maintenance {
 public:
  /// Validates the options (ranges of the day counts and batch sizes).
  static Result<Maintenance> create(MaintenanceOptions options);

  /// One pass at time `now` (UTC days are taken from it): ensure partitions today-1 ..
  /// today+days_ahead, roll up until caught up, then, when configured, drop partitions older
  /// than retention_days (only fully rolled-up ones) and delete rollups older than
  /// rollup_retention_days. Connects per run (with connect_timeout and keepalives unless the DSN
  /// sets them: dsn_with_defaults); errors (PostgreSQL down) are values. With `guard`, the
  /// run's connection is registered there while it lasts, so that another thread can end a
  /// call that hangs; each step commits on its own, so a cut one is simply rolled back.
  Result<MaintenanceReport> run_once(std::chrono::system_clock::time_point now,
                                     PgSocketGuard* guard = nullptr) const;

  const MaintenanceOptions& options() const { return options_; }

 private:
  explicit Maintenance(MaintenanceOptions options) : options_(std::move(options)) {}
  MaintenanceOptions options_;
};

/// `hookguard retention --older-than <days>`: rolls up what is pending, then drops every log
/// partition whose UTC day lies wholly before today-`days` (as of `now`); returns how many.
/// Never DELETEs rows; a partition with rows not yet rolled up is kept.
Result<int> drop_partitions_older_than(
    const std::string& dsn, int days,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// Parses a retention period: "30d" or "30" (days, 1..36500).
Result<int> parse_retention_days(std::string_view text);

}  // namespace hookguard::db
