#include "tests/support/gateway_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/support/test_env.h"

#ifndef HOOKGUARD_BINARY
#error "HOOKGUARD_BINARY must name the hookguard executable"
#endif

namespace hookguard::testing {

namespace {

std::string make_temp_dir() {
  char tmpl[] = "/tmp/hookguard-e2e-XXXXXX";
  char* dir = mkdtemp(tmpl);
  return dir ? std::string(dir) : std::string("/tmp");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// How long the destructor lets a child still running drain after SIGTERM before SIGKILL.
constexpr int kGracefulStopMs = 10000;

// Where a sanitizer report starts. UBSan (built with -fno-sanitize-recover) prints only a
// "file:line:col: runtime error: ..." line before the process exits with code 1.
constexpr std::array<const char*, 4> kSanitizerMarkers = {
    "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "SUMMARY: UndefinedBehaviorSanitizer",
    ": runtime error: "};

// Fails the current test when `output` holds a sanitizer report. The child's stderr goes to a
// file in a directory removed with the GatewayProcess, so an unchecked report would be lost.
void expect_no_sanitizer_report(const std::string& output, const std::string& what) {
  for (const char* marker : kSanitizerMarkers) {
    const auto at = output.find(marker);
    if (at == std::string::npos) continue;
    const auto from = output.rfind('\n', at);
    ADD_FAILURE() << what << " reported a sanitizer error:\n"
                  << output.substr(from == std::string::npos ? 0 : from + 1);
    return;
  }
}

[[noreturn]] void exec_child(const std::vector<std::string>& args,
                             const std::vector<std::pair<std::string, std::string>>& env,
                             const std::string& log_path, int stdin_fd) {
  for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
  int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (log >= 0) {
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
  }
  if (stdin_fd >= 0) dup2(stdin_fd, STDIN_FILENO);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(HOOKGUARD_BINARY));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(HOOKGUARD_BINARY, argv.data());
  _exit(127);
}

}  // namespace

GatewayProcess::GatewayProcess(std::string dsn, std::string extra_yaml,
                               std::vector<std::pair<std::string, std::string>> env)
    : dsn_(std::move(dsn)),
      extra_yaml_(std::move(extra_yaml)),
      dir_(make_temp_dir()),
      env_(std::move(env)) {}

GatewayProcess::~GatewayProcess() {
  // Stop a child still running the way an operator would: that runs the shutdown path, and in a
  // sanitizer build the leak check at exit, in every test rather than only in those that stop().
  if (pid_ > 0) {
    const int code = stop(kGracefulStopMs);
    if (code == -1) {
      std::fprintf(stderr, "[ gateway  ] no exit %d ms after SIGTERM: SIGKILL\n", kGracefulStopMs);
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    } else {
      // `serve` exits 0 on SIGTERM; anything else is a failed shutdown or a sanitizer's exit
      // code (its report may have gone to ASAN_OPTIONS=log_path rather than to the log).
      EXPECT_EQ(code, 0) << "hookguard serve exited " << code << " on SIGTERM\n" << log();
    }
  }
  expect_no_sanitizer_report(log(), "hookguard serve");
  std::string cmd = "rm -rf '" + dir_ + "'";
  if (dir_.rfind("/tmp/hookguard-e2e-", 0) == 0) (void)!system(cmd.c_str());
}

bool GatewayProcess::start(int timeout_ms) {
  // Each default section is left out when the test's own YAML sets that section.
  auto has = [&](const std::string& section) {
    return extra_yaml_.rfind(section + ":", 0) == 0 ||
           extra_yaml_.find("\n" + section + ":") != std::string::npos;
  };
  std::ofstream config(dir_ + "/gateway.yaml");
  if (!has("ingress")) config << "ingress: {address: 127.0.0.1, port: 0, threads: 2}\n";
  if (!has("admin")) config << "admin: {address: 127.0.0.1, port: 0}\n";
  if (!has("postgres")) config << "postgres: {dsn: \"" << dsn_ << "\"}\n";
  // Trigger ids restart at 1 in every test database: a key prefix named after the database
  // keeps their counters apart, and gateways of one test share it.
  if (!has("redis")) {
    config << "redis: {host: " << redis_host() << ", port: " << redis_port() << ", key_prefix: \""
           << dsn_.substr(dsn_.rfind('/') + 1) << ":\"}\n";
  }
  if (!has("audit")) config << "audit: {spool_dir: " << dir_ << "/spool, flush_interval_ms: 20}\n";
  // Tests run their upstreams on loopback, which the default deny list leaves open.
  if (!has("upstream")) config << "upstream: {timeout_ms: 5000}\n";
  config << extra_yaml_ << "\n";
  config.close();
  const std::string ready = dir_ + "/ready.json";
  unlink(ready.c_str());
  auto env = env_;
  env.emplace_back("HOOKGUARD_MASTER_KEY", kTestMasterKey);
  // The child must not pick up the developer's own overrides for what the test config sets.
  const std::vector<std::string> args = {"serve", "--config", dir_ + "/gateway.yaml",
                                         "--ready-file", ready};
  pid_ = fork();
  if (pid_ == 0) {
    unsetenv("HOOKGUARD_POSTGRES_DSN");
    unsetenv("HOOKGUARD_REDIS_HOST");
    unsetenv("HOOKGUARD_REDIS_PORT");
    exec_child(args, env, dir_ + "/gateway.log", -1);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    auto text = read_file(ready);
    if (!text.empty()) {
      auto j = nlohmann::json::parse(text, nullptr, false);
      if (!j.is_discarded()) {
        ingress_port_ = j.value("ingress_port", 0);
        admin_port_ = j.value("admin_port", 0);
        return ingress_port_ > 0;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

void GatewayProcess::signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int GatewayProcess::wait_exit(int timeout_ms) {
  if (pid_ <= 0) return -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

int GatewayProcess::stop(int timeout_ms) {
  signal(SIGTERM);
  return wait_exit(timeout_ms);
}

std::string GatewayProcess::ingress_url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(ingress_port_) + path;
}

std::string GatewayProcess::admin_url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(admin_port_) + path;
}

std::string GatewayProcess::log() const { return read_file(dir_ + "/gateway.log"); }

std::pair<int, std::string> run_hookguard(
    const std::vector<std::string>& args, const std::string& stdin_text,
    const std::vector<std::pair<std::string, std::string>>& env) {
  std::string dir = make_temp_dir();
  std::string in_path = dir + "/stdin", out_path = dir + "/out";
  {
    std::ofstream in(in_path, std::ios::binary);
    in << stdin_text;
  }
  pid_t pid = fork();
  if (pid == 0) {
    int in = open(in_path.c_str(), O_RDONLY);
    exec_child(args, env, out_path, in);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  auto out = read_file(out_path);
  expect_no_sanitizer_report(out, "hookguard " + (args.empty() ? std::string() : args.front()));
  std::string cmd = "rm -rf '" + dir + "'";
  (void)!system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

}  // namespace hookguard::testing
