#include "gateway/maintenance_loop.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

namespace hookguard::gateway {

void MaintenanceLoop::start() {
  std::promise<void> exited;
  exited_ = exited.get_future();
  thread_ = std::thread([this, exited = std::move(exited)]() mutable {
    pthread_setname_np(pthread_self(), "hg-maintenance");
    run();
    exited.set_value();
  });
}

void MaintenanceLoop::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto report = maintenance_.run_once(std::chrono::system_clock::now(), &socket_);
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
}

void MaintenanceLoop::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (!thread_.joinable()) return;
  const bool cut = socket_.wait_or_cut(kStopGrace, [this](std::chrono::milliseconds timeout) {
    return exited_.wait_for(timeout) == std::future_status::ready;
  });
  if (cut) {
    spdlog::warn(
        "maintenance: a run was still waiting on PostgreSQL after {} ms; cut its "
        "connection to stop",
        kStopGrace.count());
  }
  thread_.join();
}

}  // namespace hookguard::gateway
