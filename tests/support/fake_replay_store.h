// An in-memory ReplayStore for unit tests: real reserve/complete/release semantics, TTLs on a
// clock the test moves, scripted failures, and a record of every call.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "policy/ports.h"

namespace hookguard::testing {

/// Keys live in a map with expiry times on the test's own clock (`advance_ms`).
class FakeReplayStore final : public policy::ReplayStore {
 public:
  using Reply = policy::ReplayReply;

  struct Entry {
    std::string value;  // "pending:<token>" or "done"
    std::int64_t expires_ms = 0;
  };

  /// Makes every following call fail with a store error (until set back to false).
  void set_failing(bool failing) { failing_ = failing; }
  /// Moves the store's clock on; entries whose time is up disappear.
  void advance_ms(std::int64_t ms) { now_ms_ += ms; }

  Reply reserve(const std::string& key, const std::string& token,
                std::int64_t pending_ttl_ms) override {
    calls_.push_back("reserve " + key);
    Reply reply;
    if (failing_) {
      reply.error = "fake: store down";
      return reply;
    }
    expire();
    if (auto it = entries_.find(key); it != entries_.end()) {
      reply.kind = it->second.value == "done" ? Reply::Kind::kDone : Reply::Kind::kPending;
      reply.pending_ttl_ms = it->second.expires_ms - now_ms_;
      return reply;
    }
    entries_[key] = Entry{"pending:" + token, now_ms_ + pending_ttl_ms};
    reply.kind = Reply::Kind::kReserved;
    last_pending_ttl_ms_ = pending_ttl_ms;
    return reply;
  }

  Result<void> complete(const std::string& key, std::int64_t window_ms) override {
    calls_.push_back("complete " + key);
    if (failing_) return fail("replay_store_error", "fake: store down");
    entries_[key] = Entry{"done", now_ms_ + window_ms};
    return {};
  }

  Result<void> release(const std::string& key, const std::string& token) override {
    calls_.push_back("release " + key);
    if (failing_) return fail("replay_store_error", "fake: store down");
    expire();
    if (auto it = entries_.find(key);
        it != entries_.end() && it->second.value == "pending:" + token) {
      entries_.erase(it);
    }
    return {};
  }

  /// The stored entry of `key`, if it has not expired.
  const Entry* find(const std::string& key) {
    expire();
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &it->second;
  }
  /// Every call in order, as "<method> <key>".
  const std::vector<std::string>& calls() const { return calls_; }
  std::int64_t last_pending_ttl_ms() const { return last_pending_ttl_ms_; }

 private:
  void expire() {
    std::erase_if(entries_, [&](const auto& kv) { return kv.second.expires_ms <= now_ms_; });
  }

  bool failing_ = false;
  std::int64_t now_ms_ = 0;
  std::int64_t last_pending_ttl_ms_ = 0;
  std::map<std::string, Entry> entries_;
  std::vector<std::string> calls_;
};

}  // namespace hookguard::testing
