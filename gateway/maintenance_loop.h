// Runs db::Maintenance periodically on its own thread for `hookguard serve`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "db/maintenance.h"

namespace hookguard::gateway {

/// Calls Maintenance::run_once at start and then every `interval`; errors are logged, never
/// fatal (PostgreSQL being down is normal during an outage). Safe on every instance: the SQL
/// functions take advisory locks.
class MaintenanceLoop {
 public:
  MaintenanceLoop(db::Maintenance maintenance, std::chrono::seconds interval)
      : maintenance_(std::move(maintenance)), interval_(interval) {}
  ~MaintenanceLoop() { stop(); }
  MaintenanceLoop(const MaintenanceLoop&) = delete;
  MaintenanceLoop& operator=(const MaintenanceLoop&) = delete;

  void start();
  void stop();

 private:
  db::Maintenance maintenance_;
  std::chrono::seconds interval_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hookguard::gateway
