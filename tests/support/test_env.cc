#include "tests/support/test_env.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <pqxx/pqxx>
#include <random>
#include <stdexcept>
#include <thread>

#include "db/migrator.h"

namespace hookguard::testing {
namespace {

// Replaces the database of a libpq DSN, URI ("postgresql://u@h:p/db?x=y") or keyword form.
std::string with_database(const std::string& dsn, const std::string& database) {
  const auto scheme = dsn.find("://");
  if (scheme == std::string::npos) return dsn + " dbname=" + database;  // the last one wins
  const auto path = dsn.find('/', scheme + 3);
  const auto query = dsn.find('?', scheme + 3);
  const std::string base = dsn.substr(0, std::min(path, query));
  const std::string params = query == std::string::npos ? "" : dsn.substr(query);
  return base + "/" + database + params;
}

void drop_database(const std::string& name) {
  pqxx::connection conn(postgres_admin_dsn());
  const std::string drop = "DROP DATABASE IF EXISTS " + conn.quote_name(name);
  // FORCE: a test that failed half-way may have left a connection (a LISTEN thread) behind.
  // It needs pg_signal_backend to end an autovacuum worker; a plain DROP ends those itself,
  // so it is the fallback, retried while other sessions are still leaving.
  try {
    pqxx::nontransaction tx(conn);
    tx.exec(drop + " WITH (FORCE)");
    return;
  } catch (const pqxx::sql_error&) {
  }
  for (int attempt = 1;; ++attempt) {
    try {
      pqxx::nontransaction tx(conn);
      tx.exec(drop);
      return;
    } catch (const pqxx::sql_error&) {
      if (attempt == 20) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
}

}  // namespace

std::string required_env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr || *value == '\0') {
    std::fprintf(stderr,
                 "\n%s is not set. The integration and e2e suites need the local services:\n"
                 "  bash deploy/local/start-services.sh && source var/local/env\n"
                 "then run the tests again.\n",
                 name.c_str());
    std::fflush(stderr);
    std::abort();
  }
  return value;
}

std::string postgres_admin_dsn() {
  return with_database(required_env("HOOKGUARD_POSTGRES_DSN"), "postgres");
}

std::string redis_host() { return required_env("HOOKGUARD_REDIS_HOST"); }

int redis_port() {
  const std::string text = required_env("HOOKGUARD_REDIS_PORT");
  try {
    return std::stoi(text);
  } catch (const std::exception&) {
    std::fprintf(stderr, "HOOKGUARD_REDIS_PORT is not a number: %s\n", text.c_str());
    std::abort();
  }
}

std::string unique_prefix() {
  static std::atomic<unsigned> counter{0};
  static const unsigned salt = std::random_device{}();
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "t%d_%u_%08x", static_cast<int>(::getpid()),
                counter.fetch_add(1), salt ^ std::random_device{}());
  return buffer;
}

PgTestDb::PgTestDb() : name_("hgtest_" + unique_prefix()) {
  dsn_ = with_database(required_env("HOOKGUARD_POSTGRES_DSN"), name_);
  {
    pqxx::connection conn(postgres_admin_dsn());
    pqxx::nontransaction tx(conn);
    tx.exec("CREATE DATABASE " + tx.quote_name(name_));
  }
  auto report = db::migrate(dsn_);
  if (!report) {
    const std::string message = "PgTestDb: migrating " + name_ + " failed: " + report.error().code +
                                ": " + report.error().message;
    try {
      drop_database(name_);
    } catch (const std::exception&) {
    }
    throw std::runtime_error(message);
  }
}

PgTestDb::~PgTestDb() {
  try {
    drop_database(name_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "PgTestDb: could not drop %s: %s\n", name_.c_str(), e.what());
  }
}

long ms_since(std::chrono::steady_clock::time_point start) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - start)
                               .count());
}

}  // namespace hookguard::testing
