// Secret encryption at rest: AES-256-GCM under a master key that never enters the database.
#pragma once

#include <string>
#include <string_view>

#include "policy/result.h"

namespace hookguard::policy {

/// Seals and opens secrets with AES-256-GCM (random 96-bit nonce, 128-bit tag).
/// Sealed format: 1 version byte (0x01) | 12-byte nonce | ciphertext | 16-byte tag.
class SecretBox {
 public:
  static constexpr std::size_t kKeyBytes = 32;

  /// From a base64 master key of exactly 32 bytes; the error never contains the key.
  static Result<SecretBox> from_base64_key(std::string_view key_b64);
  /// From 32 raw bytes.
  static Result<SecretBox> from_raw_key(std::string_view key);
  /// A fresh random master key, base64 (what `hookguard gen-key` prints).
  static std::string generate_key_base64();

  /// Encrypts `plaintext`, binding it to `aad` (the trigger key), so a sealed secret moved to
  /// another trigger fails to open.
  std::string seal(std::string_view plaintext, std::string_view aad) const;
  /// Decrypts; any tampering, a wrong key or a wrong `aad` is an error.
  Result<std::string> open(std::string_view sealed, std::string_view aad) const;

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace hookguard::policy
