#include "db/maintenance.h"

#include <charconv>
#include <ctime>
#include <pqxx/pqxx>

#include "db/pg_error.h"
#include "db/pg_socket_guard.h"

namespace hookguard::db {
namespace {

constexpr int kMaxDays = 36500;

// The UTC calendar day of `now` as 'YYYY-MM-DD': partitions are UTC days (0001_init.sql).
std::string utc_day(std::chrono::system_clock::time_point now) {
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

template <class T>
T scalar(pqxx::work& tx, const std::string& sql, const std::string& day, std::int64_t arg) {
  return tx.exec_params(sql, day, arg)[0][0].as<T>();
}

// Calls hookguard_rollup() until it folds less than a full batch or `max_batches` ran; each
// call commits on its own, so a long catch-up never holds one huge transaction.
std::int64_t roll_up(pqxx::connection& conn, std::int64_t batch_rows, int max_batches,
                     bool& caught_up) {
  std::int64_t total = 0;
  caught_up = false;
  for (int i = 0; i < max_batches; ++i) {
    pqxx::work tx(conn);
    const auto n =
        tx.exec_params("SELECT hookguard_rollup($1)", batch_rows)[0][0].as<std::int64_t>();
    tx.commit();
    total += n;
    if (n < batch_rows) {
      caught_up = true;
      break;
    }
  }
  return total;
}

}  // namespace

Result<Maintenance> Maintenance::create(MaintenanceOptions options) {
  if (options.dsn.empty()) return fail("invalid_config", "maintenance: dsn is empty", "dsn");
  if (options.partition_days_ahead < 1 || options.partition_days_ahead > 365) {
    return fail("invalid_config", "audit.partition_days_ahead: must be 1..365",
                "audit.partition_days_ahead");
  }
  if (options.retention_days &&
      (*options.retention_days < 1 || *options.retention_days > kMaxDays)) {
    return fail("invalid_config", "audit.retention_days: must be 1..36500", "audit.retention_days");
  }
  if (options.rollup_retention_days < 1 || options.rollup_retention_days > kMaxDays) {
    return fail("invalid_config", "audit.rollup_retention_days: must be 1..36500",
                "audit.rollup_retention_days");
  }
  // Rollups are what remains once raw rows are gone; keeping them for less would lose history
  // that the log itself still has.
  if (options.retention_days && options.rollup_retention_days < *options.retention_days) {
    return fail("invalid_config",
                "audit.rollup_retention_days: must be at least audit.retention_days",
                "audit.rollup_retention_days");
  }
  if (options.rollup_batch_rows < 1 || options.rollup_max_batches < 1) {
    return fail("invalid_config", "maintenance: rollup batch size and count must be positive");
  }
  return Maintenance(std::move(options));
}

Result<MaintenanceReport> Maintenance::run_once(std::chrono::system_clock::time_point now,
                                                PgSocketGuard* guard) const {
  const std::string today = utc_day(now);
  MaintenanceReport report;
  std::string step = "connecting";
  try {
    pqxx::connection conn(dsn_with_defaults(options_.dsn, "hookguard-maintenance"));
    const PgSocketGuard::Tracked tracked = PgSocketGuard::track(guard, conn);

    step = "ensuring partitions";
    {
      pqxx::work tx(conn);
      report.partitions_created =
          scalar<int>(tx, "SELECT hookguard_ensure_partitions($1::date - 1, $2::integer)", today,
                      options_.partition_days_ahead + 2);
      tx.commit();
    }

    step = "rolling up";
    report.rows_rolled_up = roll_up(conn, options_.rollup_batch_rows, options_.rollup_max_batches,
                                    report.rollup_caught_up);

    if (options_.retention_days) {
      step = "dropping old partitions";
      pqxx::work tx(conn);
      report.partitions_dropped =
          scalar<int>(tx, "SELECT hookguard_retention($1::date - $2::integer)", today,
                      *options_.retention_days);
      tx.commit();
    }

    step = "deleting old rollups";
    {
      pqxx::work tx(conn);
      report.rollup_rows_deleted = scalar<std::int64_t>(
          tx,
          "SELECT hookguard_rollup_retention((($1::date - $2::integer)::timestamp)"
          " AT TIME ZONE 'UTC')",
          today, options_.rollup_retention_days);
      tx.commit();
    }

    step = "reading state";
    pqxx::work tx(conn);
    report.rollup_watermark =
        tx.exec1("SELECT watermark FROM webhook_rollup_state")[0].as<std::int64_t>();
    report.default_partition_rows =
        tx.exec1("SELECT hookguard_default_partition_rows()")[0].as<std::int64_t>();
    tx.commit();
    return report;
  } catch (const std::exception& e) {
    return tl::unexpected(error_from_exception(e, "maintenance: " + step, options_.dsn));
  }
}

Result<int> drop_partitions_older_than(const std::string& dsn, int days,
                                       std::chrono::system_clock::time_point now) {
  if (days < 1 || days > kMaxDays) {
    return fail("invalid_argument", "retention: --older-than must be 1..36500 days", "older-than");
  }
  const std::string today = utc_day(now);
  std::string step = "connecting";
  try {
    pqxx::connection conn(dsn);
    // Roll up first, so that the partitions about to go are already counted in the rollups.
    step = "rolling up";
    bool caught_up = false;
    roll_up(conn, 1000000, 1000, caught_up);
    step = "dropping old partitions";
    pqxx::work tx(conn);
    const int dropped =
        scalar<int>(tx, "SELECT hookguard_retention($1::date - $2::integer)", today, days);
    tx.commit();
    return dropped;
  } catch (const std::exception& e) {
    return tl::unexpected(error_from_exception(e, "retention: " + step, dsn));
  }
}

Result<int> parse_retention_days(std::string_view text) {
  std::string_view digits = text;
  if (!digits.empty() && digits.back() == 'd') digits.remove_suffix(1);
  int days = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), days);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || days < 1 ||
      days > kMaxDays) {
    return fail("invalid_argument",
                "retention period: expected days as \"30d\" or \"30\" (1..36500), got \"" +
                    std::string(text) + "\"",
                "older-than");
  }
  return days;
}

}  // namespace hookguard::db
