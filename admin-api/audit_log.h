// Writes admin_audit_log rows: who changed which trigger, when and how (secrets redacted).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "admin-api/pg_session.h"
#include "policy/result.h"

namespace hookguard::admin {

/// Appends one row per mutating admin call.
class AuditLog {
 public:
  AuditLog(PgSession& session, std::string actor) : session_(session), actor_(std::move(actor)) {}

  /// Records `action` ("trigger.create", …) on `trigger_id` with `diff` (which must hold no
  /// secret: callers pass Trigger JSON, which never carries one).
  Result<void> record(const std::string& action, std::optional<std::int64_t> trigger_id,
                      const nlohmann::ordered_json& diff);

 private:
  PgSession& session_;
  std::string actor_;
};

/// The fields that differ between two Trigger JSON documents, as
/// {"<dotted.path>": {"from": …, "to": …}}; version, created and updated are left out.
nlohmann::ordered_json trigger_diff(const nlohmann::ordered_json& before,
                                    const nlohmann::ordered_json& after);

}  // namespace hookguard::admin
