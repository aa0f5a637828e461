// Hangs a shared service of deploy/local with SIGSTOP (for fault tests), and always resumes it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace hookguard::testing {

/// The local services a fault test can freeze.
enum class FrozenService { kRedis, kPostgres };

/// SIGSTOPs every process of a deploy/local service for the lifetime of the object: the
/// kernel still accepts TCP connections into the backlog and acknowledges what clients send,
/// but nothing is ever answered, which is what a hung (not stopped) server looks like.
///
/// The processes are found through the files deploy/local writes: Redis by
/// $HOOKGUARD_LOCAL_DIR/redis/redis.pid, PostgreSQL by $HOOKGUARD_PG_DATA/postmaster.pid plus
/// every child of the postmaster (backends, checkpointer, ...), so that no backend can answer
/// either.
///
/// Other suites share these services, so the resume is guaranteed three ways: resume() (or the
/// destructor, when an assertion returns early); and a detached watchdog process that sends
/// SIGCONT when this process dies (its pipe reaches end of file: crash, SIGKILL, ctest timeout)
/// or when `max_frozen` has passed, whichever comes first.
class ServiceFreeze {
 public:
  explicit ServiceFreeze(FrozenService service,
                         std::chrono::milliseconds max_frozen = std::chrono::seconds(20));
  ~ServiceFreeze();  // resume()s
  ServiceFreeze(const ServiceFreeze&) = delete;
  ServiceFreeze& operator=(const ServiceFreeze&) = delete;

  /// True when every process of the service was seen stopped (state T).
  bool frozen() const { return frozen_; }
  /// Why frozen() is false (empty when it is true).
  const std::string& error() const { return error_; }
  /// The processes that were stopped.
  const std::vector<pid_t>& pids() const { return pids_; }
  /// Sends SIGCONT to every stopped process (idempotent) and releases the watchdog.
  void resume();

 private:
  bool start_watchdog(std::chrono::milliseconds max_frozen);
  bool stop_process(pid_t pid);

  std::vector<pid_t> pids_;
  int watchdog_fd_ = -1;  // write end of the watchdog's pipe
  bool frozen_ = false;
  bool resumed_ = false;
  std::string error_;
};

}  // namespace hookguard::testing
