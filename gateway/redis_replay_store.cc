#include "gateway/redis_replay_store.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/redis_pipeline.h"

namespace hookguard::gateway {
namespace {

// GET-then-SET in one script, so two copies of a delivery cannot both reserve it. Replies:
// {1} reserved, or {0, value, pttl} for a key that exists. (SET NX GET would do the same, but
// only from Redis 7.0.)
constexpr std::string_view kReserveScript = R"lua(
local v = redis.call('GET', KEYS[1])
if v then return {0, v, redis.call('PTTL', KEYS[1])} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}
)lua";

// Deletes only our own reservation: after it lapsed, another copy may hold the key, or a
// successful copy may have marked it done.
constexpr std::string_view kReleaseScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

constexpr std::string_view kPendingPrefix = "pending:";
constexpr std::string_view kDone = "done";
constexpr std::size_t kMaxKeyBytes = 512;
constexpr std::size_t kMaxTokenBytes = 128;
constexpr std::int64_t kMaxTtlMs = 8LL * 24 * 3600 * 1000;
constexpr std::size_t kMaxIdleConnections = 32;

using Kind = policy::ReplayReply::Kind;

bool valid_reservation(const std::string& key, const std::string& token,
                       std::int64_t pending_ttl_ms) {
  return !key.empty() && key.size() <= kMaxKeyBytes && !token.empty() &&
         token.size() <= kMaxTokenBytes && pending_ttl_ms >= 1 && pending_ttl_ms <= kMaxTtlMs;
}

policy::ReplayReply error_reply(std::string message) {
  policy::ReplayReply out;
  out.kind = Kind::kStoreError;
  out.error = std::move(message);
  return out;
}

// The reserve script's reply as the port's answer; nullopt for a reply of any other shape.
// Shared by reserve() and reserve_async().
std::optional<policy::ReplayReply> parse_reservation(const redisReply& r) {
  policy::ReplayReply out;
  if (r.type == REDIS_REPLY_ARRAY && r.elements == 1 && r.element[0]->type == REDIS_REPLY_INTEGER &&
      r.element[0]->integer == 1) {
    out.kind = Kind::kReserved;
    return out;
  }
  if (r.type == REDIS_REPLY_ARRAY && r.elements == 3 && r.element[1]->type == REDIS_REPLY_STRING &&
      r.element[2]->type == REDIS_REPLY_INTEGER) {
    const std::string_view stored(r.element[1]->str, r.element[1]->len);
    if (stored == kDone) {
      out.kind = Kind::kDone;
    } else {
      // Anything else (our pending:<token>, or a value we do not know) is not yet forwarded
      // for sure: the sender is asked to retry rather than told it is done.
      out.kind = Kind::kPending;
      out.pending_ttl_ms = std::max<long long>(r.element[2]->integer, 0);
    }
    return out;
  }
  return std::nullopt;
}

}  // namespace

struct RedisReplayStore::Impl {
  using Admission = RedisEndpoint::Admission;

  // The same breaker as the rate limiter's: after a failure every caller fails fast until one
  // probe succeeds, so a dead Redis costs one timeout per period, not one per request.
  RedisEndpoint redis;
  RedisScript reserve_script{kReserveScript};
  RedisScript release_script{kReleaseScript};
  std::atomic<std::uint64_t> errors{0};

  std::mutex mu;
  std::vector<RedisConnection> idle;  // guarded by mu
  // Last: destroyed (stopped, answering everything queued) before the members it uses.
  RedisPipeline pipeline{redis};

