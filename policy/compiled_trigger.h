// A trigger compiled once into its runtime form: parsed CIDRs, decrypted secrets.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/cidr_set.h"
#include "policy/result.h"
#include "policy/trigger_policy.h"

namespace hookguard::policy {

/// The plaintext HMAC secrets of a trigger, held only in memory.
struct TriggerSecrets {
  std::string current;
  std::optional<std::string> previous;
  std::int64_t previous_valid_until_unix_ms = 0;  // previous is accepted while now < this
};

/// An immutable, validated trigger ready for the hot path. Shared as
/// shared_ptr<const CompiledTrigger>; a reload swaps whole snapshots.
struct CompiledTrigger {
  TriggerSpec spec;
  CidrSet allowlist;
  TriggerSecrets secrets;

  /// Validates `spec` and parses its CIDRs; HMAC-enabled triggers need a current secret.
  static Result<CompiledTrigger> compile(TriggerSpec spec, TriggerSecrets secrets);

  /// Secrets to try at `now_unix_ms`: current, then previous while it is still valid.
  std::vector<std::string_view> secrets_at(std::int64_t now_unix_ms) const;
  /// True when `method` (upper-case) is in spec.methods.
  bool allows_method(std::string_view method) const;
};

using TriggerPtr = std::shared_ptr<const CompiledTrigger>;

}  // namespace hookguard::policy
