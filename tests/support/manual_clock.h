// A Clock whose time the test sets by hand: no sleeps, no wall clock.
#pragma once

#include <cstdint>

#include "policy/ports.h"

namespace hookguard::testing {

/// Time stands still until the test moves it.
class ManualClock final : public policy::Clock {
 public:
  explicit ManualClock(std::int64_t now_unix_ms = 1'700'000'000'000) : now_ms_(now_unix_ms) {}

  std::int64_t now_unix_ms() const override { return now_ms_; }
  void set_unix_ms(std::int64_t now_unix_ms) { now_ms_ = now_unix_ms; }
  void advance_ms(std::int64_t delta_ms) { now_ms_ += delta_ms; }
  void advance_seconds(std::int64_t seconds) { now_ms_ += seconds * 1000; }

 private:
  std::int64_t now_ms_;
};

}  // namespace hookguard::testing
