// Shared e2e helpers: create triggers in a test database and read back log rows.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "db/trigger_store.h"
#include "policy/trigger_policy.h"

namespace hookguard::testing {

/// A trigger spec with test defaults: POST only, upstream `upstream_url`, every check off.
policy::TriggerSpec basic_trigger(const std::string& name, const std::string& upstream_url);

/// Inserts `spec` (key generated when empty), sealing `secret` with the test master key.
db::StoredTrigger insert_trigger(const std::string& dsn, policy::TriggerSpec spec,
                                 const std::string& secret = "");

/// Replaces a stored trigger's spec (and secret, when given); returns the new row.
db::StoredTrigger update_trigger(const std::string& dsn, const db::StoredTrigger& current,
                                 const policy::TriggerSpec& spec, const std::string& secret = "");

/// One webhook_event_log row: column name -> text value (nullopt for NULL).
using LogRow = std::map<std::string, std::optional<std::string>>;

/// Waits until the row with `request_id` is in webhook_event_log; nullopt on timeout.
std::optional<LogRow> wait_for_log_row(
    const std::string& dsn, const std::string& request_id,
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// Runs a query and returns the first column of the first row ("" when no row, "NULL").
std::string query_value(const std::string& dsn, const std::string& sql);

/// Waits until `sql` returns `expected` as its first value; false on timeout.
bool wait_for_value(const std::string& dsn, const std::string& sql, const std::string& expected,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace hookguard::testing
