// Runs the real `hookguard serve` binary for end-to-end tests.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace hookguard::testing {

/// A master key every e2e test uses (base64 of 32 bytes); never used outside tests.
inline constexpr const char* kTestMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// One `hookguard serve` child process on ports chosen by the kernel.
class GatewayProcess {
 public:
  /// `extra_yaml` is appended to a config that sets the DSN, Redis, ports 0 and a spool dir.
  /// `env` adds variables (NAME, value) to the child's environment.
  GatewayProcess(std::string dsn, std::string extra_yaml = "",
                 std::vector<std::pair<std::string, std::string>> env = {});
  /// Stops a child still running with SIGTERM (SIGKILL if it has not exited after 10 s), and
  /// fails the test if it did not exit 0 or its log holds a sanitizer report.
  ~GatewayProcess();
  GatewayProcess(const GatewayProcess&) = delete;
  GatewayProcess& operator=(const GatewayProcess&) = delete;

  /// Starts the child and waits until it serves; false (with log()) if it does not in time.
  bool start(int timeout_ms = 20000);
  /// Sends SIGTERM and waits for the exit status (-1 on timeout).
  int stop(int timeout_ms = 20000);
  /// Sends a signal without waiting.
  void signal(int sig);
  /// Waits for the child to exit; its exit code, or -1 on timeout.
  int wait_exit(int timeout_ms);

  pid_t pid() const { return pid_; }
  int ingress_port() const { return ingress_port_; }
  int admin_port() const { return admin_port_; }
  std::string ingress_url(const std::string& path) const;
  std::string admin_url(const std::string& path) const;
  /// What the child wrote to stderr and stdout so far.
  std::string log() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dsn_, extra_yaml_, dir_;
  std::vector<std::pair<std::string, std::string>> env_;
  pid_t pid_ = -1;
  int ingress_port_ = 0;
  int admin_port_ = 0;
};

/// Runs the hookguard binary with `args` (and `stdin_text`), returns (exit code, stdout+stderr).
/// Fails the test if the output holds a sanitizer report.
std::pair<int, std::string> run_hookguard(
    const std::vector<std::string>& args, const std::string& stdin_text = "",
    const std::vector<std::pair<std::string, std::string>>& env = {});

}  // namespace hookguard::testing
