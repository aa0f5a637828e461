// The RateLimitStore port implemented on Redis with one Lua call per hit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/redis_connection.h"
#include "policy/ports.h"
#include "policy/rate_window.h"

namespace hookguard::gateway {

/// What the script saw for one hit: Redis server time and the two windows' counts before the hit.
/// Lets tests replay a real hit through policy::evaluate_window and compare the verdicts.
struct RedisHitTrace {
  std::int64_t now_ms = 0;
  policy::WindowCounts counts;
};

/// Sliding-window counter in Redis (EVALSHA, NOSCRIPT -> EVAL, Redis TIME). One hiredis context
/// per calling thread (hiredis is not thread-safe); a failed context is freed and rebuilt later.
class RedisRateLimitStore final : public policy::RateLimitStore {
 public:
  explicit RedisRateLimitStore(RedisOptions options);
  ~RedisRateLimitStore() override;

  policy::RateLimitReply hit(const policy::RateLimitQuery& query) override;
  /// hit(), also filling `trace` (when not null) from a successful script call.
  policy::RateLimitReply hit(const policy::RateLimitQuery& query, RedisHitTrace* trace);
  /// PING on this thread's connection: for /readyz.
  bool ping();

  /// hit() calls answered kStoreError so far (including those the open breaker refused).
  std::uint64_t errors() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hookguard::gateway
