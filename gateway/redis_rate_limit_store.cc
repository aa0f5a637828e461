#include "gateway/redis_rate_limit_store.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gateway/redis_pipeline.h"
#include "policy/result.h"

namespace hookguard::gateway {
namespace {

// Mirrors policy::evaluate_window exactly. Everything is computed in integers scaled by the
// window (estimate * window = prev * (window - elapsed) + cur * window), so the allow test has
// no floating-point rounding; Lua 5.1 numbers are doubles, exact below 2^53, and hit() refuses
// queries that could leave that range. Redis TIME (not the caller's clock) makes every gateway
// instance agree on the window. Both counter keys are derived from KEYS[1], whose hash tag puts
// them in its cluster slot. Replies are integers only: Redis truncates Lua numbers. A counter
// gets its expiry when its first INCRBY creates it (start + 2 windows at the earliest, so it
// still serves as the previous window): a PEXPIRE on every call cost Redis a sixth of the script.
//
// ARGV[3] (default 1) is a number of hits arriving together, decided as that many calls in a row
// at the same Redis time would be: each allowed hit adds `window` to the scaled estimate, so the
// first `allowed` of them pass and the rest wait as one more hit would after those. The reply:
// {allowed, remaining after the first allowed hit (0 when none), reset s, retry-after s of the
// refused ones (0 when none), now ms, previous count, current count before these hits}; with
// one hit, {1, remaining, ...} or {0, 0, ...}, as evaluate_window answers.
constexpr std::string_view kScript = R"lua(
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local hits = tonumber(ARGV[3]) or 1
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + idiv(tonumber(t[2]), 1000)
local start = idiv(now, window) * window
local cur_key = KEYS[1] .. ':' .. string.format('%d', start)
local prev_key = KEYS[1] .. ':' .. string.format('%d', start - window)
local counts = redis.call('MGET', cur_key, prev_key)
local cur = tonumber(counts[1] or '0')
local prev = tonumber(counts[2] or '0')
if cur < 0 then cur = 0 end
if prev < 0 then prev = 0 end
local elapsed = now - start
local left = window - elapsed
local scaled = prev * left + cur * window
local reset = idiv(left + 999, 1000)
if reset < 1 then reset = 1 end
local allowed = 0
local remaining = 0
local room = limit * window - scaled
if room >= window then
  allowed = idiv(room, window)
  if allowed > hits then allowed = hits end
  remaining = idiv(room - window, window)
  if redis.call('INCRBY', cur_key, allowed) == allowed then
    redis.call('PEXPIRE', cur_key, 2 * window)
  end
end
if allowed == hits then return {allowed, remaining, reset, 0, now, prev, cur} end
local counted = cur + allowed
local wait
if counted + 1 <= limit then
  wait = window - idiv((limit - counted - 1) * window, prev) - elapsed
else
  wait = left + window - idiv((limit - 1) * window, counted)
end
local retry = idiv(wait + 999, 1000)
if retry < 1 then retry = 1 end
return {allowed, remaining, reset, retry, now, prev, cur}
)lua";

constexpr std::size_t kScriptReplySize = 7;
constexpr std::int64_t kMaxWindowSeconds = 366LL * 24 * 3600;
// limit * window_ms stays far enough below 2^53 for the script's doubles to stay exact.
constexpr std::int64_t kMaxLimitTimesWindowMs = std::int64_t{1} << 50;

// Owns every thread's connection of one store, so that the store's destruction closes them and
// a thread's exit releases its own without waiting for the store.
struct Registry {
  std::mutex mu;
  std::vector<std::unique_ptr<RedisConnection>> connections;

  RedisConnection* add() {
    std::lock_guard lock(mu);
    connections.push_back(std::make_unique<RedisConnection>());
    return connections.back().get();
  }

