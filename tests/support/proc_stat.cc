#include "tests/support/proc_stat.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace hookguard::testing {

std::optional<ProcStat> proc_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const auto close_paren = line.rfind(')');
  if (close_paren == std::string::npos) return std::nullopt;
  // "state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime ..."
  std::istringstream fields(line.substr(close_paren + 1));
  ProcStat out;
  std::string skip;
  fields >> out.state >> out.ppid;
  for (int i = 0; i < 9; ++i) fields >> skip;
  long user = 0, system = 0;
  fields >> user >> system;
  if (!fields) return std::nullopt;
  out.cpu_ticks = user + system;
  return out;
}

std::optional<long> cpu_ms(pid_t pid) {
  const auto stat = proc_stat(pid);
  if (!stat) return std::nullopt;
  return stat->cpu_ticks * 1000 / sysconf(_SC_CLK_TCK);
}

long cpu_ms_over(pid_t pid, std::chrono::milliseconds window) {
  const auto before = cpu_ms(pid);
  std::this_thread::sleep_for(window);
  const auto after = cpu_ms(pid);
  if (!before || !after) return -1;
  return *after - *before;
}

}  // namespace hookguard::testing
