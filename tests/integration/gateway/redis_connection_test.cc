// Integration tests of gateway/redis_connection.cc against the real Redis of deploy/local.
#include "gateway/redis_connection.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/test_env.h"

namespace hookguard::gateway {
namespace {

using Clock = std::chrono::steady_clock;

RedisOptions live_options() {
  RedisOptions options;
  options.host = testing::redis_host();
  options.port = testing::redis_port();
  options.connect_timeout_ms = options.command_timeout_ms = 2000;
  return options;
}

RedisConnection connect_live() {
  RedisEndpoint redis(live_options());
  auto connection = redis.connect();
  EXPECT_TRUE(connection) << connection.error().message;
  return connection ? std::move(*connection) : RedisConnection();
}

std::string text_of(const RedisReplyPtr& reply) { return std::string(reply->str, reply->len); }

// A loopback port that refuses connections for as long as this lives: bound, never listening.
class RefusingPort {
 public:
  RefusingPort() : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~RefusingPort() { close(fd_); }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;

  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

TEST(RedisConnection, SendsArgumentsVerbatim) {
  RedisConnection connection = connect_live();
  ASSERT_TRUE(connection.is_open());
  const std::string key =
      "hg:test:{" + testing::unique_prefix() + "}:a b\r\n" + std::string(1, '\0');
  const std::string value("x\0y\r\nSET z 1", 12);
  auto set = connection.command({"SET", key, value, "PX", "60000"});
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ((*set)->type, REDIS_REPLY_STATUS);
  auto get = connection.command({"GET", key});
  ASSERT_TRUE(get) << get.error().message;
  ASSERT_EQ((*get)->type, REDIS_REPLY_STRING);
  EXPECT_EQ(text_of(*get), value);
}

TEST(RedisConnection, AnErrorReplyIsAReplyAndTheConnectionStaysUsable) {
  RedisConnection connection = connect_live();
  auto reply = connection.command({"NO-SUCH-COMMAND"});
  ASSERT_TRUE(reply) << reply.error().message;
  ASSERT_EQ((*reply)->type, REDIS_REPLY_ERROR);
  EXPECT_EQ(redis_error_text(**reply).rfind("redis: ERR", 0), 0u) << redis_error_text(**reply);
  auto ping = connection.command({"PING"});
  ASSERT_TRUE(ping);
  EXPECT_EQ(text_of(*ping), "PONG");
}

TEST(RedisConnection, RefusesMoreThanEightArguments) {
  RedisConnection connection = connect_live();
  auto reply = connection.command({"MSET", "a", "1", "b", "2", "c", "3", "d", "4"});
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().message, "redis: too many arguments");
  const RedisScript script("return 1");
  EXPECT_FALSE(connection.eval(script, "k", {"1", "2", "3", "4", "5"}));
}

// A script the server has never seen answers NOSCRIPT to EVALSHA; eval() then sends the text,
// which also caches it, so later calls go by hash.
TEST(RedisConnection, EvalSendsAnUnknownScriptOnceThenGoesByItsHash) {
  RedisConnection connection = connect_live();
  const RedisScript script("-- " + testing::unique_prefix() + "\nreturn KEYS[1] .. ARGV[1]");
  auto exists = [&] {
    auto reply = connection.command({"SCRIPT", "EXISTS", script.sha});
    EXPECT_TRUE(reply && (*reply)->type == REDIS_REPLY_ARRAY && (*reply)->elements == 1);
    return reply && (*reply)->element[0]->integer == 1;
  };
  ASSERT_FALSE(exists());
  auto first = connection.eval(script, "key:", {"arg"});
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ((*first)->type, REDIS_REPLY_STRING) << redis_error_text(**first);
  EXPECT_EQ(text_of(*first), "key:arg");
  EXPECT_TRUE(exists());
  auto again = connection.eval(script, "other:", {"x"});
  ASSERT_TRUE(again);
  EXPECT_EQ(text_of(*again), "other:x");
}

// Appended commands go out together on the first read; replies come back one per read, in
// order, verbatim (binary arguments, more than command()'s eight, error replies in between).
TEST(RedisConnection, PipelinedCommandsAnswerInOrder) {
  RedisConnection connection = connect_live();
  ASSERT_TRUE(connection.is_open());
  const std::string key = "hg:test:{" + testing::unique_prefix() + "}:\r\n" + std::string(1, '\0');
  const std::string value("a\0b\r\n", 5);
  const std::string list = key + "l";
  const std::vector<std::vector<std::string_view>> commands = {
      {"SET", key, value, "PX", "60000"},
      {"NO-SUCH-COMMAND"},
      {"GET", key},
      {"RPUSH", list, "1", "2", "3", "4", "5", "6", "7", "8", "9"},
      {"DEL", list},
  };
  for (const auto& args : commands) ASSERT_TRUE(connection.append(args));
  auto set = connection.read_reply();
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(text_of(*set), "OK");
  auto error = connection.read_reply();
  ASSERT_TRUE(error) << error.error().message;
  EXPECT_EQ((*error)->type, REDIS_REPLY_ERROR);
  auto get = connection.read_reply();
  ASSERT_TRUE(get) << get.error().message;
  EXPECT_EQ(text_of(*get), value);
  auto pushed = connection.read_reply();
  ASSERT_TRUE(pushed) << pushed.error().message;
  EXPECT_EQ((*pushed)->integer, 9);
  auto deleted = connection.read_reply();
  ASSERT_TRUE(deleted) << deleted.error().message;
  EXPECT_EQ((*deleted)->integer, 1);
  // Back in step: a plain command still gets its own reply.
  auto ping = connection.command({"PING"});
  ASSERT_TRUE(ping);
  EXPECT_EQ(text_of(*ping), "PONG");
}

// A read waits command_timeout_ms at most, then fails as a transport error.
TEST(RedisConnection, ReadingAReplyThatNeverComesTimesOut) {
  RedisOptions options = live_options();
  options.command_timeout_ms = 150;
  RedisEndpoint redis(options);
  auto connection = redis.connect();
  ASSERT_TRUE(connection) << connection.error().message;
  const std::string empty_list = "hg:test:{" + testing::unique_prefix() + "}";
  const std::vector<std::string_view> block = {"BLPOP", empty_list, "0"};
  ASSERT_TRUE(connection->append(block));
  const auto start = Clock::now();
  auto reply = connection->read_reply();
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().message.rfind("redis io: ", 0), 0u) << reply.error().message;
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(150 + 500));
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(100));
}

