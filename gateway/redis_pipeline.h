// Pipelined Lua script calls: the commands of many concurrent callers go to Redis in one write
// and their replies come back in one read, on one connection driven by one thread, so that no
// caller's thread ever waits for Redis.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gateway/redis_connection.h"
#include "policy/result.h"

namespace hookguard::gateway {

/// One thread and one RedisConnection that run the scripts queued by eval() in batches.
///
/// The thread starts with the first eval(), so a process that only makes blocking calls (a CLI
/// command, a test) never gets one. Each round takes every queued command (at most kMaxBatch),
/// asks the endpoint's breaker once, appends them all, then reads the replies in order; each
/// callback runs once its whole batch is read. Connections come from the endpoint the pipeline
/// is given, so its breaker and staleness are shared with the owner's blocking calls: a failure
/// here makes them fail fast, and theirs make this connection be rebuilt.
///
/// A transport failure (write or read error, command_timeout_ms without a reply, or the batch's
/// replies not all in within command_timeout_ms) closes the connection, opens the breaker and
/// fails that command and every later unanswered one of the batch. An error reply is a reply,
/// for its command only; but one that says the server cannot serve this connection any more
/// (is_server_state_error: READONLY after a failover, ...) also closes the connection and opens
/// the breaker, so that the next connection goes wherever the server's name points now. A
/// NOSCRIPT error (the script cache is empty after a restart, failover or SCRIPT FLUSH) is
/// answered by sending that command again with EVAL and the text.
class RedisPipeline {
 public:
  /// The reply, or an Error (code "redis_error") whose message says what failed.
  using Done = std::function<void(Result<RedisReplyPtr>)>;
  /// Runs on the pipeline thread once the command has left the queue, before it is written; it
  /// may change the command's arguments (a caller that merges work into a queued command learns
  /// there that no more can join it). Not run when the command is refused at eval().
  using Prepare = std::function<void(std::vector<std::string>& args)>;
  /// Commands sent in one write at most; the rest wait for the next round.
  static constexpr std::size_t kMaxBatch = 512;

  /// `endpoint` must outlive the pipeline. At most `max_queued` commands wait to be sent; more
  /// are refused at once.
  explicit RedisPipeline(RedisEndpoint& endpoint, std::size_t max_queued = 10000);
  /// stop()s. Must not run on the pipeline's own thread (inside a callback).
  ~RedisPipeline();
  RedisPipeline(const RedisPipeline&) = delete;
  RedisPipeline& operator=(const RedisPipeline&) = delete;

  /// Queues EVALSHA <script.sha> 1 <key> <args...> (binary-safe). `done` runs exactly once: on
  /// the pipeline thread, or inline with an error when the queue is full or the pipeline is
  /// stopped. A callback may call eval() again: the command goes into a later batch. An
  /// exception thrown by `done` or `prepare` is swallowed. `script` must outlive the pipeline.
  void eval(const RedisScript& script, std::string key, std::vector<std::string> args, Done done,
            Prepare prepare = {});

  /// Refuses new commands, answers every queued one (sending it, behind the breaker), then
  /// joins the thread. Idempotent and thread-safe. From a callback (on the pipeline thread) it
  /// cannot join its own thread: it only refuses new commands, the thread exits once the queue
  /// is drained and the destructor joins it.
  void stop();

  /// Rounds sent to Redis (or refused by the breaker) so far: fewer than commands when
  /// pipelining works.
  std::uint64_t batches() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hookguard::gateway
