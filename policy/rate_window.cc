#include "policy/rate_window.h"

#include <algorithm>

namespace hookguard::policy {
namespace {

// Exact integer arithmetic: the estimate is compared scaled by window_ms, so C++ and the Redis
// Lua script cannot disagree through floating-point rounding. 128 bits because counts come from
// outside and may be anything.
__extension__ typedef __int128 Wide;

// previous * (window - elapsed) + (current + 1) * window <= limit * window, i.e.
// estimate + 1 <= limit.
bool passes(Wide limit, Wide window, Wide elapsed, Wide previous, Wide current) {
  return previous * (window - elapsed) + (current + 1) * window <= limit * window;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

}  // namespace

WindowVerdict evaluate_window(std::int64_t limit, std::int64_t window_ms, std::int64_t now_ms,
                              WindowCounts counts) {
  // Preconditions hold after validation; clamping keeps nonsense input from dividing by zero.
  limit = std::max<std::int64_t>(limit, 1);
  window_ms = std::max<std::int64_t>(window_ms, 1000);
  const Wide previous = std::max<std::int64_t>(counts.previous, 0);
  const Wide current = std::max<std::int64_t>(counts.current, 0);
  const Wide w = window_ms;
  const Wide l = limit;

  const std::int64_t start = window_start_ms(now_ms, window_ms);
  const std::int64_t elapsed = now_ms - start;

  WindowVerdict verdict;
  verdict.reset_seconds = std::max<std::int64_t>(1, ceil_div(start + window_ms - now_ms, 1000));

  if (passes(l, w, elapsed, previous, current)) {
    verdict.allowed = true;
    const Wide slack = l * w - previous * (w - elapsed) - (current + 1) * w;
    verdict.remaining = static_cast<std::int64_t>(slack / w);
    return verdict;
  }

  // The estimate only falls as time passes (it is continuous at the window boundary, where
  // previous := current), so the first passing instant t* bounds every later one.
  Wide earliest = 0;  // absolute ms
  if (current + 1 <= l) {
    // previous > 0 here, or the request would have passed.
    const Wide room = (l - current - 1) * w;
    const Wide e_min = w - room / previous;
    earliest = static_cast<Wide>(start) + std::min(e_min, w);
  } else {
    const Wide room = (l - 1) * w;
    const Wide e_min = w - room / current;
    earliest = static_cast<Wide>(start) + w + e_min;
  }
  const Wide wait_ms = earliest - now_ms;
  verdict.allowed = false;
  verdict.remaining = 0;
  verdict.retry_after_seconds =
      std::max<std::int64_t>(1, static_cast<std::int64_t>((wait_ms + 999) / 1000));
  return verdict;
}

}  // namespace hookguard::policy
