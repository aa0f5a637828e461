#include "policy/encoding.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace hookguard::policy {
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kBase62Alphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::array<std::int8_t, 256> make_base64_table() {
  std::array<std::int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (std::size_t i = 0; i < kBase64Alphabet.size(); ++i) {
    table[static_cast<unsigned char>(kBase64Alphabet[i])] = static_cast<std::int8_t>(i);
  }
  return table;
}
constexpr auto kBase64Values = make_base64_table();

}  // namespace

std::string to_hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out += kHexDigits[c >> 4];
    out += kHexDigits[c & 0x0f];
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_value(hex[i]);
    const int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>((hi << 4) | lo);
  }
  return out;
}

// Hand-written rather than EVP_EncodeBlock/EVP_DecodeBlock: the latter ignores leading and
// trailing whitespace and returns padding bytes as zeros, which a signature check must not do.
std::string to_base64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += kBase64Alphabet[v & 63];
  }
  const std::size_t left = bytes.size() - i;
  if (left == 1) {
    const std::uint32_t v = byte(i) << 16;
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += "==";
  } else if (left == 2) {
    const std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> from_base64(std::string_view text) {
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  const std::string_view data = text.substr(0, text.size() - padding);
  // With padding the whole must be a multiple of 4; without, a lone trailing character
  // (length % 4 == 1) can encode no whole byte.
  if (padding > 0 && text.size() % 4 != 0) return std::nullopt;
  if (data.size() % 4 == 1) return std::nullopt;

  std::string out;
  out.reserve(data.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : data) {
    const int v = kBase64Values[static_cast<unsigned char>(ch)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Canonical encodings leave the unused low bits zero; anything else is not what an encoder
  // produced.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (n == 0) return out;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    // Keys and nonces from a failed CSPRNG would be guessable; stopping is the only safe answer.
    std::abort();
  }
  return out;
}

std::string random_base62(std::size_t n) {
  std::string out;
  out.reserve(n);
  while (out.size() < n) {
    for (char ch : random_bytes(n - out.size() + 8)) {
      const auto c = static_cast<unsigned char>(ch);
      // 248 = 4 * 62: rejecting the top 8 values keeps every character equally likely.
      if (c >= 248) continue;
      out += kBase62Alphabet[c % 62];
      if (out.size() == n) break;
    }
  }
  return out;
}

std::string generate_trigger_key() { return "wh_" + random_base62(32); }

std::string generate_secret(SignatureScheme scheme) {
  if (scheme == SignatureScheme::kStandardWebhooks) return "whsec_" + to_base64(random_bytes(32));
  return random_base62(43);
}

namespace {

// 16 bytes from a per-thread pool: one RAND_bytes call per 256 ids. Request ids are made on
// every request, and each call into OpenSSL's DRBG costs a lock and a getpid() fork check.
std::array<unsigned char, 16> pooled_random_16() {
  thread_local std::array<unsigned char, 4096> pool;
  thread_local std::size_t used = pool.size();
  if (used == pool.size()) {
    if (RAND_bytes(pool.data(), static_cast<int>(pool.size())) != 1) std::abort();
    used = 0;
  }
  std::array<unsigned char, 16> b;
  std::memcpy(b.data(), pool.data() + used, b.size());
  std::memset(pool.data() + used, 0, b.size());
  used += b.size();
  return b;
}

// The canonical 8-4-4-4-12 text of a UUID whose version and variant bits are already set.
std::string uuid_text(const std::array<unsigned char, 16>& b) {
  std::string out(36, '-');
  std::size_t pos = 0;
  for (const unsigned char byte : b) {
    if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
    out[pos++] = kHexDigits[byte >> 4];
    out[pos++] = kHexDigits[byte & 0xf];
  }
  return out;
}

}  // namespace

std::string generate_uuid_v4() {
  auto b = pooled_random_16();
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // RFC 9562 §5.4: version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // variant 10
  return uuid_text(b);
}

std::string generate_uuid_v7(std::int64_t unix_ms) {
  auto b = pooled_random_16();
  // RFC 9562 §5.7: the 48-bit big-endian Unix time in milliseconds, then 74 random bits.
  const auto ms = std::min(static_cast<std::uint64_t>(std::max<std::int64_t>(unix_ms, 0)),
                           (std::uint64_t{1} << 48) - 1);
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x70);  // version 7
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // variant 10
  return uuid_text(b);
}

}  // namespace hookguard::policy
