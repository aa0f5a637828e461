// Turns libpqxx exceptions into hookguard Errors without leaking DSN credentials.
#pragma once

#include <exception>
#include <string>

#include "policy/result.h"

namespace hookguard::db {

/// `message` with every occurrence of the password embedded in `dsn` (URI `user:pw@` or
/// keyword `password=pw`) replaced by "***".
std::string redact_dsn_password(std::string message, const std::string& dsn);

/// Maps a libpqxx/std exception to an Error: broken connections become "db_unavailable",
/// everything else `fallback_code`. The message is prefixed with `context` and redacted.
Error error_from_exception(const std::exception& e, const std::string& context,
                           const std::string& dsn, const std::string& fallback_code = "db_error");

}  // namespace hookguard::db
