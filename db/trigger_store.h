// Reads and writes webhook_trigger rows (the source of truth for trigger policy).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/compiled_trigger.h"
#include "policy/result.h"
#include "policy/secret_box.h"
#include "policy/trigger_policy.h"

namespace hookguard::db {

class PgSocketGuard;

/// A trigger row with its secrets still sealed.
struct StoredTrigger {
  policy::TriggerSpec spec;
  std::optional<std::string> secret_enc;           // hmac_secret_enc (sealed, AAD = key)
  std::optional<std::string> previous_secret_enc;  // hmac_previous_secret_enc
  std::int64_t previous_valid_until_unix_ms = 0;
  std::string created;  // ISO 8601
  std::string updated;
};

/// Trigger persistence over one libpqxx connection (not thread-safe: one store per thread).
class TriggerStore {
 public:
  /// With `guard`, every connection the store opens is registered there, so that another
  /// thread can end a call that hangs (see PgSocketGuard); the guard must outlive the store.
  explicit TriggerStore(std::string dsn, PgSocketGuard* guard = nullptr);
  ~TriggerStore();
  TriggerStore(const TriggerStore&) = delete;
  TriggerStore& operator=(const TriggerStore&) = delete;

  Result<std::vector<StoredTrigger>> list_all();
  Result<std::optional<StoredTrigger>> find_by_name(const std::string& name);
  Result<std::optional<StoredTrigger>> find_by_id(std::int64_t id);
  /// Inserts; fills spec.id, spec.version, created/updated in the returned row.
  Result<StoredTrigger> insert(const StoredTrigger& trigger);
  /// Updates every column by id when `expected_version` matches; error code "conflict" if not,
  /// "not_found" when the id is gone. Bumps version.
  Result<StoredTrigger> update(const StoredTrigger& trigger, std::int64_t expected_version);
  /// Deletes by id; false when absent.
  Result<bool> remove(std::int64_t id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Decrypts a stored trigger's secrets and compiles it for the hot path.
Result<policy::CompiledTrigger> compile_stored(const StoredTrigger& stored,
                                               const policy::SecretBox& box);

}  // namespace hookguard::db
