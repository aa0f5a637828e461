#include "policy/rate_window.h"

#include <gtest/gtest.h>

#include <random>

namespace hookguard::policy {
namespace {

// The brute-force reference: the estimate in exact rationals, scaled by window_ms.
bool reference_passes(std::int64_t limit, std::int64_t window_ms, std::int64_t now_ms,
                      WindowCounts counts) {
  const std::int64_t elapsed = now_ms % window_ms;
  return counts.previous * (window_ms - elapsed) + (counts.current + 1) * window_ms <=
         limit * window_ms;
}

// Steps time forward a whole second at a time, with no further hits, and rolls the windows
// exactly as Redis would (previous := current on the next window, both empty after that).
std::int64_t reference_retry_after(std::int64_t limit, std::int64_t window_ms, std::int64_t now_ms,
                                   WindowCounts counts) {
  const std::int64_t start = window_start_ms(now_ms, window_ms);
  for (std::int64_t s = 1;; ++s) {
    const std::int64_t t = now_ms + s * 1000;
    const std::int64_t t_start = window_start_ms(t, window_ms);
    WindowCounts at;
    if (t_start == start) {
      at = counts;
    } else if (t_start == start + window_ms) {
      at = {0, counts.current};
    }
    if (reference_passes(limit, window_ms, t, at)) return s;
  }
}

TEST(EvaluateWindow, AllowsUnderTheLimitAndCountsRemaining) {
  const auto v = evaluate_window(10, 60'000, 120'000, {0, 0});
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.remaining, 9);
  EXPECT_EQ(v.reset_seconds, 60);
  EXPECT_EQ(v.retry_after_seconds, 0);
}

TEST(EvaluateWindow, LastRequestOfTheLimitPassesWithNoneRemaining) {
  const auto v = evaluate_window(10, 60'000, 120'000, {9, 0});
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.remaining, 0);
  EXPECT_FALSE(evaluate_window(10, 60'000, 120'000, {10, 0}).allowed);
}

// Verifies the previous window's weight: half-way through, 10 previous hits count as 5.
TEST(EvaluateWindow, WeightsThePreviousWindowByTheTimeLeft) {
  EXPECT_TRUE(evaluate_window(10, 60'000, 150'000, {4, 10}).allowed);   // 5 + 4 + 1 = 10
  EXPECT_FALSE(evaluate_window(10, 60'000, 150'000, {5, 10}).allowed);  // 5 + 5 + 1 = 11
}

TEST(EvaluateWindow, ResetIsTheCeilingOfTheSecondsLeftAndAtLeastOne) {
  EXPECT_EQ(evaluate_window(10, 60'000, 120'001, {}).reset_seconds, 60);
  EXPECT_EQ(evaluate_window(10, 60'000, 179'001, {}).reset_seconds, 1);
  EXPECT_EQ(evaluate_window(10, 60'000, 179'999, {}).reset_seconds, 1);
}

TEST(EvaluateWindow, RetryAfterCrossesIntoTheNextWindow) {
  // Limit 1, one hit already in this window: the next window starts with previous = 1, which
  // weighs fully at its start and must decay to 0 before one more request fits: 2 windows.
  const auto v = evaluate_window(1, 60'000, 120'000, {1, 0});
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.remaining, 0);
  EXPECT_EQ(v.retry_after_seconds, 120);
  EXPECT_EQ(v.retry_after_seconds, reference_retry_after(1, 60'000, 120'000, {1, 0}));
}

TEST(EvaluateWindow, RetryAfterIsAtLeastOneSecond) {
  // Passes 1 ms from now; the answer is still a whole second.
  const std::int64_t now = 120'000 + 59'999;
  const auto v = evaluate_window(10, 60'000, now, {9, 60'000});
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.retry_after_seconds, 1);
}

TEST(EvaluateWindow, MatchesTheBruteForceReferenceAcrossManyInputs) {
  std::mt19937_64 rng(20240601);
  int limited = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::int64_t limit = 1 + static_cast<std::int64_t>(rng() % (i % 2 ? 5 : 200));
    const std::int64_t window_ms = 1000 * (1 + static_cast<std::int64_t>(rng() % 120));
    const std::int64_t now_ms = 1'700'000'000'000 + static_cast<std::int64_t>(rng() % 10'000'000);
    const WindowCounts counts{static_cast<std::int64_t>(rng() % (limit * 2 + 2)),
                              static_cast<std::int64_t>(rng() % (limit * 2 + 2))};
    const auto v = evaluate_window(limit, window_ms, now_ms, counts);
    const bool expected = reference_passes(limit, window_ms, now_ms, counts);
    ASSERT_EQ(v.allowed, expected) << limit << " " << window_ms << " " << now_ms;
    const std::int64_t start = window_start_ms(now_ms, window_ms);
    EXPECT_EQ(v.reset_seconds,
              std::max<std::int64_t>(1, (start + window_ms - now_ms + 999) / 1000));
    if (v.allowed) {
      // Remaining: how many more requests right now would still pass.
      std::int64_t more = 0;
      while (reference_passes(limit, window_ms, now_ms,
                              {counts.current + 1 + more, counts.previous})) {
        ++more;
      }
      ASSERT_EQ(v.remaining, more);
    } else {
      ++limited;
      ASSERT_EQ(v.remaining, 0);
      ASSERT_EQ(v.retry_after_seconds, reference_retry_after(limit, window_ms, now_ms, counts))
          << limit << " " << window_ms << " " << now_ms << " " << counts.current << " "
          << counts.previous;
    }
  }
  EXPECT_GT(limited, 1000);  // the sample exercises the limited branch, not just the easy one
}

TEST(EvaluateWindow, IsPure) {
  const auto a = evaluate_window(50, 10'000, 1'234'567, {20, 40});
  const auto b = evaluate_window(50, 10'000, 1'234'567, {20, 40});
  EXPECT_EQ(a.allowed, b.allowed);
  EXPECT_EQ(a.remaining, b.remaining);
  EXPECT_EQ(a.retry_after_seconds, b.retry_after_seconds);
}

TEST(EvaluateWindow, HugeCountsDoNotOverflow) {
  const auto v =
      evaluate_window(1'000'000, 86'400'000, 1'700'000'000'000, {INT64_MAX / 2, INT64_MAX / 2});
  EXPECT_FALSE(v.allowed);
  EXPECT_GE(v.retry_after_seconds, 1);
}

TEST(WindowStart, IsTheFloorToTheWindow) {
  EXPECT_EQ(window_start_ms(125'000, 60'000), 120'000);
  EXPECT_EQ(window_start_ms(120'000, 60'000), 120'000);
}

}  // namespace
}  // namespace hookguard::policy
