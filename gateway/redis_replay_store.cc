#include "gateway/redis_replay_store.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <initializer_list>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

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
constexpr std::size_t kMaxErrorText = 120;
constexpr std::size_t kMaxArgs = 8;

std::string sha1_hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0x0f]);
  }
  return out;
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

timeval to_timeval(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = static_cast<suseconds_t>(ms % 1000) * 1000;
  return tv;
}

std::string clip(std::string_view text) {
  return std::string(text.substr(0, std::min(text.size(), kMaxErrorText)));
}

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

struct Pooled {
  redisContext* ctx = nullptr;
  std::uint64_t generation = 0;
};

}  // namespace

struct RedisReplayStore::Impl {
  enum class Admission { kClosed, kProbe, kRefused };

  RedisOptions options;
  std::string reserve_sha = sha1_hex(kReserveScript);
  std::string release_sha = sha1_hex(kReleaseScript);
  std::atomic<std::uint64_t> errors{0};

  std::mutex mu;
  std::vector<Pooled> idle;  // guarded by mu
  std::atomic<std::uint64_t> generation{0};
  std::atomic<std::int64_t> open_until_ms{0};  // steady clock; 0 = breaker closed
  std::atomic<bool> probing{false};

  explicit Impl(RedisOptions opts) : options(std::move(opts)) {}

  ~Impl() {
    for (auto& p : idle) redisFree(p.ctx);
  }

  // The same breaker as the rate limiter's: after a failure every caller fails fast until one
  // probe succeeds, so a dead Redis costs one timeout per period, not one per request.
  Admission admit() {
    const std::int64_t until = open_until_ms.load(std::memory_order_acquire);
    if (until == 0) return Admission::kClosed;
    if (steady_ms() < until) return Admission::kRefused;
    bool expected = false;
    if (!probing.compare_exchange_strong(expected, true)) return Admission::kRefused;
    return Admission::kProbe;
  }

  void succeeded(Admission admission) {
    if (admission != Admission::kProbe) return;
    open_until_ms.store(0, std::memory_order_release);
    probing.store(false, std::memory_order_release);
  }

  void tripped(Admission admission) {
    errors.fetch_add(1, std::memory_order_relaxed);
    // Every pooled context may be as dead as the one that failed (restart, failover).
    generation.fetch_add(1, std::memory_order_acq_rel);
    std::vector<Pooled> stale;
    {
      std::lock_guard lock(mu);
      stale.swap(idle);
    }
    for (auto& p : stale) redisFree(p.ctx);
    open_until_ms.store(std::max<std::int64_t>(1, steady_ms() + options.breaker_open_ms),
                        std::memory_order_release);
    if (admission == Admission::kProbe) probing.store(false, std::memory_order_release);
  }

  Result<Pooled> acquire() {
    {
      std::lock_guard lock(mu);
      if (!idle.empty()) {
        Pooled p = idle.back();
        idle.pop_back();
        return p;
      }
    }
    Pooled p{nullptr, generation.load(std::memory_order_acquire)};
    p.ctx = redisConnectWithTimeout(options.host.c_str(), options.port,
                                    to_timeval(options.connect_timeout_ms));
    if (p.ctx == nullptr) return fail("replay_store_error", "redis connect: out of memory");
    auto give_up = [&](std::string message) {
      redisFree(p.ctx);
      return fail("replay_store_error", std::move(message));
    };
    if (p.ctx->err != 0) return give_up("redis connect: " + clip(p.ctx->errstr));
    // Without this a read blocks forever: the connect timeout does not cover commands.
    if (redisSetTimeout(p.ctx, to_timeval(options.command_timeout_ms)) != REDIS_OK) {
      return give_up("redis connect: cannot set the command timeout");
    }
    if (!options.password.empty()) {
      auto reply = command(p.ctx, {"AUTH", options.password});
      if (!reply) return give_up(reply.error().message);
      if ((*reply)->type == REDIS_REPLY_ERROR) {
        return give_up("redis auth: " + clip(std::string_view((*reply)->str, (*reply)->len)));
      }
    }
    return p;
  }

  // hiredis leaves a context unusable after any error, so only healthy ones go back.
  void give_back(Pooled p, bool healthy) {
    if (healthy && p.generation == generation.load(std::memory_order_acquire)) {
      std::lock_guard lock(mu);
      if (idle.size() < kMaxIdleConnections) {
        idle.push_back(p);
        return;
      }
    }
    redisFree(p.ctx);
  }

  // Binary-safe: arguments are passed separately, nothing is formatted into a command string.
  static Result<ReplyPtr> command(redisContext* ctx, std::initializer_list<std::string_view> args) {
    std::array<const char*, kMaxArgs> argv{};
    std::array<std::size_t, kMaxArgs> lengths{};
    std::size_t argc = 0;
    for (const auto arg : args) {
      if (argc == kMaxArgs) return fail("replay_store_error", "redis: too many arguments");
      argv[argc] = arg.data();
      lengths[argc] = arg.size();
      ++argc;
    }
    auto* raw = static_cast<redisReply*>(
        redisCommandArgv(ctx, static_cast<int>(argc), argv.data(), lengths.data()));
    if (raw == nullptr) return fail("replay_store_error", "redis io: " + clip(ctx->errstr));
    return ReplyPtr(raw);
  }

