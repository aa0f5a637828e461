// What the tests read from /proc/<pid>/stat.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>

namespace hookguard::testing {

struct ProcStat {
  char state = '?';  // R, S, T (stopped), ...
  pid_t ppid = 0;
  long cpu_ticks = 0;  // utime + stime, all threads, in clock ticks
};

/// The process's stat line, parsed after the last ')' (the comm may hold spaces and parens).
std::optional<ProcStat> proc_stat(pid_t pid);

/// CPU time (user + system, all threads) `pid` has used so far, in milliseconds.
std::optional<long> cpu_ms(pid_t pid);

/// CPU time (user + system, all threads) that `pid` uses during `window`, in milliseconds.
long cpu_ms_over(pid_t pid, std::chrono::milliseconds window);

}  // namespace hookguard::testing
