// hiredis plumbing shared by the Redis-backed stores: connections with bounded connect and
// command timeouts, binary-safe commands, Lua scripts with the NOSCRIPT fallback, and the circuit
// breaker that lets a dead Redis cost one timeout per period instead of one per request.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "policy/result.h"

struct redisContext;
struct redisReply;

namespace hookguard::gateway {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  // empty: no AUTH
  int connect_timeout_ms = 200;
  int command_timeout_ms = 100;
  int breaker_open_ms = 1000;  // after a failure, fail fast for this long before reconnecting
  std::string key_prefix;      // prepended to every key: separates deployments sharing a Redis
};

struct RedisReplyDeleter {
  void operator()(redisReply* reply) const;
};
/// A reply owned by the caller.
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

/// "redis: " and the text of an error reply, clipped for logs.
std::string redis_error_text(const redisReply& reply);

/// Whether `reply` is an error reply whose text starts with `code` (e.g. "NOSCRIPT").
bool is_error_reply(const Result<RedisReplyPtr>& reply, std::string_view code);

/// Whether `reply` is an error that every later command on its connection would get too: the
/// server became a replica (READONLY: a failover moved the primary, and a new connection finds
/// it), is loading its data (LOADING), lost its primary (MASTERDOWN), or no longer accepts our
/// authentication (NOAUTH). Other error replies (a script error, WRONGTYPE on one key) concern
/// their own command only.
bool is_server_state_error(const Result<RedisReplyPtr>& reply);

/// A Lua script and the SHA-1 that EVALSHA names it by.
struct RedisScript {
  explicit RedisScript(std::string_view script_text);
  std::string text;
  std::string sha;
};

/// One hiredis context, used by one thread at a time (hiredis is not thread-safe). hiredis 0.14
/// leaves a context unusable after any error (a late reply would be read as the answer to the
/// next command), so a context that failed is only ever closed, never reused.
class RedisConnection {
 public:
  RedisConnection() = default;
  ~RedisConnection();
  RedisConnection(RedisConnection&& other) noexcept;
  RedisConnection& operator=(RedisConnection&& other) noexcept;
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  bool is_open() const { return ctx_ != nullptr; }
  /// Frees the context; is_open() is false afterwards.
  void close();

  /// Sends one command given as separate arguments (at most 8), binary-safe: nothing is
  /// formatted into a command string. An error reply is a reply; only a transport failure (or
  /// a closed connection) is an Error.
  Result<RedisReplyPtr> command(std::initializer_list<std::string_view> args);
  /// Runs `script` on one key: EVALSHA first (only the hash on the wire); the script cache is
  /// empty after a restart, failover or SCRIPT FLUSH, and on NOSCRIPT, EVAL both runs and caches
  /// it again. Replies like command().
  Result<RedisReplyPtr> eval(const RedisScript& script, std::string_view key,
                             std::initializer_list<std::string_view> args);

  /// Pipelining, step one: queues one command (any number of arguments, binary-safe) in the
  /// context's output buffer without sending anything. Each appended command must be answered
  /// by one read_reply(), in order, before command() or eval() is used again.
  Result<void> append(std::span<const std::string_view> args);
  /// Pipelining, step two: the reply to the oldest appended command. The first call sends every
  /// appended command in one write; each call waits at most command_timeout_ms for its reply.
  /// Like command(), an error reply is a reply; a transport failure (or a timeout) is an Error,
  /// after which the connection must be closed.
  Result<RedisReplyPtr> read_reply();

 private:
  friend class RedisEndpoint;
  RedisConnection(redisContext* ctx, std::uint64_t generation)
      : ctx_(ctx), generation_(generation) {}
  Result<RedisReplyPtr> command(std::span<const std::string_view> args);

  redisContext* ctx_ = nullptr;
  std::uint64_t generation_ = 0;  // the endpoint's generation when this connection was made
};

/// The Redis server of one store, shared by all its callers: the options, new connections, and
/// a circuit breaker. After a failure every caller fails fast for breaker_open_ms; then exactly
/// one caller probes, and its success closes the breaker. Each failure also makes every existing
/// connection stale: they may be just as dead (restarted or failed-over server), so each is
/// rebuilt once instead of re-tripping the breaker one by one.
class RedisEndpoint {
 public:
  enum class Admission {
    kClosed,   // breaker closed: go ahead
    kProbe,    // this caller is the one probe: succeeded() or failed() must follow
    kRefused,  // breaker open: fail fast
  };

  explicit RedisEndpoint(RedisOptions options);
  RedisEndpoint(const RedisEndpoint&) = delete;
  RedisEndpoint& operator=(const RedisEndpoint&) = delete;

  const RedisOptions& options() const { return options_; }

  /// Whether a call may go to Redis now.
  Admission admit();
  /// Closes the breaker after a successful probe; nothing for kClosed.
  void succeeded(Admission admission);
  /// Opens the breaker for breaker_open_ms and makes every existing connection stale.
  void failed(Admission admission);

  /// A new connection: connect_timeout_ms to connect, command_timeout_ms for every command
  /// after that (without it a read blocks forever), then AUTH when a password is set.
  Result<RedisConnection> connect() const;
  /// False for a connection made before the latest failure.
  bool is_current(const RedisConnection& connection) const;

 private:
  RedisOptions options_;
  std::atomic<std::int64_t> open_until_ms_{0};  // steady clock; 0 = closed
  std::atomic<bool> probing_{false};
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace hookguard::gateway
