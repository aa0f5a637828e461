#include "policy/signature.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <charconv>
#include <memory>
#include <optional>

#include "policy/encoding.h"

namespace hookguard::policy {
namespace {

// Bounds on attacker-controlled work: a header may not make us parse or compare without limit.
constexpr std::size_t kMaxHeaderValueBytes = 8 * 1024;
constexpr std::size_t kMaxSignatureEntries = 32;
constexpr std::size_t kMaxTimestampDigits = 12;

constexpr std::string_view kStandardWebhooksSecretPrefix = "whsec_";

const EVP_MD* digest_for(HmacAlgorithm algorithm) {
  switch (algorithm) {
    case HmacAlgorithm::kSha1:
      return EVP_sha1();
    case HmacAlgorithm::kSha256:
      return EVP_sha256();
    case HmacAlgorithm::kSha512:
      return EVP_sha512();
  }
  return nullptr;
}

// OpenSSL 3's one-shot HMAC() looks the MAC and the digest up by name in the provider on every
// call (EVP_Q_mac: fetch, new context, parameters), which costs about as much as hashing a 1 KiB
// body and takes a lock shared by every thread. Each thread instead keeps one context per
// algorithm, its digest set once; EVP_MAC_init with a key starts a new MAC on it.
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;

MacCtx new_mac_context(HmacAlgorithm algorithm) {
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);  // never freed
  const EVP_MD* md = digest_for(algorithm);
  if (hmac == nullptr || md == nullptr) return nullptr;
  MacCtx ctx(EVP_MAC_CTX_new(hmac));
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(
                             OSSL_MAC_PARAM_DIGEST, const_cast<char*>(EVP_MD_get0_name(md)), 0),
                         OSSL_PARAM_construct_end()};
  if (!ctx || EVP_MAC_CTX_set_params(ctx.get(), params) != 1) return nullptr;
  return ctx;
}

// Null when OpenSSL cannot provide the algorithm (then every MAC is empty, which matches nothing).
EVP_MAC_CTX* thread_mac_context(HmacAlgorithm algorithm) {
  thread_local std::array<MacCtx, 3> contexts;  // by HmacAlgorithm
  const auto slot = static_cast<std::size_t>(algorithm);
  if (slot >= contexts.size()) return nullptr;
  if (!contexts[slot]) contexts[slot] = new_mac_context(algorithm);
  return contexts[slot].get();
}

// RFC 9110 §5.5: leading and trailing whitespace is not part of a field value, whatever the
// HTTP library left in place. Whitespace inside a value is left alone and fails parsing.
std::string_view trim_ows(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  return value;
}

enum class Lookup { kAbsent, kTooLong, kFound };

struct HeaderValue {
  Lookup lookup = Lookup::kAbsent;
  std::string_view value;
};

HeaderValue read_header(const HeaderList& headers, std::string_view name) {
  const auto raw = headers.get(name);
  if (!raw) return {};
  if (raw->size() > kMaxHeaderValueBytes) return {Lookup::kTooLong, {}};
  return {Lookup::kFound, trim_ows(*raw)};
}

