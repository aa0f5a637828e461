// One lazily (re)connected PostgreSQL connection for the admin API's own queries.
#pragma once

#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <utility>

#include "policy/result.h"

namespace hookguard::admin {

/// Runs transactions on one connection, reconnecting after it broke. Not thread-safe: the admin
/// listener runs on one reactor thread.
class PgSession {
 public:
  explicit PgSession(std::string dsn) : dsn_(std::move(dsn)) {}

  /// Runs `body(tx)` in a transaction (committed when the body succeeds) under a statement
  /// timeout; every exception becomes an Error ("db_unavailable" or "db_error", never sent to a
  /// client).
  template <class T, class Body>
  Result<T> run(const std::string& context, Body&& body) {
    try {
      pqxx::work tx(connection());
      // A slow query must not hold the admin reactor thread for long.
      tx.exec("SET LOCAL statement_timeout = 10000");
      Result<T> result = body(tx);
      if (result) tx.commit();
      return result;
    } catch (const std::exception& e) {
      return tl::unexpected(to_error(e, context));
    }
  }

 private:
  pqxx::connection& connection();
  Error to_error(const std::exception& e, const std::string& context);

  std::string dsn_;
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace hookguard::admin
