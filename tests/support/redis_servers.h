// Redis helpers for the integration suites: a plain hiredis connection for a test's own
// commands, a free loopback port, and throwaway redis-server processes to kill and freeze.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gateway/redis_connection.h"

struct redisContext;

namespace hookguard::testing {

/// A plain hiredis connection for the test's own commands (seeding, inspecting, SCRIPT FLUSH),
/// with 2 s timeouts. Defaults to the Redis of deploy/local.
class DirectRedis {
 public:
  DirectRedis(const std::string& host, int port);
  DirectRedis();
  ~DirectRedis();
  DirectRedis(const DirectRedis&) = delete;
  DirectRedis& operator=(const DirectRedis&) = delete;

  bool ok() const;

  /// Runs a command; returns the integer, status or string reply as text, the elements of an
  /// array reply one per line, "(nil)", or "ERR:<message>".
  std::string run(const std::vector<std::string>& args);
  /// The server's clock (TIME) in Unix milliseconds.
  std::int64_t time_ms();

 private:
  redisContext* ctx_ = nullptr;
};

/// A loopback TCP port that was free a moment ago (nothing listens on it), or -1.
int free_port();

/// A redis-server child process on a fixed loopback port that a test can kill, restart and
/// freeze (SIGSTOP) to play a Redis that dies or hangs. Killed with the test process
/// (PR_SET_PDEATHSIG) if the test dies first.
class ThrowawayRedis {
 public:
  explicit ThrowawayRedis(std::string password = {});
  ~ThrowawayRedis();  // stop()s
  ThrowawayRedis(const ThrowawayRedis&) = delete;
  ThrowawayRedis& operator=(const ThrowawayRedis&) = delete;

  int port() const { return port_; }

  /// Starts the server and waits until it answers PING (at most 3 s).
  bool start();
  /// Kills the server (SIGKILL, after a SIGCONT in case it is frozen) and reaps it.
  void stop();
  void freeze();
  void thaw();

 private:
  int port_;
  std::string password_;
  pid_t pid_ = -1;
};

/// Options for deploy/local's Redis with generous timeouts: for tests about counting and
/// ordering, not timing (CI machines stall).
gateway::RedisOptions live_redis_options();
/// Options for a throwaway server on `port` with short timeouts (300 ms) and breaker (400 ms).
gateway::RedisOptions local_redis_options(int port);

}  // namespace hookguard::testing
