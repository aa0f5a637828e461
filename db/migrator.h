// Applies the numbered SQL migrations compiled into the binary.
#pragma once

#include <pqxx/connection>
#include <string>
#include <vector>

#include "policy/result.h"

namespace hookguard::db {

/// One migration file: "0001_init.sql" and its SQL.
struct Migration {
  std::string name;
  std::string sql;
};

/// The migrations compiled into this binary, in order (generated from db/migrations/).
const std::vector<Migration>& embedded_migrations();

/// What a migration run did.
struct MigrationReport {
  std::vector<std::string> applied;          // names applied now
  std::vector<std::string> already_applied;  // names found in schema_migrations
};

/// Applies every pending migration in order, each in its own transaction, under an advisory
/// lock so concurrent starters do not race. Refuses (error, nothing applied) when the database
/// records a migration this binary does not know.
Result<MigrationReport> migrate(pqxx::connection& conn,
                                const std::vector<Migration>& migrations = embedded_migrations());

/// Connects to `dsn` and migrates; errors from libpqxx become values.
Result<MigrationReport> migrate(const std::string& dsn);

}  // namespace hookguard::db
