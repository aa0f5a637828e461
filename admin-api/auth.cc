#include "admin-api/auth.h"

#include <openssl/crypto.h>

#include "policy/encoding.h"
#include "policy/signature.h"

namespace hookguard::admin {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

TokenAuth::TokenAuth(std::string_view token)
    : key_(policy::random_bytes(32)), configured_(!token.empty()) {
  digest_ = policy::hmac_raw(policy::HmacAlgorithm::kSha256, key_, token);
}

bool TokenAuth::check(std::optional<std::string_view> authorization) const {
  if (!configured_ || !authorization) return false;
  std::string_view value = *authorization;
  // RFC 7235 §2.1: the scheme name is case-insensitive; one space separates it from the token.
  const auto space = value.find(' ');
  if (space == std::string_view::npos || !iequals(value.substr(0, space), "Bearer")) return false;
  std::string_view presented = value.substr(space + 1);
  while (!presented.empty() && (presented.back() == ' ' || presented.back() == '\t')) {
    presented.remove_suffix(1);
  }
  if (presented.empty()) return false;
  // Fixed-length digests of both sides: CRYPTO_memcmp then runs in the same time whatever the
  // presented token's length or how many leading bytes match.
  const std::string digest = policy::hmac_raw(policy::HmacAlgorithm::kSha256, key_, presented);
  return digest.size() == digest_.size() &&
         CRYPTO_memcmp(digest.data(), digest_.data(), digest_.size()) == 0;
}

}  // namespace hookguard::admin
