// The one strict codec of the Trigger document, for the admin API (JSON) and `apply` (YAML).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "policy/result.h"
#include "policy/trigger_policy.h"

namespace hookguard::policy {

/// Which document is being decoded; decides which fields are accepted.
///   kCreate: admin POST — `key` allowed; `version` and other read-only fields rejected.
///   kPatch:  admin PATCH — `key` read-only; `version` allowed (optimistic concurrency).
///   kFile:   one entry of a triggers file — like kCreate, plus `policy.hmac.secret_env`.
enum class DecodeMode { kCreate, kPatch, kFile };

/// Bounds every decoded document stays within; exceeding one is an error, never a truncation.
struct CodecLimits {
  static constexpr std::size_t kMaxDepth = 16;
  static constexpr std::size_t kMaxArrayEntries = 1000;  // list entries; fields of one object
  static constexpr std::size_t kMaxStringBytes = 4096;
  static constexpr std::size_t kMaxYamlNodes = 200000;  // after alias expansion
};

/// A decoded Trigger document: the spec (defaults where a field was absent), the write-only
/// secret fields, and the dotted paths of the leaf fields that were given (for PATCH), e.g.
/// "policy.rate_limit.requests", "policy.hmac.secret", "version".
struct TriggerInput {
  TriggerSpec spec;
  std::optional<std::string> secret;
  std::optional<std::string> secret_env;
  std::set<std::string> present;
};

/// Decodes one Trigger JSON document strictly (unknown fields, wrong types, read-only fields and
/// exceeded bounds are errors "<path>: <reason>" with code "invalid_request" and field = path).
/// Does not run validate(): callers do, after merging.
Result<TriggerInput> trigger_from_json(std::string_view json_text, DecodeMode mode);

/// Parses any other JSON request body of the admin API under the same rules as
/// trigger_from_json: depth, list entries and object fields bounded by CodecLimits while
/// parsing (before memory grows), duplicate keys refused. Errors are "invalid_request" and never
/// quote the input, which may carry a secret.
Result<nlohmann::ordered_json> parse_bounded_json(std::string_view json_text);

/// Decodes a triggers file (`triggers:` list, DESIGN §6), each entry in kFile mode; errors are
/// prefixed "triggers[i]." and duplicate names or keys within the file are errors.
Result<std::vector<TriggerInput>> triggers_from_yaml(std::string_view yaml_text);

/// Copies the fields listed in `patch.present` into `target` (not `version`: it is a
/// precondition, read it from patch.spec.version; not the secrets: they travel separately).
void apply_patch(TriggerSpec& target, const TriggerInput& patch);

/// The Trigger JSON of DESIGN §5 (with "version"; policy.hmac has "secret_set", never a secret).
std::string trigger_to_json(const TriggerSpec& spec, bool secret_set, std::string_view created,
                            std::string_view updated);

/// The triggers file format for `hookguard export`: every field, keys included, no secrets,
/// no ids; triggers_from_yaml reads it back into equal specs (ids and versions aside).
std::string triggers_to_yaml(const std::vector<TriggerSpec>& specs);

}  // namespace hookguard::policy
