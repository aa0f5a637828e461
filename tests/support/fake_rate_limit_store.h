// A scripted RateLimitStore for unit tests: answers from a queue and records every query.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "policy/ports.h"

namespace hookguard::testing {

/// Replies from a script (then a fallback reply) and keeps every query it was asked.
class FakeRateLimitStore final : public policy::RateLimitStore {
 public:
  using Reply = policy::RateLimitReply;

  /// An allowed reply with `remaining` requests left and `reset` seconds to the window's end.
  static Reply allowed(std::int64_t limit, std::int64_t remaining, std::int64_t reset) {
    Reply r;
    r.kind = Reply::Kind::kAllowed;
    r.limit = limit;
    r.remaining = remaining;
    r.reset_seconds = reset;
    return r;
  }
  /// A limited reply: try again after `retry_after` seconds.
  static Reply limited(std::int64_t limit, std::int64_t retry_after, std::int64_t reset = 0) {
    Reply r;
    r.kind = Reply::Kind::kLimited;
    r.limit = limit;
    r.remaining = 0;
    r.reset_seconds = reset;
    r.retry_after_seconds = retry_after;
    return r;
  }
  /// A store failure with an internal `error` text.
  static Reply store_error(std::string error) {
    Reply r;
    r.kind = Reply::Kind::kStoreError;
    r.error = std::move(error);
    return r;
  }

  /// Queues `reply` as the answer to the next unanswered hit.
  void push(Reply reply) { script_.push_back(std::move(reply)); }
  /// The answer once the script is used up (default: allowed, plenty left).
  void set_fallback(Reply reply) { fallback_ = std::move(reply); }

  Reply hit(const policy::RateLimitQuery& query) override {
    queries_.push_back(query);
    if (script_.empty()) return fallback_;
    Reply reply = std::move(script_.front());
    script_.pop_front();
    return reply;
  }

  const std::vector<policy::RateLimitQuery>& queries() const { return queries_; }
  std::size_t calls() const { return queries_.size(); }

 private:
  std::deque<Reply> script_;
  Reply fallback_ = allowed(100, 99, 60);
  std::vector<policy::RateLimitQuery> queries_;
};

}  // namespace hookguard::testing