  explicit Impl(RedisOptions opts) : redis(std::move(opts)) {}
  ~Impl() { pipeline.stop(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  policy::ReplayReply store_error(std::string message) {
    errors.fetch_add(1, std::memory_order_relaxed);
    return error_reply(std::move(message));
  }

  // Unlike the blocking path, an error reply or a reply of another shape is a store error for
  // this reservation only and does not open the breaker: the round trip worked and the
  // pipeline already reported the batch to the breaker (transport failures and server-state
  // errors such as READONLY opened it there).
  policy::ReplayReply pipelined_answer(const Result<RedisReplyPtr>& reply) {
    if (!reply) return store_error(reply.error().message);
    if ((*reply)->type == REDIS_REPLY_ERROR) return store_error(redis_error_text(**reply));
    auto parsed = parse_reservation(**reply);
    if (!parsed) return store_error("redis: unexpected script reply");
    return std::move(*parsed);
  }

  void tripped(Admission admission) {
    errors.fetch_add(1, std::memory_order_relaxed);
    // Every pooled connection may be as dead as the one that failed (restart, failover).
    redis.failed(admission);
    std::vector<RedisConnection> stale;  // closed on return, outside the lock
    {
      std::lock_guard lock(mu);
      stale.swap(idle);
    }
  }

  Result<RedisConnection> acquire() {
    {
      std::lock_guard lock(mu);
      if (!idle.empty()) {
        RedisConnection connection = std::move(idle.back());
        idle.pop_back();
        return connection;
      }
    }
    return redis.connect();
  }

  // hiredis leaves a context unusable after any error, so only healthy ones go back.
  void give_back(RedisConnection connection, bool healthy) {
    if (healthy && redis.is_current(connection)) {
      std::lock_guard lock(mu);
      if (idle.size() < kMaxIdleConnections) {
        idle.push_back(std::move(connection));
        return;
      }
    }
    // Anything not pooled is closed here, outside the lock.
  }

  // Runs `body(connection)` on a pooled connection behind the breaker. `body` answers the reply
  // or an error; an error reply from Redis is an error too (and, like I/O, trips the breaker).
  template <class Body>
  Result<RedisReplyPtr> run(Body&& body) {
    const Admission admission = redis.admit();
    if (admission == Admission::kRefused) {
      errors.fetch_add(1, std::memory_order_relaxed);
      return fail("replay_store_error", "redis: circuit open");
    }
    auto connection = acquire();
    if (!connection) {
      tripped(admission);
      return fail("replay_store_error", std::move(connection.error().message));
    }
    auto reply = body(*connection);
    if (!reply || (*reply)->type == REDIS_REPLY_ERROR) {
      std::string message = reply ? redis_error_text(**reply) : reply.error().message;
      give_back(std::move(*connection), reply.has_value());
      tripped(admission);
      return fail("replay_store_error", std::move(message));
    }
    give_back(std::move(*connection), true);
    redis.succeeded(admission);
    return reply;
  }

  std::string full_key(const std::string& key) const { return redis.options().key_prefix + key; }
};

RedisReplayStore::RedisReplayStore(RedisOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

RedisReplayStore::~RedisReplayStore() = default;

policy::ReplayReply RedisReplayStore::reserve(const std::string& key, const std::string& token,
                                              std::int64_t pending_ttl_ms) {
  try {
    if (!valid_reservation(key, token, pending_ttl_ms)) {
      return impl_->store_error("invalid replay reservation");
    }
    const std::string value = std::string(kPendingPrefix) + token;
    const std::string ttl = std::to_string(pending_ttl_ms);
    const std::string full = impl_->full_key(key);
    auto reply = impl_->run([&](RedisConnection& connection) {
      return connection.eval(impl_->reserve_script, full, {value, ttl});
    });
    if (!reply) return error_reply(std::move(reply.error().message));
    auto parsed = parse_reservation(**reply);
    if (!parsed) return impl_->store_error("redis: unexpected script reply");
    return std::move(*parsed);
  } catch (...) {
    return error_reply("replay store: out of memory");
  }
}

void RedisReplayStore::reserve_async(std::string key, std::string token,
                                     std::int64_t pending_ttl_ms,
                                     std::function<void(policy::ReplayReply)> done) {
  if (!valid_reservation(key, token, pending_ttl_ms)) {
    done(impl_->store_error("invalid replay reservation"));
    return;
  }
  std::string full;
  std::vector<std::string> args;
  try {
    full = impl_->full_key(key);
    args = {std::string(kPendingPrefix) + token, std::to_string(pending_ttl_ms)};
  } catch (...) {
    done(error_reply("replay store: out of memory"));
    return;
  }
  impl_->pipeline.eval(impl_->reserve_script, std::move(full), std::move(args),
                       [impl = impl_.get(), done = std::move(done)](Result<RedisReplyPtr> reply) {
                         done(impl->pipelined_answer(reply));
                       });
}

Result<void> RedisReplayStore::complete(const std::string& key, std::int64_t window_ms) {
  try {
    if (key.empty() || key.size() > kMaxKeyBytes || window_ms < 1 || window_ms > kMaxTtlMs) {
      impl_->errors.fetch_add(1, std::memory_order_relaxed);
      return fail("replay_store_error", "invalid replay completion");
    }
    const std::string full = impl_->full_key(key);
    const std::string ttl = std::to_string(window_ms);
    auto reply = impl_->run([&](RedisConnection& connection) {
      return connection.command({"SET", full, kDone, "PX", ttl});
    });
    if (!reply) return tl::unexpected(reply.error());
    return {};
  } catch (...) {
    return fail("replay_store_error", "replay store: out of memory");
  }
}

Result<void> RedisReplayStore::release(const std::string& key, const std::string& token) {
  try {
    if (key.empty() || key.size() > kMaxKeyBytes || token.empty() ||
        token.size() > kMaxTokenBytes) {
      impl_->errors.fetch_add(1, std::memory_order_relaxed);
      return fail("replay_store_error", "invalid replay release");
    }
    const std::string full = impl_->full_key(key);
    const std::string value = std::string(kPendingPrefix) + token;
    auto reply = impl_->run([&](RedisConnection& connection) {
      return connection.eval(impl_->release_script, full, {value, ""});
    });
    if (!reply) return tl::unexpected(reply.error());
    return {};
  } catch (...) {
    return fail("replay_store_error", "replay store: out of memory");
  }
}

std::uint64_t RedisReplayStore::round_trips() const { return impl_->pipeline.batches(); }

std::uint64_t RedisReplayStore::errors() const {
  return impl_->errors.load(std::memory_order_relaxed);
}

void RedisReplayStore::stop_async() { impl_->pipeline.stop(); }

}  // namespace hookguard::gateway