  static Result<ReplyPtr> script(redisContext* ctx, std::string_view sha, std::string_view body,
                                 std::string_view key, std::string_view a, std::string_view b) {
    auto reply = command(ctx, {"EVALSHA", sha, "1", key, a, b});
    // The script cache is empty after a restart, failover or SCRIPT FLUSH.
    if (reply && (*reply)->type == REDIS_REPLY_ERROR &&
        std::string_view((*reply)->str, (*reply)->len).starts_with("NOSCRIPT")) {
      reply = command(ctx, {"EVAL", body, "1", key, a, b});
    }
    return reply;
  }

  // Runs `body(ctx)` on a pooled connection behind the breaker. `body` answers the reply or an
  // error; an error reply from Redis is an error too (and, like I/O, trips the breaker).
  template <class Body>
  Result<ReplyPtr> run(Body&& body) {
    const Admission admission = admit();
    if (admission == Admission::kRefused) {
      errors.fetch_add(1, std::memory_order_relaxed);
      return fail("replay_store_error", "redis: circuit open");
    }
    auto pooled = acquire();
    if (!pooled) {
      tripped(admission);
      return tl::unexpected(pooled.error());
    }
    auto reply = body(pooled->ctx);
    if (!reply || (*reply)->type == REDIS_REPLY_ERROR) {
      std::string message = reply ? "redis: " + clip(std::string_view((*reply)->str, (*reply)->len))
                                  : reply.error().message;
      give_back(*pooled, reply.has_value());
      tripped(admission);
      return fail("replay_store_error", std::move(message));
    }
    give_back(*pooled, true);
    succeeded(admission);
    return reply;
  }

  std::string full_key(const std::string& key) const { return options.key_prefix + key; }
};

RedisReplayStore::RedisReplayStore(RedisOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

RedisReplayStore::~RedisReplayStore() = default;

policy::ReplayReply RedisReplayStore::reserve(const std::string& key, const std::string& token,
                                              std::int64_t pending_ttl_ms) {
  using Kind = policy::ReplayReply::Kind;
  policy::ReplayReply out;
  try {
    if (key.empty() || key.size() > kMaxKeyBytes || token.empty() ||
        token.size() > kMaxTokenBytes || pending_ttl_ms < 1 || pending_ttl_ms > kMaxTtlMs) {
      impl_->errors.fetch_add(1, std::memory_order_relaxed);
      out.error = "invalid replay reservation";
      return out;
    }
    const std::string value = std::string(kPendingPrefix) + token;
    const std::string ttl = std::to_string(pending_ttl_ms);
    const std::string full = impl_->full_key(key);
    auto reply = impl_->run([&](redisContext* ctx) {
      return Impl::script(ctx, impl_->reserve_sha, kReserveScript, full, value, ttl);
    });
    if (!reply) {
      out.error = std::move(reply.error().message);
      return out;
    }
    const redisReply& r = **reply;
    if (r.type == REDIS_REPLY_ARRAY && r.elements == 1 &&
        r.element[0]->type == REDIS_REPLY_INTEGER && r.element[0]->integer == 1) {
      out.kind = Kind::kReserved;
      return out;
    }
    if (r.type == REDIS_REPLY_ARRAY && r.elements == 3 &&
        r.element[1]->type == REDIS_REPLY_STRING && r.element[2]->type == REDIS_REPLY_INTEGER) {
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
    impl_->errors.fetch_add(1, std::memory_order_relaxed);
    out.error = "redis: unexpected script reply";
    return out;
  } catch (...) {
    out.kind = Kind::kStoreError;
    out.error = "replay store: out of memory";
    return out;
  }
}

Result<void> RedisReplayStore::complete(const std::string& key, std::int64_t window_ms) {
  try {
    if (key.empty() || key.size() > kMaxKeyBytes || window_ms < 1 || window_ms > kMaxTtlMs) {
      impl_->errors.fetch_add(1, std::memory_order_relaxed);
      return fail("replay_store_error", "invalid replay completion");
    }
    const std::string full = impl_->full_key(key);
    const std::string ttl = std::to_string(window_ms);
    auto reply = impl_->run([&](redisContext* ctx) {
      return Impl::command(ctx, {"SET", full, kDone, "PX", ttl});
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
    auto reply = impl_->run([&](redisContext* ctx) {
      return Impl::script(ctx, impl_->release_sha, kReleaseScript, full, value, "");
    });
    if (!reply) return tl::unexpected(reply.error());
    return {};
  } catch (...) {
    return fail("replay_store_error", "replay store: out of memory");
  }
}

std::uint64_t RedisReplayStore::errors() const {
  return impl_->errors.load(std::memory_order_relaxed);
}

}  // namespace hookguard::gateway
