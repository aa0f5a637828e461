#include "tests/support/service_freeze.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "tests/support/proc_stat.h"

namespace hookguard::testing {
namespace {

constexpr std::size_t kMaxWatchedPids = 512;

std::optional<pid_t> read_pid_file(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 1) return std::nullopt;
  return static_cast<pid_t>(pid);
}

std::string comm_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return out;
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    auto stat = proc_stat(static_cast<pid_t>(pid));
    if (stat && stat->ppid == parent) out.push_back(static_cast<pid_t>(pid));
  }
  closedir(dir);
  return out;
}

long long monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// The watchdog's whole life. It runs in a child of a multi-threaded process, so it makes only
// async-signal-safe calls. It collects the pids the owner stops, and sends each SIGCONT when
// the owner closes the pipe (resume, or the owner died) or when `max_frozen_ms` has passed.
[[noreturn]] void watchdog_main(int read_fd, long max_fd, long long max_frozen_ms) {
  // Holds no copy of the owner's sockets or pipes: ctest must not wait on its output pipe, and
  // the owner's write end must close when the owner dies.
  for (int fd = 0; fd < max_fd; ++fd) {
    if (fd != read_fd) close(fd);
  }
  pid_t pids[kMaxWatchedPids];
  std::size_t count = 0;
  const long long deadline = monotonic_ms() + max_frozen_ms;
  for (;;) {
    const long long left = deadline - monotonic_ms();
    if (left <= 0) break;
    pollfd p{read_fd, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) continue;
    if (ready < 0) break;
    pid_t pid = 0;
    const ssize_t got = read(read_fd, &pid, sizeof pid);
    if (got < 0 && errno == EINTR) continue;
    if (got != static_cast<ssize_t>(sizeof pid)) break;  // end of file: resumed, or owner died
    if (count < kMaxWatchedPids) pids[count++] = pid;
  }
  for (std::size_t i = 0; i < count; ++i) kill(pids[i], SIGCONT);
  _exit(0);
}

}  // namespace

ServiceFreeze::ServiceFreeze(FrozenService service, std::chrono::milliseconds max_frozen) {
  const bool postgres = service == FrozenService::kPostgres;
  const char* dir = std::getenv(postgres ? "HOOKGUARD_PG_DATA" : "HOOKGUARD_LOCAL_DIR");
  if (dir == nullptr || *dir == '\0') {
    error_ = std::string(postgres ? "HOOKGUARD_PG_DATA" : "HOOKGUARD_LOCAL_DIR") +
             " is not set (source var/local/env)";
    return;
  }
  const std::string pid_file =
      std::string(dir) + (postgres ? "/postmaster.pid" : "/redis/redis.pid");
  const auto main_pid = read_pid_file(pid_file);
  if (!main_pid) {
    error_ = "no pid in " + pid_file;
    return;
  }
  const std::string expected = postgres ? "postgres" : "redis-server";
  if (comm_of(*main_pid) != expected) {
    error_ = "pid " + std::to_string(*main_pid) + " from " + pid_file + " is not " + expected;
    return;
  }
  if (!start_watchdog(max_frozen)) {
    error_ = "could not start the watchdog process";
    return;
  }
  if (!stop_process(*main_pid)) {
    error_ = "could not stop pid " + std::to_string(*main_pid);
    resume();
    return;
  }
  if (postgres) {
    // The postmaster, stopped first, forks no new backend; one it was forking just then shows
    // up on a later pass.
    for (int pass = 0; pass < 5; ++pass) {
      bool found_new = false;
      for (pid_t child : children_of(*main_pid)) {
        if (std::find(pids_.begin(), pids_.end(), child) != pids_.end()) continue;
        found_new = true;
        if (!stop_process(child)) {
          error_ = "could not stop pid " + std::to_string(child);
          resume();
          return;
        }
      }
      if (!found_new && pass > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  // SIGSTOP is delivered asynchronously: frozen only once every process shows state T.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    const bool all_stopped = std::all_of(pids_.begin(), pids_.end(), [](pid_t pid) {
      auto stat = proc_stat(pid);
      return !stat || stat->state == 'T';  // a process that exited cannot answer either
    });
    if (all_stopped) {
      frozen_ = true;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  error_ = "not every process reached the stopped state";
  resume();
}

ServiceFreeze::~ServiceFreeze() { resume(); }

void ServiceFreeze::resume() {
  if (resumed_) return;
  resumed_ = true;
  frozen_ = false;
  for (pid_t pid : pids_) kill(pid, SIGCONT);
  if (watchdog_fd_ >= 0) {
    close(watchdog_fd_);  // the watchdog sends SIGCONT once more (harmless) and exits
    watchdog_fd_ = -1;
  }
}

bool ServiceFreeze::start_watchdog(std::chrono::milliseconds max_frozen) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return false;
  const long max_fd = std::min(sysconf(_SC_OPEN_MAX), 65536L);
  const pid_t child = fork();
  if (child < 0) {
    close(fds[0]);
    close(fds[1]);
    return false;
  }
  if (child == 0) {
    // Double fork into a new session: the watchdog is nobody's descendant, so a runner that
    // kills this test's whole process tree on a timeout still leaves it to resume the service.
    setsid();
    if (fork() != 0) _exit(0);
    watchdog_main(fds[0], max_fd, max_frozen.count());
  }
  close(fds[0]);
  waitpid(child, nullptr, 0);
  watchdog_fd_ = fds[1];
  return true;
}

bool ServiceFreeze::stop_process(pid_t pid) {
  // Registered with the watchdog before it is stopped, so no stopped process is ever unknown
  // to it.
  if (write(watchdog_fd_, &pid, sizeof pid) != static_cast<ssize_t>(sizeof pid)) return false;
  if (kill(pid, SIGSTOP) != 0) return false;
  pids_.push_back(pid);
  return true;
}

}  // namespace hookguard::testing
