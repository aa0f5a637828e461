// The ReplayStore port implemented on Redis: one atomic reserve, then done-with-TTL or delete.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/redis_connection.h"
#include "policy/ports.h"

namespace hookguard::gateway {

/// Delivery ids in Redis, under the same options and key_prefix as the rate limiter. A key holds
/// "pending:<token>" (PX: upstream timeout + margin) while one copy is forwarded, then "done"
/// (PX: the replay window). Connections come from a small pool (hiredis is not thread-safe;
/// a context is used by one thread at a time and freed after any error); a shared breaker makes
/// every caller fail fast for breaker_open_ms after a failure.
class RedisReplayStore final : public policy::ReplayStore {
 public:
  explicit RedisReplayStore(RedisOptions options);
  ~RedisReplayStore() override;
  RedisReplayStore(const RedisReplayStore&) = delete;
  RedisReplayStore& operator=(const RedisReplayStore&) = delete;

  policy::ReplayReply reserve(const std::string& key, const std::string& token,
                              std::int64_t pending_ttl_ms) override;
  Result<void> complete(const std::string& key, std::int64_t window_ms) override;
  Result<void> release(const std::string& key, const std::string& token) override;

  /// Calls that failed with a store error so far (including those the open breaker refused).
  std::uint64_t errors() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hookguard::gateway