// Digits only (no sign, no spaces), at most 12 of them: enough for any real Unix time in seconds
// and small enough that the arithmetic below cannot overflow.
std::optional<std::int64_t> parse_timestamp(std::string_view text) {
  if (text.empty() || text.size() > kMaxTimestampDigits) return std::nullopt;
  if (text.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

bool within_tolerance(std::int64_t ts, std::int64_t now_unix, int tolerance_seconds) {
  // ts is at most 12 digits; a clock reading beyond +-2^62 is out of tolerance anyway, and
  // subtracting it could overflow (UBSan, found by tests/fuzz/fuzz_signature).
  constexpr std::int64_t kClockBound = std::int64_t{1} << 62;
  if (now_unix > kClockBound || now_unix < -kClockBound) return false;
  const std::int64_t delta = now_unix >= ts ? now_unix - ts : ts - now_unix;
  return delta <= tolerance_seconds;
}

// Splits on `sep`, refusing more than kMaxSignatureEntries pieces.
std::optional<std::vector<std::string_view>> split_bounded(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    if (parts.size() == kMaxSignatureEntries) return std::nullopt;
    const auto end = text.find(sep, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

// Compares decoded candidate signatures with the expected MAC under every secret. Each secret's
// MAC is computed once, whatever the number of candidates.
SignatureStatus match_any(HmacAlgorithm algorithm, const std::vector<std::string_view>& secrets,
                          std::string_view signed_content,
                          const std::vector<std::string>& candidates) {
  if (candidates.empty()) return SignatureStatus::kInvalid;
  for (const auto secret : secrets) {
    const std::string expected = hmac_raw(algorithm, secret, signed_content);
    if (expected.empty()) continue;
    for (const auto& candidate : candidates) {
      if (constant_time_equals(expected, candidate)) return SignatureStatus::kValid;
    }
  }
  return SignatureStatus::kInvalid;
}

std::size_t digest_size(HmacAlgorithm algorithm) {
  const EVP_MD* md = digest_for(algorithm);
  return md == nullptr ? 0 : static_cast<std::size_t>(EVP_MD_get_size(md));
}

// Hex of exactly one digest, either case; nullopt otherwise.
std::optional<std::string> decode_hex_digest(HmacAlgorithm algorithm, std::string_view hex) {
  if (hex.size() != 2 * digest_size(algorithm)) return std::nullopt;
  return from_hex(hex);
}

std::string signed_with_timestamp(std::string_view before, std::string_view ts, char sep,
                                  std::string_view body) {
  std::string content;
  content.reserve(before.size() + ts.size() + 2 + body.size());
  content.append(before).append(ts).push_back(sep);
  content.append(body);
  return content;
}

// --- generic and github: one "<alg>=<hex>" (generic also takes bare hex) over the body.

SignatureStatus verify_prefixed_hex(const HmacPolicy& policy, const HeaderList& headers,
                                    std::string_view body,
                                    const std::vector<std::string_view>& secrets,
                                    bool bare_hex_allowed) {
  const auto header = read_header(headers, signature_header(policy));
  if (header.lookup == Lookup::kAbsent) return SignatureStatus::kMissing;
  if (header.lookup == Lookup::kTooLong) return SignatureStatus::kInvalid;
  std::string_view value = header.value;
  const auto eq = value.find('=');
  if (eq != std::string_view::npos) {
    // An "<alg>=" other than the trigger's own is refused outright: accepting sha1= on a sha256
    // trigger would let a sender pick the weaker algorithm.
    if (value.substr(0, eq) != to_string(policy.algorithm)) return SignatureStatus::kInvalid;
    value.remove_prefix(eq + 1);
  } else if (!bare_hex_allowed) {
    return SignatureStatus::kInvalid;
  }
  auto decoded = decode_hex_digest(policy.algorithm, value);
  if (!decoded) return SignatureStatus::kInvalid;
  return match_any(policy.algorithm, secrets, body, {*decoded});
}

// --- stripe: "t=<ts>,v1=<hex>[,v1=<hex>...]" over "<ts>.<body>".

SignatureStatus verify_stripe(const HmacPolicy& policy, const HeaderList& headers,
                              std::string_view body, const std::vector<std::string_view>& secrets,
                              std::int64_t now_unix) {
  const auto header = read_header(headers, signature_header(policy));
  if (header.lookup == Lookup::kAbsent) return SignatureStatus::kMissing;
  if (header.lookup == Lookup::kTooLong) return SignatureStatus::kInvalid;
  const auto items = split_bounded(header.value, ',');
  if (!items) return SignatureStatus::kInvalid;
  std::optional<std::string_view> ts_text;
  std::vector<std::string> candidates;
  for (const auto item : *items) {
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) return SignatureStatus::kInvalid;
    const auto key = item.substr(0, eq);
    const auto value = item.substr(eq + 1);
    if (key == "t") {
      if (ts_text) return SignatureStatus::kInvalid;  // two timestamps: which one was signed?
      ts_text = value;
    } else if (key == "v1") {
      if (auto decoded = decode_hex_digest(HmacAlgorithm::kSha256, value)) {
        candidates.push_back(std::move(*decoded));
      }
    }
    // Other schemes (v0, future versions) are ignored, as Stripe's own libraries do.
  }
  if (!ts_text) return SignatureStatus::kInvalid;
  const auto ts = parse_timestamp(*ts_text);
  if (!ts || !within_tolerance(*ts, now_unix, policy.timestamp_tolerance_seconds)) {
    return SignatureStatus::kInvalid;
  }
  return match_any(HmacAlgorithm::kSha256, secrets, signed_with_timestamp("", *ts_text, '.', body),
                   candidates);
}

// --- slack: "v0=<hex>" over "v0:<ts>:<body>".

SignatureStatus verify_slack(const HmacPolicy& policy, const HeaderList& headers,
                             std::string_view body, const std::vector<std::string_view>& secrets,
                             std::int64_t now_unix) {
  const auto header = read_header(headers, signature_header(policy));
  if (header.lookup == Lookup::kAbsent) return SignatureStatus::kMissing;
  if (header.lookup == Lookup::kTooLong) return SignatureStatus::kInvalid;
  const auto ts_header = read_header(headers, "X-Slack-Request-Timestamp");
  if (ts_header.lookup != Lookup::kFound) return SignatureStatus::kInvalid;
  const auto ts = parse_timestamp(ts_header.value);
  if (!ts || !within_tolerance(*ts, now_unix, policy.timestamp_tolerance_seconds)) {
    return SignatureStatus::kInvalid;
  }
  std::string_view value = header.value;
  if (!value.starts_with("v0=")) return SignatureStatus::kInvalid;
  auto decoded = decode_hex_digest(HmacAlgorithm::kSha256, value.substr(3));
  if (!decoded) return SignatureStatus::kInvalid;
  return match_any(HmacAlgorithm::kSha256, secrets,
                   signed_with_timestamp("v0:", ts_header.value, ':', body), {*decoded});
}

// --- standard-webhooks: "v1,<b64> v1,<b64>" over "<id>.<ts>.<body>", secret whsec_<b64>.

std::optional<std::string> standard_webhooks_key(std::string_view secret) {
  if (secret.starts_with(kStandardWebhooksSecretPrefix)) {
    secret.remove_prefix(kStandardWebhooksSecretPrefix.size());
  }
  auto key = from_base64(secret);
  if (!key || key->empty()) return std::nullopt;
  return key;
}

SignatureStatus verify_standard_webhooks(const HmacPolicy& policy, const HeaderList& headers,
                                         std::string_view body,
                                         const std::vector<std::string_view>& secrets,
                                         std::int64_t now_unix) {
  // Svix-based senders use svix-* names for the same three headers; take one family whole.
  std::string prefix = "webhook-";
  if (policy.header.empty()) {
    if (!headers.get("webhook-signature") && headers.get("svix-signature")) prefix = "svix-";
  } else if (!headers.get("webhook-id") && headers.get("svix-id")) {
    prefix = "svix-";
  }
  const auto sig =
      read_header(headers, policy.header.empty() ? prefix + "signature" : policy.header);
  const auto id = read_header(headers, prefix + "id");
  const auto ts_header = read_header(headers, prefix + "timestamp");
  if (sig.lookup == Lookup::kAbsent) return SignatureStatus::kMissing;
  if (sig.lookup != Lookup::kFound || id.lookup != Lookup::kFound ||
      ts_header.lookup != Lookup::kFound || id.value.empty()) {
    return SignatureStatus::kInvalid;
  }
  const auto ts = parse_timestamp(ts_header.value);
  if (!ts || !within_tolerance(*ts, now_unix, policy.timestamp_tolerance_seconds)) {
    return SignatureStatus::kInvalid;
  }
  const auto tokens = split_bounded(sig.value, ' ');
  if (!tokens) return SignatureStatus::kInvalid;
  std::vector<std::string> candidates;
  for (const auto token : *tokens) {
    // Other versions (v1a: asymmetric) are skipped, as the reference libraries do.
    if (!token.starts_with("v1,")) continue;
    auto decoded = from_base64(token.substr(3));
    if (decoded && decoded->size() == digest_size(HmacAlgorithm::kSha256)) {
      candidates.push_back(std::move(*decoded));
    }
  }
  std::string content;
  content.reserve(id.value.size() + ts_header.value.size() + 2 + body.size());
  content.append(id.value).append(".").append(ts_header.value).append(".").append(body);

  std::vector<std::string> keys;
  for (const auto secret : secrets) {
    if (auto key = standard_webhooks_key(secret)) keys.push_back(std::move(*key));
  }
  std::vector<std::string_view> key_views(keys.begin(), keys.end());
  return match_any(HmacAlgorithm::kSha256, key_views, content, candidates);
}

// --- shopify: base64 of the body's HMAC-SHA256.

SignatureStatus verify_shopify(const HmacPolicy& policy, const HeaderList& headers,
                               std::string_view body,
                               const std::vector<std::string_view>& secrets) {
  const auto header = read_header(headers, signature_header(policy));
  if (header.lookup == Lookup::kAbsent) return SignatureStatus::kMissing;
  if (header.lookup == Lookup::kTooLong) return SignatureStatus::kInvalid;
  auto decoded = from_base64(header.value);
  if (!decoded || decoded->size() != digest_size(HmacAlgorithm::kSha256)) {
    return SignatureStatus::kInvalid;
  }
  return match_any(HmacAlgorithm::kSha256, secrets, body, {*decoded});
}

}  // namespace

std::string hmac_raw(HmacAlgorithm algorithm, std::string_view key, std::string_view data) {
  EVP_MAC_CTX* ctx = thread_mac_context(algorithm);
  if (ctx == nullptr) return {};
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t out_len = 0;
  // Never a null key: EVP_MAC_init with a null key keeps the key of the thread's previous MAC.
  static const unsigned char kEmpty = 0;
  const auto* key_ptr = key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
  const auto* data_ptr =
      data.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(data.data());
  if (EVP_MAC_init(ctx, key_ptr, key.size(), nullptr) != 1 ||
      EVP_MAC_update(ctx, data_ptr, data.size()) != 1 ||
      EVP_MAC_final(ctx, out, &out_len, sizeof out) != 1) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

std::string hmac_hex(HmacAlgorithm algorithm, std::string_view key, std::string_view data) {
  return to_hex(hmac_raw(algorithm, key, data));
}

bool constant_time_equals(std::string_view a, std::string_view b) {
  // Only the length may leak (it is public: the digest size); the content never does.
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string signature_header(const HmacPolicy& policy) {
  if (!policy.header.empty()) return policy.header;
  switch (policy.scheme) {
    case SignatureScheme::kGeneric:
      return "X-Webhook-Signature";
    case SignatureScheme::kGithub:
      return policy.algorithm == HmacAlgorithm::kSha1 ? "X-Hub-Signature" : "X-Hub-Signature-256";
    case SignatureScheme::kStripe:
      return "Stripe-Signature";
    case SignatureScheme::kSlack:
      return "X-Slack-Signature";
    case SignatureScheme::kStandardWebhooks:
      return "webhook-signature";
    case SignatureScheme::kShopify:
      return "X-Shopify-Hmac-Sha256";
  }
  return "X-Webhook-Signature";
}

SignatureStatus verify_signature(const HmacPolicy& policy, const HeaderList& headers,
                                 std::string_view body,
                                 const std::vector<std::string_view>& secrets,
                                 std::int64_t now_unix) {
  try {
    switch (policy.scheme) {
      case SignatureScheme::kGeneric:
        return verify_prefixed_hex(policy, headers, body, secrets, /*bare_hex_allowed=*/true);
      case SignatureScheme::kGithub:
        return verify_prefixed_hex(policy, headers, body, secrets, /*bare_hex_allowed=*/false);
      case SignatureScheme::kStripe:
        return verify_stripe(policy, headers, body, secrets, now_unix);
      case SignatureScheme::kSlack:
        return verify_slack(policy, headers, body, secrets, now_unix);
      case SignatureScheme::kStandardWebhooks:
        return verify_standard_webhooks(policy, headers, body, secrets, now_unix);
      case SignatureScheme::kShopify:
        return verify_shopify(policy, headers, body, secrets);
    }
  } catch (...) {
    // Only allocation can throw here; a request we cannot check is not a valid one.
  }
  return SignatureStatus::kInvalid;
}

Result<HeaderList> sign_request(const HmacPolicy& policy, std::string_view secret,
                                std::string_view body, std::int64_t now_unix,
                                std::string_view delivery_id) {
  try {
    if (secret.empty()) return fail("invalid_request", "secret must not be empty");
    const std::string ts = std::to_string(now_unix);
    HeaderList headers;
    switch (policy.scheme) {
      case SignatureScheme::kGeneric:
      case SignatureScheme::kGithub:
        if (policy.scheme == SignatureScheme::kGithub &&
            policy.algorithm == HmacAlgorithm::kSha512) {
          return fail("invalid_request", "github signs with sha256 or sha1 only");
        }
        headers.add(signature_header(policy), std::string(to_string(policy.algorithm)) + "=" +
                                                  hmac_hex(policy.algorithm, secret, body));
        break;
      case SignatureScheme::kStripe:
        headers.add(
            signature_header(policy),
            "t=" + ts + ",v1=" +
                hmac_hex(HmacAlgorithm::kSha256, secret, signed_with_timestamp("", ts, '.', body)));
        break;
      case SignatureScheme::kSlack:
        headers.add("X-Slack-Request-Timestamp", ts);
        headers.add(signature_header(policy),
                    "v0=" + hmac_hex(HmacAlgorithm::kSha256, secret,
                                     signed_with_timestamp("v0:", ts, ':', body)));
        break;
      case SignatureScheme::kStandardWebhooks: {
        const auto key = standard_webhooks_key(secret);
        if (!key) {
          return fail("invalid_request",
                      "standard-webhooks secret must be base64, optionally prefixed whsec_");
        }
        const std::string id =
            delivery_id.empty() ? "msg_" + random_base62(24) : std::string(delivery_id);
        const std::string content = id + "." + ts + "." + std::string(body);
        headers.add("webhook-id", id);
        headers.add("webhook-timestamp", ts);
        headers.add(signature_header(policy),
                    "v1," + to_base64(hmac_raw(HmacAlgorithm::kSha256, *key, content)));
        break;
      }
      case SignatureScheme::kShopify:
        headers.add(signature_header(policy),
                    to_base64(hmac_raw(HmacAlgorithm::kSha256, secret, body)));
        break;
    }
    return headers;
  } catch (...) {
    return fail("internal", "out of memory while signing");
  }
}

}  // namespace hookguard::policy
