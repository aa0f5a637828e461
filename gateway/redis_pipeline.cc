#include "gateway/redis_pipeline.h"

#include <hiredis/hiredis.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

namespace hookguard::gateway {
namespace {

constexpr const char* kCode = "redis_error";
using Clock = std::chrono::steady_clock;

}  // namespace

struct RedisPipeline::Impl {
  using Admission = RedisEndpoint::Admission;

  struct Command {
    const RedisScript* script = nullptr;
    std::string key;
    std::vector<std::string> args;
    Done done;
    Prepare prepare;
  };

  RedisEndpoint& endpoint;
  const std::size_t max_queued;
  std::atomic<std::uint64_t> batches{0};

  std::mutex mu;
  std::condition_variable wake;
  std::deque<Command> queue;  // guarded by mu
  bool started = false;       // guarded by mu: the thread was started
  bool stopping = false;      // guarded by mu: eval() refuses, the loop drains and exits
  bool idle = false;          // guarded by mu: the loop waits (or is about to) for wake
  std::thread thread;         // assigned under mu, joined under join_mu
  std::mutex join_mu;         // serialises concurrent stop() calls

  // Owned by the loop thread.
  RedisConnection connection;

  Impl(RedisEndpoint& e, std::size_t max) : endpoint(e), max_queued(max) {}

  static void finish(Done& done, Result<RedisReplyPtr> result) {
    // A throwing callback must not take the pipeline thread (and every later caller) down.
    try {
      done(std::move(result));
    } catch (...) {
    }
  }

  void run() {
    pthread_setname_np(pthread_self(), "hg-redis-pipe");
    std::vector<Command> batch;
    for (;;) {
      batch.clear();
      {
        std::unique_lock lock(mu);
        while (queue.empty() && !stopping) {
          idle = true;
          wake.wait(lock);
        }
        idle = false;
        if (queue.empty()) break;  // stopping, and everything queued was answered
        const auto end =
            queue.begin() + static_cast<std::ptrdiff_t>(std::min(queue.size(), kMaxBatch));
        batch.assign(std::make_move_iterator(queue.begin()), std::make_move_iterator(end));
        queue.erase(queue.begin(), end);
      }
      for (Command& c : batch) {
        if (!c.prepare) continue;
        try {
          c.prepare(c.args);
        } catch (...) {
        }
      }
      auto results = run_batch(batch);
      batches.fetch_add(1, std::memory_order_relaxed);
      // Outside the lock, so a callback can queue its next command without deadlocking.
      for (std::size_t i = 0; i < batch.size(); ++i) finish(batch[i].done, std::move(results[i]));
    }
    connection.close();
  }

