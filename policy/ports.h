// The abstract ports the pure chain talks through: the rate-limit store, the replay store and
// the clock.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "policy/result.h"

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
  /// The same question without blocking the caller: `done` runs exactly once, inline or later
  /// on another thread. The default asks hit() inline; a store with real I/O (Redis) queues the
  /// question so that the caller's event loop stays free.
  virtual void hit_async(RateLimitQuery query, std::function<void(RateLimitReply)> done);
};

/// hit(), with an exception (a broken adapter) turned into a store error.
RateLimitReply hit_nothrow(RateLimitStore& store, const RateLimitQuery& query);

/// The replay store's answer to reserve(): reserved (this request owns the delivery now),
/// pending (another copy is being forwarded), done (already forwarded) or store_error.
struct ReplayReply {
  enum class Kind { kReserved, kPending, kDone, kStoreError };
  Kind kind = Kind::kStoreError;
  std::int64_t pending_ttl_ms = 0;  // for kPending: how long the other copy's reservation lasts
  std::string error;                // for kStoreError: logged, never sent to the client
};

/// Where forwarded delivery ids live (Redis in production, a fake in tests). Keys come from
/// policy::replay_key(); every call is bounded in time and never throws.
class ReplayStore {
 public:
  virtual ~ReplayStore() = default;
  /// Atomically: if `key` is unset, sets it to `token` for `pending_ttl_ms` and answers
  /// kReserved; otherwise answers kPending or kDone from what is stored.
  virtual ReplayReply reserve(const std::string& key, const std::string& token,
                              std::int64_t pending_ttl_ms) = 0;
  /// reserve() without blocking the caller: `done` runs exactly once, inline or later on another
  /// thread. The default calls reserve() inline.
  virtual void reserve_async(std::string key, std::string token, std::int64_t pending_ttl_ms,
                             std::function<void(ReplayReply)> done);
  /// Marks the delivery forwarded for `window_ms` (whoever holds the key now).
  virtual Result<void> complete(const std::string& key, std::int64_t window_ms) = 0;
  /// Drops the reservation if it is still `token`'s, so that the sender's retry goes through.
  virtual Result<void> release(const std::string& key, const std::string& token) = 0;
};

/// reserve(), with an exception (a broken adapter) turned into a store error.
ReplayReply reserve_nothrow(ReplayStore& store, const std::string& key, const std::string& token,
                            std::int64_t pending_ttl_ms);

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
