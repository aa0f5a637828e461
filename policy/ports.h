// The abstract ports the pure chain talks through: the rate-limit store and the clock.
#pragma once

#include <cstdint>
#include <string>

namespace hookguard::policy {

/// One rate-limit question: count a hit on `key` against `limit` per `window_seconds`.
struct RateLimitQuery {
  std::string key;  // e.g. "hg:rl:{t42}" or "hg:rl:{t42}:203.0.113.7"
  std::int64_t limit = 0;
  std::int64_t window_seconds = 0;
};

/// The store's answer: allowed(remaining, reset) | limited(retry_after) | store_error.
struct RateLimitReply {
  enum class Kind { kAllowed, kLimited, kStoreError };
  Kind kind = Kind::kStoreError;
  std::int64_t limit = 0;
  std::int64_t remaining = 0;
  std::int64_t reset_seconds = 0;
  std::int64_t retry_after_seconds = 0;
  std::string error;  // for kStoreError: what went wrong (logged, never sent to the client)
};

/// Where rate-limit counters live (Redis in production, a fake in tests).
class RateLimitStore {
 public:
  virtual ~RateLimitStore() = default;
  /// Counts one hit and answers; never throws. Must be bounded in time.
  virtual RateLimitReply hit(const RateLimitQuery& query) = 0;
};

/// Wall-clock time, injectable for tests.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t now_unix_ms() const = 0;
};

/// The real clock (system_clock).
class SystemClock final : public Clock {
 public:
  std::int64_t now_unix_ms() const override;
};

}  // namespace hookguard::policy
