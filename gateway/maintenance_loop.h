// Runs db::Maintenance periodically on its own thread for `hookguard serve`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "db/maintenance.h"
#include "db/pg_socket_guard.h"

namespace hookguard::gateway {

/// Calls Maintenance::run_once at start and then every `interval`; errors are logged, never
/// fatal (PostgreSQL being down is normal during an outage). Safe on every instance: the SQL
/// functions take advisory locks.
class MaintenanceLoop {
 public:
  /// How long stop() lets a run finish before it cuts the run's connection.
  static constexpr std::chrono::milliseconds kStopGrace{2000};

  MaintenanceLoop(db::Maintenance maintenance, std::chrono::seconds interval)
      : maintenance_(std::move(maintenance)), interval_(interval) {}
  ~MaintenanceLoop() { stop(); }
  MaintenanceLoop(const MaintenanceLoop&) = delete;
  MaintenanceLoop& operator=(const MaintenanceLoop&) = delete;

  void start();
  /// Returns at once between runs. A run still going after kStopGrace (PostgreSQL hung, or a
  /// long catch-up) has its connection cut: its current step is rolled back and redone by the
  /// next run, on this instance or another. Idempotent.
  void stop();

 private:
  void run();

  db::Maintenance maintenance_;
  std::chrono::seconds interval_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  db::PgSocketGuard socket_;
  std::future<void> exited_;  // ready once the thread has left run()
  std::thread thread_;
};

}  // namespace hookguard::gateway
