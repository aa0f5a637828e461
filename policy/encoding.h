// Hex and base64 codecs and random tokens.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/trigger_policy.h"

namespace hookguard::policy {

/// Lower-case hex of `bytes`.
std::string to_hex(std::string_view bytes);
/// Decodes hex (either case); nullopt on odd length or a non-hex character.
std::optional<std::string> from_hex(std::string_view hex);
/// Standard base64 with padding.
std::string to_base64(std::string_view bytes);
/// Decodes standard base64 (padding optional); nullopt on any invalid character.
std::optional<std::string> from_base64(std::string_view text);
/// `n` bytes from the OS CSPRNG (OpenSSL RAND_bytes).
std::string random_bytes(std::size_t n);
/// `n` characters of [0-9A-Za-z], uniformly drawn from the CSPRNG.
std::string random_base62(std::size_t n);
/// A new trigger key: "wh_" + 32 base62 characters.
std::string generate_trigger_key();
/// A new HMAC secret for `scheme`, 256 bits from the CSPRNG either way: "whsec_" + base64 of
/// 32 bytes for standard-webhooks (the form its senders expect), else 43 base62 characters,
/// which paste cleanly into any provider's form.
std::string generate_secret(SignatureScheme scheme);
/// A new random UUID v4 in canonical text form.
std::string generate_uuid_v4();
/// A new UUID v7 (RFC 9562) in canonical text form: `unix_ms` (clamped to 0 and 2^48 - 1) in
/// the first 48 bits, then 74 random bits. Ids of later milliseconds sort after earlier ones,
/// so the request log's unique index on them grows at its right edge instead of at a random
/// page per row.
std::string generate_uuid_v7(std::int64_t unix_ms);

}  // namespace hookguard::policy
