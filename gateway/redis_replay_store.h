// The ReplayStore port implemented on Redis: one atomic reserve, then done-with-TTL or delete.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "gateway/redis_connection.h"
#include "policy/ports.h"

namespace hookguard::gateway {

/// Delivery ids in Redis, under the same options and key_prefix as the rate limiter. A key holds
/// "pending:<token>" (PX: upstream timeout + margin) while one copy is forwarded, then "done"
/// (PX: the replay window). Connections come from a small pool (hiredis is not thread-safe;
/// a context is used by one thread at a time and freed after any error); a shared breaker makes
/// every caller fail fast for breaker_open_ms after a failure. reserve_async() queues the reserve
/// script on the store's RedisPipeline (one thread, one connection, started by the first call),
/// behind the same breaker.
class RedisReplayStore final : public policy::ReplayStore {
 public:
  explicit RedisReplayStore(RedisOptions options);
  ~RedisReplayStore() override;
  RedisReplayStore(const RedisReplayStore&) = delete;
  RedisReplayStore& operator=(const RedisReplayStore&) = delete;

  policy::ReplayReply reserve(const std::string& key, const std::string& token,
                              std::int64_t pending_ttl_ms) override;
  /// reserve() without blocking: `done` runs on the pipeline thread, or inline for invalid
  /// arguments, a full queue or a store being destroyed. An error reply from Redis is a store
  /// error for this call only (reserve() also opens the breaker on it; the pipeline does for
  /// READONLY, LOADING, MASTERDOWN and NOAUTH, see RedisPipeline). The store must not be
  /// destroyed from inside `done`.
  void reserve_async(std::string key, std::string token, std::int64_t pending_ttl_ms,
                     std::function<void(policy::ReplayReply)> done) override;
  Result<void> complete(const std::string& key, std::int64_t window_ms) override;
  Result<void> release(const std::string& key, const std::string& token) override;

  /// Answers every queued reserve_async call and refuses new ones (inline store errors): the
  /// gateway drains the store this way while what the callbacks use is still there. Idempotent.
  void stop_async();
  /// Calls (blocking or not) that failed with a store error so far (including those the open
  /// breaker refused).
  std::uint64_t errors() const;
  /// Pipelined round trips to Redis so far: the async calls divided by this is the batch size.
  std::uint64_t round_trips() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hookguard::gateway
