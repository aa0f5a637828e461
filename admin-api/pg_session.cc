#include "admin-api/pg_session.h"

#include "db/pg_error.h"

namespace hookguard::admin {

pqxx::connection& PgSession::connection() {
  // libpqxx 6 would try to reactivate a broken connection itself; a fresh one is predictable.
  if (!conn_ || !conn_->is_open()) conn_ = std::make_unique<pqxx::connection>(dsn_);
  return *conn_;
}

Error PgSession::to_error(const std::exception& e, const std::string& context) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
      dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    conn_.reset();
  }
  return db::error_from_exception(e, "admin api: " + context, dsn_);
}

}  // namespace hookguard::admin