  void remove(const RedisConnection* connection) {
    std::lock_guard lock(mu);
    std::erase_if(connections, [&](const auto& c) { return c.get() == connection; });
  }
};

// This thread's connections, one per live store. Stores are keyed by a never-reused id, not by
// address, so a new store at a dead store's address cannot inherit its connection; the weak_ptr
// tells a thread whether the store (and so the connection) still exists.
struct ThreadSlots {
  struct Slot {
    std::uint64_t store_id = 0;
    std::weak_ptr<Registry> registry;
    RedisConnection* connection = nullptr;
  };
  std::vector<Slot> slots;

  ThreadSlots() = default;
  ThreadSlots(const ThreadSlots&) = delete;
  ThreadSlots& operator=(const ThreadSlots&) = delete;
  ~ThreadSlots() {
    for (auto& slot : slots) {
      if (auto registry = slot.registry.lock()) registry->remove(slot.connection);
    }
  }
};

thread_local ThreadSlots t_slots;
std::atomic<std::uint64_t> g_next_store_id{1};

}  // namespace

struct RedisRateLimitStore::Impl {
  using Admission = RedisEndpoint::Admission;
  using Done = std::function<void(policy::RateLimitReply)>;

  // The breaker is shared by all threads: one thread's failure makes every thread fail fast,
  // so a dead Redis costs one timeout per breaker period instead of one per request and thread.
  RedisEndpoint redis;
  RedisScript script{kScript};
  std::uint64_t id = g_next_store_id.fetch_add(1);
  std::shared_ptr<Registry> registry = std::make_shared<Registry>();
  std::atomic<std::uint64_t> errors{0};
  // Last: destroyed (stopped, answering everything queued) before the members it uses.
  RedisPipeline pipeline{redis};

