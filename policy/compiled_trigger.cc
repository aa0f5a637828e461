#include "policy/compiled_trigger.h"

#include "policy/encoding.h"

namespace hookguard::policy {
namespace {

// standard-webhooks keys are base64 (optionally "whsec_"-prefixed); one that does not decode
// could never verify anything, so it is refused when the trigger is compiled, not per request.
Result<void> check_standard_webhooks_secret(std::string_view secret, const std::string& field) {
  if (secret.starts_with("whsec_")) secret.remove_prefix(6);
  const auto key = from_base64(secret);
  if (!key || key->empty()) {
    return fail("invalid_request",
                field +
                    ": standard-webhooks secret must be base64, optionally "
                    "prefixed whsec_",
                field);
  }
  return {};
}

Result<void> check_secret(const HmacPolicy& hmac, std::string_view secret,
                          const std::string& field) {
  if (auto ok = validate_secret(secret, field); !ok) return ok;
  if (hmac.scheme == SignatureScheme::kStandardWebhooks) {
    return check_standard_webhooks_secret(secret, field);
  }
  return {};
}

}  // namespace

Result<CompiledTrigger> CompiledTrigger::compile(TriggerSpec spec, TriggerSecrets secrets) {
  try {
    if (auto ok = validate(spec); !ok) return tl::unexpected(ok.error());
    auto allowlist = CidrSet::parse(spec.policy.ip_allowlist.cidrs);
    if (!allowlist) {
      // CidrSet names the entry as "[i]"; give it its full path.
      const std::string field = "policy.ip_allowlist.cidrs" + allowlist.error().field;
      const auto& inner = allowlist.error();
      std::string message = inner.message;
      if (!inner.field.empty() && message.starts_with(inner.field + ": ")) {
        message.erase(0, inner.field.size() + 2);
      }
      return fail("invalid_request", field + ": " + message, field);
    }
    if (spec.policy.hmac.enabled) {
      if (auto ok = check_secret(spec.policy.hmac, secrets.current, "policy.hmac.secret"); !ok) {
        return tl::unexpected(ok.error());
      }
      if (secrets.previous) {
        if (auto ok =
                check_secret(spec.policy.hmac, *secrets.previous, "policy.hmac.previous_secret");
            !ok) {
          return tl::unexpected(ok.error());
        }
      }
    }
    CompiledTrigger trigger;
    trigger.spec = std::move(spec);
    trigger.allowlist = std::move(*allowlist);
    trigger.secrets = std::move(secrets);
    return trigger;
  } catch (...) {
    return fail("internal", "out of memory while compiling trigger");
  }
}

std::vector<std::string_view> CompiledTrigger::secrets_at(std::int64_t now_unix_ms) const {
  std::vector<std::string_view> out;
  out.reserve(2);
  if (!secrets.current.empty()) out.emplace_back(secrets.current);
  // Strictly before the deadline: at previous_valid_until the old secret is already retired.
  if (secrets.previous && now_unix_ms < secrets.previous_valid_until_unix_ms) {
    out.emplace_back(*secrets.previous);
  }
  return out;
}

bool CompiledTrigger::allows_method(std::string_view method) const {
  for (const auto& allowed : spec.methods) {
    if (allowed == method) return true;
  }
  return false;
}

}  // namespace hookguard::policy