  // One round trip for the whole batch: the answer of every command, in order.
  std::vector<Result<RedisReplyPtr>> run_batch(const std::vector<Command>& batch) {
    std::vector<Result<RedisReplyPtr>> out(batch.size());
    auto fail_from = [&](std::size_t first, const std::string& message) {
      for (std::size_t i = first; i < out.size(); ++i) out[i] = fail(kCode, message);
    };

    // Once per batch: when the breaker is half-open, the whole batch is the probe.
    const Admission admission = endpoint.admit();
    if (admission == Admission::kRefused) {
      fail_from(0, "redis: circuit open");
      return out;
    }
    if (connection.is_open() && !endpoint.is_current(connection)) connection.close();
    if (!connection.is_open()) {
      auto connected = endpoint.connect();
      if (!connected) {
        endpoint.failed(admission);
        fail_from(0, connected.error().message);
        return out;
      }
      connection = std::move(*connected);
    }

    // The command timeout bounds each read; this bounds the whole batch, so that a Redis that
    // answers slowly but steadily cannot hold a full batch for kMaxBatch timeouts.
    const auto deadline =
        Clock::now() + std::chrono::milliseconds(endpoint.options().command_timeout_ms);
    std::vector<std::size_t> all(batch.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    bool sent = exchange(batch, all, false, deadline, out);
    if (sent) {
      std::vector<std::size_t> noscript;
      for (std::size_t i = 0; i < out.size(); ++i) {
        if (is_error_reply(out[i], "NOSCRIPT")) noscript.push_back(i);
      }
      if (!noscript.empty()) sent = exchange(batch, noscript, true, deadline, out);
    }
    // Every command keeps its own reply; a server-state error also retires the connection.
    if (!sent || std::any_of(out.begin(), out.end(), is_server_state_error)) {
      connection.close();
      endpoint.failed(admission);
      return out;
    }
    endpoint.succeeded(admission);
    return out;
  }

  // Appends `batch[i]` for every i in `which` (EVALSHA, or EVAL with the script text when
  // `with_text`), then reads their replies into out[i], in order. False after a transport
  // failure, which is then the answer of every command of `which` still without a reply (those
  // answered before it keep their reply: they ran). Past `deadline` the replies still missing
  // fail like a timeout.
  bool exchange(const std::vector<Command>& batch, const std::vector<std::size_t>& which,
                bool with_text, Clock::time_point deadline,
                std::vector<Result<RedisReplyPtr>>& out) {
    auto fail_rest = [&](std::size_t position, const Error& error) {
      for (std::size_t p = position; p < which.size(); ++p) {
        out[which[p]] = fail(kCode, error.message);
      }
      return false;
    };
    std::vector<std::string_view> argv;
    for (const std::size_t i : which) {
      const Command& c = batch[i];
      argv.assign({with_text ? "EVAL" : "EVALSHA",
                   with_text ? std::string_view(c.script->text) : std::string_view(c.script->sha),
                   "1", c.key});
      argv.insert(argv.end(), c.args.begin(), c.args.end());
      if (auto appended = connection.append(argv); !appended) return fail_rest(0, appended.error());
    }
    for (std::size_t p = 0; p < which.size(); ++p) {
      auto reply = connection.read_reply();
      if (!reply) return fail_rest(p, reply.error());
      out[which[p]] = std::move(reply);
      if (p + 1 < which.size() && Clock::now() > deadline) {
        return fail_rest(p + 1,
                         Error{kCode, "redis io: batch not answered within the timeout", {}});
      }
    }
    return true;
  }
};

RedisPipeline::RedisPipeline(RedisEndpoint& endpoint, std::size_t max_queued)
    : impl_(std::make_unique<Impl>(endpoint, max_queued)) {}

RedisPipeline::~RedisPipeline() { stop(); }

void RedisPipeline::eval(const RedisScript& script, std::string key, std::vector<std::string> args,
                         Done done, Prepare prepare) {
  Impl& impl = *impl_;
  const char* refused = nullptr;
  bool notify = false;
  {
    std::lock_guard lock(impl.mu);
    if (impl.stopping) {
      refused = "redis: pipeline stopped";
    } else if (impl.queue.size() >= impl.max_queued) {
      refused = "redis: pipeline queue full";
    } else {
      impl.queue.push_back(Impl::Command{&script, std::move(key), std::move(args), std::move(done),
                                         std::move(prepare)});
      if (!impl.started) {
        try {
          impl.thread = std::thread([&impl] { impl.run(); });
          impl.started = true;
        } catch (const std::system_error&) {
          done = std::move(impl.queue.back().done);
          impl.queue.pop_back();
          refused = "redis: cannot start the pipeline thread";
        }
      } else if (impl.idle) {
        // Only a sleeping loop needs the (system call) wake-up; a busy one takes the queue next.
        impl.idle = false;
        notify = true;
      }
    }
  }
  if (notify) impl.wake.notify_one();
  if (refused != nullptr) Impl::finish(done, fail(kCode, refused));
}

void RedisPipeline::stop() {
  Impl& impl = *impl_;
  bool on_loop = false;
  {
    std::lock_guard lock(impl.mu);
    impl.stopping = true;
    on_loop = impl.started && impl.thread.get_id() == std::this_thread::get_id();
  }
  impl.wake.notify_one();
  // From a callback: the loop cannot join itself; it exits once drained and the destructor,
  // on another thread, joins it.
  if (on_loop) return;
  std::lock_guard join_lock(impl.join_mu);
  if (impl.thread.joinable()) impl.thread.join();
}

std::uint64_t RedisPipeline::batches() const {
  return impl_->batches.load(std::memory_order_relaxed);
}

}  // namespace hookguard::gateway
