// Bearer-token authentication of the admin API, compared in constant time.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hookguard::admin {

/// Checks `Authorization: Bearer <token>` against the configured token. Holds only an HMAC of
/// the token under a per-process random key, so comparison time depends on neither the length
/// nor the content of either token.
class TokenAuth {
 public:
  /// An empty `token` configures nothing: every check fails (the API stays locked).
  explicit TokenAuth(std::string_view token);

  bool configured() const { return configured_; }
  /// True when `authorization` (the header value, if present) carries the configured token.
  bool check(std::optional<std::string_view> authorization) const;

 private:
  std::string key_;
  std::string digest_;
  bool configured_ = false;
};

}  // namespace hookguard::admin
