// Policy as code: `hookguard apply -f triggers.yaml` (sync by name) and `hookguard export`.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "db/trigger_store.h"
#include "policy/result.h"
#include "policy/secret_box.h"
#include "policy/trigger_codec.h"

namespace hookguard::gateway {

/// The command line of `hookguard apply`.
struct ApplyOptions {
  std::string file;  // "-" reads standard input
  bool prune = false;
  bool dry_run = false;
  bool json_output = false;
};

/// One line of the plan, as printed: action is "create", "update", "unchanged" or "delete".
struct PlannedAction {
  std::string name;
  std::int64_t id = 0;  // 0 for a create that has not run yet
  std::string key;
  std::string action;
};

/// One planned change with what it writes. Plaintext secrets stay in memory: run_apply seals
/// them with the SecretBox (AAD = the trigger key) just before the write.
struct PlannedChange {
  PlannedAction summary;
  db::StoredTrigger row;                       // the row to insert or update (sealed secrets kept)
  std::int64_t expected_version = 0;           // update: the version the plan was made against
  std::optional<std::string> secret;           // seal and store as the current secret
  std::optional<std::string> previous_secret;  // re-seal under a changed key
  bool secret_generated = false;               // hmac enabled with no secret anywhere
};

/// The whole plan, in file order, deletes last.
struct Plan {
  std::vector<PlannedChange> changes;
};

/// What planning needs from outside the file: the environment (for secret_env) and the master
/// key (to compare a file's secret with the stored one).
struct SecretResolver {
  const policy::SecretBox& box;
  std::function<std::optional<std::string>(const std::string& name)> env;
};

/// Looks a variable up in the process environment (the resolver `run_apply` uses).
std::optional<std::string> process_env(const std::string& name);

/// Decides, without I/O, what syncing `desired` onto `existing` (matched by name) does. Every
/// desired spec is validated; errors name "triggers[i].<field>" (code "invalid_request"), or
/// "secret_unreadable" when a stored secret does not open with the master key.
Result<Plan> plan_apply(const std::vector<db::StoredTrigger>& existing,
                        const std::vector<policy::TriggerInput>& desired, bool prune,
                        const SecretResolver& secrets);

/// Runs `hookguard apply`: 0 done, 1 runtime or database error, 2 invalid file.
int run_apply(const ApplyOptions& options, const std::string& dsn, const policy::SecretBox& box,
              std::ostream& out, std::ostream& err);

/// Runs `hookguard export`: prints every trigger as a triggers file (no secrets). 0 or 1.
int run_export(const std::string& dsn, std::ostream& out, std::ostream& err);

}  // namespace hookguard::gateway