TEST(RedisConnection, AppendAndReadOnAClosedConnectionFail) {
  RedisConnection connection;
  const std::vector<std::string_view> ping = {"PING"};
  EXPECT_EQ(connection.append(ping).error().message, "redis: not connected");
  EXPECT_EQ(connection.read_reply().error().message, "redis: not connected");
}

TEST(RedisEndpoint, ConnectToAClosedPortFailsWithTheReason) {
  const RefusingPort refusing;
  ASSERT_NE(refusing.port(), 0);
  RedisOptions options = live_options();
  options.host = "127.0.0.1";
  options.port = refusing.port();
  options.connect_timeout_ms = 500;
  RedisEndpoint redis(options);
  const auto start = Clock::now();
  auto connection = redis.connect();
  ASSERT_FALSE(connection);
  EXPECT_EQ(connection.error().message.rfind("redis connect: ", 0), 0u)
      << connection.error().message;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

// deploy/local's Redis has no password, so AUTH is refused, and with it the connection.
TEST(RedisEndpoint, ARefusedAuthIsAConnectError) {
  RedisOptions options = live_options();
  options.password = "not-the-password";
  RedisEndpoint redis(options);
  auto connection = redis.connect();
  ASSERT_FALSE(connection);
  EXPECT_EQ(connection.error().message.rfind("redis auth: ", 0), 0u) << connection.error().message;
}

TEST(RedisEndpoint, NewConnectionsAreCurrentUntilTheNextFailure) {
  RedisEndpoint redis(live_options());
  auto connection = redis.connect();
  ASSERT_TRUE(connection) << connection.error().message;
  EXPECT_TRUE(redis.is_current(*connection));
  redis.failed(RedisEndpoint::Admission::kClosed);
  EXPECT_FALSE(redis.is_current(*connection));
  auto fresh = redis.connect();
  ASSERT_TRUE(fresh) << fresh.error().message;
  EXPECT_TRUE(redis.is_current(*fresh));
}

}  // namespace
}  // namespace hookguard::gateway