  explicit Impl(RedisOptions opts) : redis(std::move(opts)) {}
  ~Impl() { pipeline.stop(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void failed(RedisConnection* connection, Admission admission) {
    if (connection != nullptr) connection->close();
    redis.failed(admission);
  }

  RedisConnection& thread_connection() {
    for (const auto& slot : t_slots.slots) {
      if (slot.store_id == id) return *slot.connection;
    }
    std::erase_if(t_slots.slots, [](const ThreadSlots::Slot& s) { return s.registry.expired(); });
    RedisConnection* connection = registry->add();
    t_slots.slots.push_back(ThreadSlots::Slot{id, registry, connection});
    return *connection;
  }

  Result<RedisConnection*> ready_connection() {
    RedisConnection& connection = thread_connection();
    if (connection.is_open() && !redis.is_current(connection)) connection.close();
    if (!connection.is_open()) {
      auto connected = redis.connect();
      if (!connected) return tl::unexpected(std::move(connected.error()));
      connection = std::move(*connected);
    }
    return &connection;
  }

  Result<RedisReplyPtr> run_script(RedisConnection& connection, const policy::RateLimitQuery& query,
                                   std::int64_t window_ms, std::size_t hits) {
    const std::string limit = std::to_string(query.limit);
    const std::string window = std::to_string(window_ms);
    const std::string count = std::to_string(hits);
    const std::string key = redis.options().key_prefix + query.key;
    auto reply = connection.eval(script, key, {limit, window, count});
    if (!reply) return reply;
    if ((*reply)->type == REDIS_REPLY_ERROR) {
      return fail("rate_limit_store_error", redis_error_text(**reply));
    }
    return reply;
  }

  static bool valid(const policy::RateLimitQuery& query) {
    if (query.limit < 1 || query.window_seconds < 1 || query.window_seconds > kMaxWindowSeconds) {
      return false;
    }
    return query.limit <= kMaxLimitTimesWindowMs / (query.window_seconds * 1000);
  }

  policy::RateLimitReply store_error(std::int64_t limit, std::string message) {
    errors.fetch_add(1, std::memory_order_relaxed);
    policy::RateLimitReply reply;
    reply.kind = policy::RateLimitReply::Kind::kStoreError;
    reply.limit = limit;
    reply.error = std::move(message);
    return reply;
  }

  // Whether `r` has the script's shape: an array of kScriptReplySize integers.
  static bool is_script_reply(const redisReply& r) {
    return r.type == REDIS_REPLY_ARRAY && r.elements == kScriptReplySize &&
           std::all_of(r.element, r.element + r.elements,
                       [](const redisReply* e) { return e->type == REDIS_REPLY_INTEGER; });
  }

  // The verdicts of a call that decided `hits` hits, in their order (filling `trace` when not
  // null); nullopt for a reply of any other shape.
  static std::optional<std::vector<policy::RateLimitReply>> split(const redisReply& r,
                                                                  std::int64_t limit,
                                                                  std::size_t hits,
                                                                  RedisHitTrace* trace) {
    if (!is_script_reply(r)) return std::nullopt;
    const std::int64_t allowed = r.element[0]->integer;
    std::vector<policy::RateLimitReply> out(hits);
    for (std::size_t i = 0; i < hits; ++i) {
      const auto n = static_cast<std::int64_t>(i);
      out[i].kind = n < allowed ? policy::RateLimitReply::Kind::kAllowed
                                : policy::RateLimitReply::Kind::kLimited;
      out[i].limit = limit;
      out[i].remaining = n < allowed ? r.element[1]->integer - n : 0;
      out[i].reset_seconds = r.element[2]->integer;
      out[i].retry_after_seconds = n < allowed ? 0 : r.element[3]->integer;
    }
    if (trace != nullptr) {
      trace->now_ms = r.element[4]->integer;
      trace->counts.previous = r.element[5]->integer;
      trace->counts.current = r.element[6]->integer;
    }
    return out;
  }

  std::vector<policy::RateLimitReply> hit_many(const policy::RateLimitQuery& query,
                                               std::size_t hits, RedisHitTrace* trace) {
    auto refuse = [&](const std::string& message) {
      std::vector<policy::RateLimitReply> out;
      for (std::size_t i = 0; i < hits; ++i) out.push_back(store_error(query.limit, message));
      return out;
    };
    if (!valid(query)) return refuse("invalid rate-limit query");
    if (hits == 0) return {};
    const Admission admission = redis.admit();
    if (admission == Admission::kRefused) return refuse("redis: circuit open");
    auto fail_with = [&](RedisConnection* connection, const std::string& message) {
      failed(connection, admission);
      return refuse(message);
    };

    auto connection = ready_connection();
    if (!connection) return fail_with(nullptr, connection.error().message);
    auto reply = run_script(**connection, query, query.window_seconds * 1000, hits);
    if (!reply) return fail_with(*connection, reply.error().message);

    auto decided = split(**reply, query.limit, hits, trace);
    if (!decided) return fail_with(*connection, "redis: unexpected script reply");
    redis.succeeded(admission);
    return std::move(*decided);
  }

  // Hits of one key (with one limit and window) that arrive while its script call waits in the
  // pipeline queue ride on that call, ARGV[3] saying how many there are: a burst costs Redis one
  // script call per key and round trip instead of one per hit. A group is open (in open_groups)
  // until the pipeline takes its call, or answers it without sending; then its hits are fixed.
  struct HitGroup {
    std::int64_t limit = 0;
    std::vector<Done> waiting;  // in arrival order; appended only while open, under groups_mu
  };
  std::mutex groups_mu;
  std::unordered_map<std::string, std::shared_ptr<HitGroup>> open_groups;  // guarded by groups_mu
  std::size_t waiting_hits = 0;  // in open groups; guarded by groups_mu

  void close(const std::string& id, const std::shared_ptr<HitGroup>& group) {
    std::lock_guard lock(groups_mu);
    const auto it = open_groups.find(id);
    if (it == open_groups.end() || it->second != group) return;
    waiting_hits -= group->waiting.size();
    open_groups.erase(it);
  }

  void hit_async(policy::RateLimitQuery query, Done done) {
    if (!valid(query)) {
      done(store_error(query.limit, "invalid rate-limit query"));
      return;
    }
    std::string key = redis.options().key_prefix + query.key;
    std::string limit = std::to_string(query.limit);
    std::string window = std::to_string(query.window_seconds * 1000);
    std::string id = limit + ' ' + window + ' ' + key;
    std::shared_ptr<HitGroup> group;
    {
      std::lock_guard lock(groups_mu);
      if (waiting_hits < kMaxWaitingHits) {
        ++waiting_hits;
        auto& open = open_groups[id];
        if (open) {
          open->waiting.push_back(std::move(done));
          return;
        }
        open = group = std::make_shared<HitGroup>();
        group->limit = query.limit;
        group->waiting.push_back(std::move(done));
      }
    }
    if (!group) {
      // As when the pipeline's queue is full: a store error at once, on_store_error decides.
      done(store_error(query.limit, "redis: pipeline queue full"));
      return;
    }
    pipeline.eval(
        script, std::move(key), {std::move(limit), std::move(window), "1"},
        [this, id, group](Result<RedisReplyPtr> reply) {
          close(id, group);
          answer(reply, *group);
        },
        [this, id, group](std::vector<std::string>& args) {
          close(id, group);
          args[2] = std::to_string(group->waiting.size());
        });
  }

  // Unlike hit(), an error reply (OOM, BUSY, a script error) or a reply of another shape is a
  // store error for these hits only and does not open the breaker: the round trip itself
  // worked, the connection is still in step, and the pipeline already told the breaker so for
  // the whole batch. Transport failures and server-state errors (READONLY, ...) opened it there.
  void answer(const Result<RedisReplyPtr>& reply, HitGroup& group) {
    const std::size_t hits = group.waiting.size();
    std::optional<std::vector<policy::RateLimitReply>> decided;
    std::string error;
    if (!reply) {
      error = reply.error().message;
    } else if ((*reply)->type == REDIS_REPLY_ERROR) {
      error = redis_error_text(**reply);
    } else {
      decided = split(**reply, group.limit, hits, nullptr);
      if (!decided) error = "redis: unexpected script reply";
    }
    for (std::size_t i = 0; i < hits; ++i) {
      // One caller's exception must not leave the others of its group unanswered.
      try {
        group.waiting[i](decided ? std::move((*decided)[i]) : store_error(group.limit, error));
      } catch (...) {
      }
    }
  }

  bool ping() {
    const Admission admission = redis.admit();
    if (admission == Admission::kRefused) return false;
    auto connection = ready_connection();
    if (!connection) {
      failed(nullptr, admission);
      return false;
    }
    auto reply = (*connection)->command({"PING"});
    if (!reply || (*reply)->type != REDIS_REPLY_STATUS ||
        std::string_view((*reply)->str, (*reply)->len) != "PONG") {
      failed(*connection, admission);
      return false;
    }
    redis.succeeded(admission);
    return true;
  }
};

RedisRateLimitStore::RedisRateLimitStore(RedisOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

RedisRateLimitStore::~RedisRateLimitStore() = default;

policy::RateLimitReply RedisRateLimitStore::hit(const policy::RateLimitQuery& query) {
  return impl_->hit_many(query, 1, nullptr).front();
}

policy::RateLimitReply RedisRateLimitStore::hit(const policy::RateLimitQuery& query,
                                                RedisHitTrace* trace) {
  return impl_->hit_many(query, 1, trace).front();
}

std::vector<policy::RateLimitReply> RedisRateLimitStore::hit_many(
    const policy::RateLimitQuery& query, std::size_t hits, RedisHitTrace* trace) {
  return impl_->hit_many(query, hits, trace);
}

void RedisRateLimitStore::hit_async(policy::RateLimitQuery query,
                                    std::function<void(policy::RateLimitReply)> done) {
  impl_->hit_async(std::move(query), std::move(done));
}

bool RedisRateLimitStore::ping() { return impl_->ping(); }

std::uint64_t RedisRateLimitStore::round_trips() const { return impl_->pipeline.batches(); }

std::uint64_t RedisRateLimitStore::errors() const {
  return impl_->errors.load(std::memory_order_relaxed);
}

void RedisRateLimitStore::stop_async() { impl_->pipeline.stop(); }

}  // namespace hookguard::gateway
