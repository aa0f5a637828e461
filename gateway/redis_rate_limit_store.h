// The RateLimitStore port implemented on Redis with one Lua call per hit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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

/// Sliding-window counter in Redis (EVALSHA, NOSCRIPT -> EVAL, Redis TIME). hit() uses one
/// hiredis context per calling thread (hiredis is not thread-safe); a failed context is freed and
/// rebuilt later. hit_async() queues the script on the store's RedisPipeline (one thread, one
/// connection, started by the first call), which shares the store's circuit breaker; hits of
/// one key that arrive while its call is still queued join that call (one script run decides
/// them all, in arrival order, exactly as that many calls in a row would).
class RedisRateLimitStore final : public policy::RateLimitStore {
 public:
  /// Hits that hit_async() keeps waiting for their script call at most; past it a hit is a
  /// store error at once (the bound the pipeline's queue puts on calls, applied to hits).
  static constexpr std::size_t kMaxWaitingHits = 10000;

  explicit RedisRateLimitStore(RedisOptions options);
  ~RedisRateLimitStore() override;

  policy::RateLimitReply hit(const policy::RateLimitQuery& query) override;
  /// hit() without blocking: `done` runs on the pipeline thread, or inline for an invalid query,
  /// a full queue or a store being destroyed. An error reply from Redis is a store error for
  /// this hit only (hit() also opens the breaker on it; the pipeline does for READONLY, LOADING,
  /// MASTERDOWN and NOAUTH, see RedisPipeline); transport failures open the breaker in both.
  /// The store must not be destroyed from inside `done`.
  void hit_async(policy::RateLimitQuery query,
                 std::function<void(policy::RateLimitReply)> done) override;
  /// hit(), also filling `trace` (when not null) from a successful script call.
  policy::RateLimitReply hit(const policy::RateLimitQuery& query, RedisHitTrace* trace);
  /// `hits` hits of `query` decided by one script call, as that many hit() calls in a row at
  /// the same Redis time would be: the verdicts in order (what hit_async does for the hits that
  /// join one call). `trace` gets the time and the counts before them.
  std::vector<policy::RateLimitReply> hit_many(const policy::RateLimitQuery& query,
                                               std::size_t hits, RedisHitTrace* trace = nullptr);
  /// Answers every queued hit_async call and refuses new ones (inline store errors): the
  /// gateway drains the store this way while what the callbacks use is still there. Idempotent.
  void stop_async();
  /// PING on this thread's connection: for /readyz.
  bool ping();

  /// hit() and hit_async() calls answered kStoreError so far (including those the open breaker
  /// refused).
  std::uint64_t errors() const;
  /// Pipelined round trips to Redis so far: the async calls divided by this is the batch size.
  std::uint64_t round_trips() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hookguard::gateway
