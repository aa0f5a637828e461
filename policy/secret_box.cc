#include "policy/secret_box.h"

#include <openssl/evp.h>

#include <memory>

#include "policy/encoding.h"

namespace hookguard::policy {
namespace {

constexpr unsigned char kVersion = 0x01;
constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr std::string_view kCode = "secret_box";

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

CipherCtx new_ctx() { return CipherCtx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free); }

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

}  // namespace

Result<SecretBox> SecretBox::from_base64_key(std::string_view key_b64) {
  // Whatever goes wrong, the message carries the length at most, never key material.
  auto key = from_base64(key_b64);
  if (!key) return fail(std::string(kCode), "master key is not valid base64");
  return from_raw_key(*key);
}

Result<SecretBox> SecretBox::from_raw_key(std::string_view key) {
  if (key.size() != kKeyBytes) {
    return fail(std::string(kCode), "master key must be " + std::to_string(kKeyBytes) +
                                        " bytes (got " + std::to_string(key.size()) + ")");
  }
  return SecretBox(std::string(key));
}

std::string SecretBox::generate_key_base64() { return to_base64(random_bytes(kKeyBytes)); }

std::string SecretBox::seal(std::string_view plaintext, std::string_view aad) const {
  try {
    // A random 96-bit nonce per seal: secrets are sealed rarely (create, rotate), far below the
    // 2^32 messages per key where random GCM nonces start to risk a collision (NIST SP 800-38D).
    const std::string nonce = random_bytes(kNonceBytes);
    std::string out;
    out.reserve(1 + kNonceBytes + plaintext.size() + kTagBytes);
    out.push_back(static_cast<char>(kVersion));
    out.append(nonce);
    std::string ciphertext(plaintext.size(), '\0');
    std::string tag(kTagBytes, '\0');

    auto ctx = new_ctx();
    int len = 0;
    if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
        EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key_), bytes(nonce)) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) !=
            1 ||
        EVP_EncryptUpdate(ctx.get(), bytes(ciphertext), &len, bytes(plaintext),
                          static_cast<int>(plaintext.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), bytes(ciphertext) + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, tag.data()) != 1) {
      return {};
    }
    out.append(ciphertext);
    out.append(tag);
    return out;
  } catch (...) {
    return {};
  }
}

Result<std::string> SecretBox::open(std::string_view sealed, std::string_view aad) const {
  // One message for every failure: which check failed would help only an attacker.
  const auto cannot_open = [] { return fail(std::string(kCode), "cannot open sealed secret"); };
  try {
    if (sealed.size() < 1 + kNonceBytes + kTagBytes) return cannot_open();
    if (static_cast<unsigned char>(sealed[0]) != kVersion) return cannot_open();
    const auto nonce = sealed.substr(1, kNonceBytes);
    const auto ciphertext =
        sealed.substr(1 + kNonceBytes, sealed.size() - 1 - kNonceBytes - kTagBytes);
    std::string tag(sealed.substr(sealed.size() - kTagBytes));
    std::string plaintext(ciphertext.size(), '\0');

    auto ctx = new_ctx();
    int len = 0;
    int final_len = 0;
    if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
        EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key_), bytes(nonce)) != 1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) !=
            1 ||
        EVP_DecryptUpdate(ctx.get(), bytes(plaintext), &len, bytes(ciphertext),
                          static_cast<int>(ciphertext.size())) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1 ||
        EVP_DecryptFinal_ex(ctx.get(), bytes(plaintext) + len, &final_len) != 1) {
      return cannot_open();
    }
    return plaintext;
  } catch (...) {
    return cannot_open();
  }
}

}  // namespace hookguard::policy
