#include "db/migrator.h"

#include <algorithm>
#include <cstdint>
#include <pqxx/pqxx>
#include <set>

#include "db/pg_error.h"

namespace hookguard::db {
namespace {

// Arbitrary but fixed: every hookguard binary must contend for the same advisory lock.
constexpr std::int64_t kMigrationLockKey = 0x48474d4947524154;  // "HGMIGRAT"

// A session-level advisory lock that is released however migrate() leaves. If the connection
// broke, the server has already released it with the session.
class AdvisoryLock {
 public:
  explicit AdvisoryLock(pqxx::connection& conn) : conn_(conn) {
    pqxx::nontransaction tx(conn_);
    tx.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
  }
  ~AdvisoryLock() {
    try {
      pqxx::nontransaction tx(conn_);
      tx.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
    } catch (const std::exception&) {
    }
  }
  AdvisoryLock(const AdvisoryLock&) = delete;
  AdvisoryLock& operator=(const AdvisoryLock&) = delete;

 private:
  pqxx::connection& conn_;
};

Result<void> check_list(const std::vector<Migration>& migrations) {
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].name.empty()) return fail("migration_invalid", "a migration has no name");
    if (i > 0 && !(migrations[i - 1].name < migrations[i].name)) {
      return fail("migration_invalid", "migrations are not strictly ordered by name: " +
                                           migrations[i - 1].name + ", " + migrations[i].name);
    }
  }
  return {};
}

}  // namespace

Result<MigrationReport> migrate(pqxx::connection& conn, const std::vector<Migration>& migrations) {
  if (auto ok = check_list(migrations); !ok) return tl::unexpected(ok.error());
  const std::string dsn = conn.options();
  std::string step = "taking the migration lock";
  try {
    AdvisoryLock lock(conn);

    step = "reading schema_migrations";
    std::vector<std::string> recorded;
    {
      pqxx::work tx(conn);
      tx.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          " version text PRIMARY KEY,"
          " applied_at timestamptz NOT NULL DEFAULT now())");
      for (const auto& row : tx.exec("SELECT version FROM schema_migrations ORDER BY version")) {
        recorded.push_back(row[0].as<std::string>());
      }
      tx.commit();
    }

    std::set<std::string> known;
    for (const auto& m : migrations) known.insert(m.name);
    for (const auto& version : recorded) {
      if (known.count(version) == 0) {
        return fail("migration_unknown",
                    "the database records migration " + version +
                        ", which this binary does not know (is the binary older than the "
                        "database?); nothing applied");
      }
    }

    MigrationReport report;
    report.already_applied = recorded;
    const std::set<std::string> applied(recorded.begin(), recorded.end());
    const std::string newest = recorded.empty() ? std::string() : recorded.back();
    std::vector<const Migration*> pending;
    for (const auto& m : migrations) {
      if (applied.count(m.name) != 0) continue;
      // Applying an older file after a newer one would run DDL in an order nobody tested.
      if (!newest.empty() && m.name < newest) {
        return fail("migration_out_of_order", "migration " + m.name +
                                                  " is pending but sorts before the applied " +
                                                  newest + "; nothing applied");
      }
      pending.push_back(&m);
    }

    for (const Migration* m : pending) {
      step = "applying " + m->name;
      pqxx::work tx(conn);
      tx.exec(m->sql);
      tx.exec_params("INSERT INTO schema_migrations (version) VALUES ($1)", m->name);
      tx.commit();
      report.applied.push_back(m->name);
    }
    return report;
  } catch (const std::exception& e) {
    return tl::unexpected(error_from_exception(e, "migrate: " + step, dsn, "migration_failed"));
  }
}

Result<MigrationReport> migrate(const std::string& dsn) {
  try {
    pqxx::connection conn(dsn);
    return migrate(conn);
  } catch (const std::exception& e) {
    return tl::unexpected(error_from_exception(e, "migrate: connecting", dsn, "db_unavailable"));
  }
}

}  // namespace hookguard::db
