#include "policy/ports.h"

#include <chrono>

namespace hookguard::policy {

RateLimitReply hit_nothrow(RateLimitStore& store, const RateLimitQuery& query) {
  try {
    return store.hit(query);
  } catch (...) {
    RateLimitReply reply;
    reply.error = "store threw";
    return reply;
  }
}

void RateLimitStore::hit_async(RateLimitQuery query, std::function<void(RateLimitReply)> done) {
  done(hit_nothrow(*this, query));
}

ReplayReply reserve_nothrow(ReplayStore& store, const std::string& key, const std::string& token,
                            std::int64_t pending_ttl_ms) {
  try {
    return store.reserve(key, token, pending_ttl_ms);
  } catch (...) {
    ReplayReply reply;
    reply.error = "store threw";
    return reply;
  }
}

void ReplayStore::reserve_async(std::string key, std::string token, std::int64_t pending_ttl_ms,
                                std::function<void(ReplayReply)> done) {
  done(reserve_nothrow(*this, key, token, pending_ttl_ms));
}

std::int64_t SystemClock::now_unix_ms() const {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  return duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace hookguard::policy
