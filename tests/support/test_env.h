// Where the integration and e2e suites find the services started by deploy/local/.
#pragma once

#include <chrono>
#include <string>

namespace hookguard::testing {

/// The value of an environment variable the suite needs; fails the test binary with a message
/// that says to source deploy/local's env file when it is missing.
std::string required_env(const std::string& name);

/// HOOKGUARD_POSTGRES_DSN's server, database `postgres`: where test databases are created.
std::string postgres_admin_dsn();
/// HOOKGUARD_REDIS_HOST / HOOKGUARD_REDIS_PORT.
std::string redis_host();
int redis_port();

/// A fresh, fully migrated database for one test, dropped again on destruction.
class PgTestDb {
 public:
  PgTestDb();
  ~PgTestDb();
  PgTestDb(const PgTestDb&) = delete;
  PgTestDb& operator=(const PgTestDb&) = delete;

  const std::string& name() const { return name_; }
  /// A libpq URI DSN for the test database.
  const std::string& dsn() const { return dsn_; }

 private:
  std::string name_;
  std::string dsn_;
};

/// A unique prefix for Redis keys or names of one test ("t<pid>_<counter>_<random>").
std::string unique_prefix();

/// Milliseconds since `start` (steady clock), for bounds on how long something took.
long ms_since(std::chrono::steady_clock::time_point start);

}  // namespace hookguard::testing
