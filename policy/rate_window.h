// Sliding-window rate-limit arithmetic: the reference model of the Redis script.
#pragma once

#include <cstdint>

namespace hookguard::policy {

/// Counts of the two fixed windows around `now_ms` (before this request is counted).
struct WindowCounts {
  std::int64_t current = 0;   // hits in the fixed window that contains now
  std::int64_t previous = 0;  // hits in the fixed window before it
};

/// The verdict for one request.
struct WindowVerdict {
  bool allowed = false;
  std::int64_t remaining = 0;            // requests left after this one (0 when limited)
  std::int64_t reset_seconds = 0;        // seconds until the current fixed window ends (ceil, >= 1)
  std::int64_t retry_after_seconds = 0;  // when limited: seconds until one request would pass
};

/// Sliding-window counter: estimate = previous * (1 - elapsed/window) + current. A request is
/// allowed when estimate + 1 <= limit, and then counts in `current`. Pure; same result for the
/// same inputs. Requires limit >= 1, window_ms >= 1000.
WindowVerdict evaluate_window(std::int64_t limit, std::int64_t window_ms, std::int64_t now_ms,
                              WindowCounts counts);

/// The start (ms) of the fixed window containing now_ms.
inline std::int64_t window_start_ms(std::int64_t now_ms, std::int64_t window_ms) {
  return now_ms - (now_ms % window_ms);
}

}  // namespace hookguard::policy
