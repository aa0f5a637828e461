#include "gateway/maintenance_loop.h"

#include <spdlog/spdlog.h>

namespace hookguard::gateway {

void MaintenanceLoop::start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      auto report = maintenance_.run_once(std::chrono::system_clock::now());
      if (!report) {
        spdlog::warn("maintenance: {}", report.error().message);
      } else {
        if (report->default_partition_rows > 0) {
          spdlog::warn("maintenance: {} row(s) in the default log partition",
                       report->default_partition_rows);
        }
        if (!report->rollup_caught_up) spdlog::warn("maintenance: rollups are behind the log");
      }
      lock.lock();
      wake_.wait_for(lock, interval_, [this] { return stopping_; });
    }
  });
}

void MaintenanceLoop::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace hookguard::gateway
