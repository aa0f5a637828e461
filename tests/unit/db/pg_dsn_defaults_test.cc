// dsn_with_defaults (db/pg_socket_guard.cc): the libpq parameters every gateway connection adds.
#include <gtest/gtest.h>

#include <string>

#include "db/pg_socket_guard.h"

namespace hookguard::db {
namespace {

TEST(PgDsnDefaults, NamesTheConnectionAndBoundsTheConnect) {
  const std::string dsn = dsn_with_defaults("postgresql://u@h/db", "hookguard-triggers");
  EXPECT_EQ(dsn.rfind("postgresql://u@h/db?connect_timeout=2&", 0), 0U) << dsn;
  EXPECT_NE(dsn.find("&application_name=hookguard-triggers"), std::string::npos) << dsn;
}

TEST(PgDsnDefaults, KeepsWhatTheDsnSetsItself) {
  const std::string dsn =
      dsn_with_defaults("host=h dbname=d connect_timeout=10 application_name=ops", "hookguard-x");
  EXPECT_EQ(dsn.rfind("host=h dbname=d connect_timeout=10 application_name=ops keepalives=1 ", 0),
            0U)
      << dsn;
  EXPECT_EQ(dsn.find("connect_timeout=2"), std::string::npos) << dsn;
  EXPECT_EQ(dsn.find("hookguard-x"), std::string::npos) << dsn;
}

}  // namespace
}  // namespace hookguard::db
