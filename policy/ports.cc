#include "policy/ports.h"

#include <chrono>

namespace hookguard::policy {

std::int64_t SystemClock::now_unix_ms() const {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  return duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace hookguard::policy
