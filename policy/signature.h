// HMAC signature schemes: verify what a sender signed, and sign as a sender would.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/headers.h"
#include "policy/result.h"
#include "policy/trigger_policy.h"

namespace hookguard::policy {

enum class SignatureStatus { kValid, kMissing, kInvalid };

/// Raw HMAC of `data` under `key`.
std::string hmac_raw(HmacAlgorithm algorithm, std::string_view key, std::string_view data);
/// Lower-case hex HMAC.
std::string hmac_hex(HmacAlgorithm algorithm, std::string_view key, std::string_view data);
/// Constant-time equality (CRYPTO_memcmp); different lengths compare unequal.
bool constant_time_equals(std::string_view a, std::string_view b);

/// The header a scheme reads its signature from, honouring `policy.header` when set.
std::string signature_header(const HmacPolicy& policy);

/// Verifies a request's signature against each secret in `secrets` (current first, then a
/// still-valid previous one). `now_unix` is for timestamped schemes. Never throws; malformed
/// input is kInvalid, an absent signature header kMissing.
SignatureStatus verify_signature(const HmacPolicy& policy, const HeaderList& headers,
                                 std::string_view body,
                                 const std::vector<std::string_view>& secrets,
                                 std::int64_t now_unix);

/// The headers a sender would send for `body`: what `hookguard sign` prints.
Result<HeaderList> sign_request(const HmacPolicy& policy, std::string_view secret,
                                std::string_view body, std::int64_t now_unix,
                                std::string_view delivery_id = "");

}  // namespace hookguard::policy
