// Polling for a condition another thread or process makes true.
#pragma once

#include <chrono>
#include <functional>

namespace hookguard::testing {

/// Checks `done` every 20 ms until it holds (true) or `timeout` has passed (its last answer).
bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout);

}  // namespace hookguard::testing
