#include "gateway/redis_connection.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <iterator>
#include <utility>
#include <vector>

namespace hookguard::gateway {
namespace {

// Callers put the message into their own Error; the code only says where it came from.
constexpr const char* kCode = "redis_error";
constexpr std::size_t kMaxErrorText = 120;
constexpr std::size_t kMaxArgs = 8;

std::string sha1_hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::size_t{size} * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0x0f]);
  }
  return out;
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

timeval to_timeval(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = static_cast<suseconds_t>(ms % 1000) * 1000;
  return tv;
}

std::string clip(std::string_view text) {
  return std::string(text.substr(0, std::min(text.size(), kMaxErrorText)));
}

std::string_view reply_text(const redisReply& reply) { return {reply.str, reply.len}; }

}  // namespace

void RedisReplyDeleter::operator()(redisReply* reply) const { freeReplyObject(reply); }

std::string redis_error_text(const redisReply& reply) {
  return "redis: " + clip(reply_text(reply));
}

bool is_error_reply(const Result<RedisReplyPtr>& reply, std::string_view code) {
  return reply && (*reply)->type == REDIS_REPLY_ERROR && reply_text(**reply).starts_with(code);
}

bool is_server_state_error(const Result<RedisReplyPtr>& reply) {
  constexpr std::string_view kCodes[] = {"READONLY", "LOADING", "MASTERDOWN", "NOAUTH"};
  return std::any_of(std::begin(kCodes), std::end(kCodes),
                     [&](std::string_view code) { return is_error_reply(reply, code); });
}

RedisScript::RedisScript(std::string_view script_text) : text(script_text), sha(sha1_hex(text)) {}

RedisConnection::~RedisConnection() { close(); }

RedisConnection::RedisConnection(RedisConnection&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), generation_(other.generation_) {}

RedisConnection& RedisConnection::operator=(RedisConnection&& other) noexcept {
  if (this != &other) {
    close();
    ctx_ = std::exchange(other.ctx_, nullptr);
    generation_ = other.generation_;
  }
  return *this;
}

void RedisConnection::close() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

Result<RedisReplyPtr> RedisConnection::command(std::initializer_list<std::string_view> args) {
  return command(std::span<const std::string_view>(args.begin(), args.size()));
}

Result<RedisReplyPtr> RedisConnection::command(std::span<const std::string_view> args) {
  if (ctx_ == nullptr) return fail(kCode, "redis: not connected");
  if (args.size() > kMaxArgs) return fail(kCode, "redis: too many arguments");
  std::array<const char*, kMaxArgs> argv{};
  std::array<std::size_t, kMaxArgs> lengths{};
  for (std::size_t i = 0; i < args.size(); ++i) {
    argv[i] = args[i].data();
    lengths[i] = args[i].size();
  }
  auto* raw = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lengths.data()));
  if (raw == nullptr) return fail(kCode, "redis io: " + clip(ctx_->errstr));
  return RedisReplyPtr(raw);
}

Result<RedisReplyPtr> RedisConnection::eval(const RedisScript& script, std::string_view key,
                                            std::initializer_list<std::string_view> args) {
  constexpr std::size_t kFixed = 4;  // EVALSHA <sha> 1 <key>
  if (args.size() > kMaxArgs - kFixed) return fail(kCode, "redis: too many arguments");
  std::array<std::string_view, kMaxArgs> argv{"EVALSHA", script.sha, "1", key};
  std::copy(args.begin(), args.end(), argv.begin() + kFixed);
  const auto used = std::span<const std::string_view>(argv.data(), kFixed + args.size());
  auto reply = command(used);
  if (is_error_reply(reply, "NOSCRIPT")) {
    argv[0] = "EVAL";
    argv[1] = script.text;
    reply = command(used);
  }
  return reply;
}

Result<void> RedisConnection::append(std::span<const std::string_view> args) {
  if (ctx_ == nullptr) return fail(kCode, "redis: not connected");
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string_view arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  // Only formats into the output buffer: REDIS_ERR here means out of memory, not I/O.
  if (redisAppendCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lengths.data()) !=
      REDIS_OK) {
    return fail(kCode, "redis io: " + clip(ctx_->errstr));
  }
  return {};
}

Result<RedisReplyPtr> RedisConnection::read_reply() {
  if (ctx_ == nullptr) return fail(kCode, "redis: not connected");
  void* raw = nullptr;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
    return fail(kCode, "redis io: " + clip(ctx_->errstr));
  }
  return RedisReplyPtr(static_cast<redisReply*>(raw));
}

RedisEndpoint::RedisEndpoint(RedisOptions options) : options_(std::move(options)) {}

RedisEndpoint::Admission RedisEndpoint::admit() {
  const std::int64_t until = open_until_ms_.load(std::memory_order_acquire);
  if (until == 0) return Admission::kClosed;
  if (steady_ms() < until) return Admission::kRefused;
  bool expected = false;
  // Half-open: exactly one caller probes; the others keep failing fast until it answers.
  if (!probing_.compare_exchange_strong(expected, true)) return Admission::kRefused;
  return Admission::kProbe;
}

void RedisEndpoint::succeeded(Admission admission) {
  if (admission != Admission::kProbe) return;
  open_until_ms_.store(0, std::memory_order_release);
  probing_.store(false, std::memory_order_release);
}

void RedisEndpoint::failed(Admission admission) {
  generation_.fetch_add(1, std::memory_order_acq_rel);
  open_until_ms_.store(std::max<std::int64_t>(1, steady_ms() + options_.breaker_open_ms),
                       std::memory_order_release);
  if (admission == Admission::kProbe) probing_.store(false, std::memory_order_release);
}

Result<RedisConnection> RedisEndpoint::connect() const {
  const std::uint64_t generation = generation_.load(std::memory_order_acquire);
  redisContext* ctx = redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                              to_timeval(options_.connect_timeout_ms));
  if (ctx == nullptr) return fail(kCode, "redis connect: out of memory");
  RedisConnection connection(ctx, generation);  // freed on every early return
  if (ctx->err != 0) return fail(kCode, "redis connect: " + clip(ctx->errstr));
  // Without this a read blocks forever: the connect timeout does not cover commands.
  if (redisSetTimeout(ctx, to_timeval(options_.command_timeout_ms)) != REDIS_OK) {
    return fail(kCode, "redis connect: cannot set the command timeout");
  }
  if (!options_.password.empty()) {
    auto reply = connection.command({"AUTH", options_.password});
    if (!reply) return tl::unexpected(std::move(reply.error()));
    if ((*reply)->type == REDIS_REPLY_ERROR) {
      return fail(kCode, "redis auth: " + clip(reply_text(**reply)));
    }
  }
  return connection;
}

bool RedisEndpoint::is_current(const RedisConnection& connection) const {
  return connection.generation_ == generation_.load(std::memory_order_acquire);
}

}  // namespace hookguard::gateway
