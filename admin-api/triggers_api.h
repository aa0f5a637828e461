// The triggers resource of the admin API: list, create, read, patch, delete, rotate the secret.
#pragma once

#include <cstdint>
#include <string>

#include "admin-api/api_reply.h"
#include "admin-api/audit_log.h"
#include "admin-api/trigger_rules.h"
#include "db/trigger_store.h"
#include "policy/secret_box.h"

namespace hookguard::admin {

/// Handlers for /api/v1/triggers[/{id}[/secret/rotate]]. Every mutation writes one audit row.
class TriggersApi {
 public:
  TriggersApi(std::string dsn, policy::SecretBox box, DeploymentLimits limits, AuditLog& audit,
              std::int64_t default_grace_ms);

  ApiReply list(const ApiRequest& request);
  ApiReply create(const ApiRequest& request);
  ApiReply get(const ApiRequest& request);
  ApiReply patch(const ApiRequest& request);
  ApiReply remove(const ApiRequest& request);
  ApiReply rotate(const ApiRequest& request);

 private:
  Result<db::StoredTrigger> load(const ApiRequest& request);
  void audit(const std::string& action, std::int64_t trigger_id,
             const nlohmann::ordered_json& diff);

  db::TriggerStore store_;
  policy::SecretBox box_;
  DeploymentLimits limits_;
  AuditLog& audit_;
  std::int64_t default_grace_ms_;
};

/// The Trigger JSON of DESIGN §5 for a stored row (no secret, "secret_set" instead).
nlohmann::ordered_json trigger_json(const db::StoredTrigger& row);

/// Parses a path id: a positive integer, else 400 naming "id".
Result<std::int64_t> parse_trigger_id(const std::string& text);

}  // namespace hookguard::admin
