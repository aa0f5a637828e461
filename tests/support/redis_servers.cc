#include "tests/support/redis_servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <utility>

#include "tests/support/test_env.h"

namespace hookguard::testing {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

DirectRedis::DirectRedis(const std::string& host, int port) {
  ctx_ = redisConnectWithTimeout(host.c_str(), port, timeval{2, 0});
  if (ctx_ != nullptr && ctx_->err == 0) redisSetTimeout(ctx_, timeval{2, 0});
}

DirectRedis::DirectRedis() : DirectRedis(redis_host(), redis_port()) {}

DirectRedis::~DirectRedis() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

bool DirectRedis::ok() const { return ctx_ != nullptr && ctx_->err == 0; }

std::string DirectRedis::run(const std::vector<std::string>& args) {
  if (!ok()) return "ERR:not connected";
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lengths.data()));
  if (reply == nullptr) return "ERR:" + std::string(ctx_->errstr);
  std::string out;
  switch (reply->type) {
    case REDIS_REPLY_INTEGER:
      out = std::to_string(reply->integer);
      break;
    case REDIS_REPLY_NIL:
      out = "(nil)";
      break;
    case REDIS_REPLY_ERROR:
      out = "ERR:" + std::string(reply->str, reply->len);
      break;
    case REDIS_REPLY_ARRAY:
      for (size_t i = 0; i < reply->elements; ++i) {
        if (i > 0) out += '\n';
        out += std::string(reply->element[i]->str, reply->element[i]->len);
      }
      break;
    default:
      out = std::string(reply->str, reply->len);
  }
  freeReplyObject(reply);
  return out;
}

std::int64_t DirectRedis::time_ms() {
  const std::string t = run({"TIME"});
  const auto newline = t.find('\n');
  return std::stoll(t.substr(0, newline)) * 1000 + std::stoll(t.substr(newline + 1)) / 1000;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

ThrowawayRedis::ThrowawayRedis(std::string password)
    : port_(free_port()), password_(std::move(password)) {}

ThrowawayRedis::~ThrowawayRedis() { stop(); }

bool ThrowawayRedis::start() {
  const std::string port = std::to_string(port_);
  std::vector<std::string> args = {
      "redis-server", "--port", port,          "--bind", "127.0.0.1",  "--save", "",
      "--appendonly", "no",     "--daemonize", "no",     "--loglevel", "warning"};
  if (!password_.empty()) {
    args.push_back("--requirepass");
    args.push_back(password_);
  }
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(null_fd, STDERR_FILENO);
    ::execvp("redis-server", argv.data());
    ::_exit(127);
  }
  if (pid_ < 0) return false;
  const auto deadline = Clock::now() + milliseconds(3000);
  while (Clock::now() < deadline) {
    DirectRedis probe("127.0.0.1", port_);
    if (probe.ok()) {
      const std::string pong = probe.run({"PING"});
      if (pong == "PONG" || pong.starts_with("ERR:NOAUTH")) return true;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

void ThrowawayRedis::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void ThrowawayRedis::freeze() { ::kill(pid_, SIGSTOP); }
void ThrowawayRedis::thaw() { ::kill(pid_, SIGCONT); }

gateway::RedisOptions live_redis_options() {
  gateway::RedisOptions options;
  options.host = redis_host();
  options.port = redis_port();
  options.connect_timeout_ms = 2000;
  options.command_timeout_ms = 2000;
  return options;
}

gateway::RedisOptions local_redis_options(int port) {
  gateway::RedisOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  options.connect_timeout_ms = 300;
  options.command_timeout_ms = 300;
  options.breaker_open_ms = 400;
  return options;
}

}  // namespace hookguard::testing
