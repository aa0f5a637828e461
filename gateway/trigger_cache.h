// The in-memory trigger snapshot the hot path reads, and the thread that keeps it fresh.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "db/pg_socket_guard.h"
#include "policy/compiled_trigger.h"
#include "policy/result.h"
#include "policy/secret_box.h"

namespace hookguard::gateway {

/// An immutable map from webhook key to compiled trigger.
struct TriggerSnapshot {
  std::unordered_map<std::string, policy::TriggerPtr> by_key;
  std::size_t load_errors = 0;  // rows that failed to compile (logged, skipped)
};

/// Lock-free reads of the current snapshot; a reload swaps the whole snapshot.
class TriggerCache {
 public:
  TriggerCache() : snapshot_(std::make_shared<const TriggerSnapshot>()) {}

  /// The trigger for `key`, or null. Disabled triggers are returned too: the caller decides.
  policy::TriggerPtr find(std::string_view key) const;
  std::shared_ptr<const TriggerSnapshot> snapshot() const { return snapshot_.load(); }
  void replace(std::shared_ptr<const TriggerSnapshot> next) { snapshot_.store(std::move(next)); }
  std::uint64_t reloads() const { return reloads_.load(); }
  void count_reload() { reloads_.fetch_add(1); }

 private:
  std::atomic<std::shared_ptr<const TriggerSnapshot>> snapshot_;
  std::atomic<std::uint64_t> reloads_{0};
};

/// Loads every trigger from PostgreSQL and compiles it; rows that fail are counted and skipped.
/// With `guard`, the connection it opens is registered there (see db::PgSocketGuard).
Result<std::shared_ptr<const TriggerSnapshot>> load_snapshot(const std::string& dsn,
                                                             const policy::SecretBox& box,
                                                             db::PgSocketGuard* guard = nullptr);

/// Keeps a TriggerCache fresh: LISTEN hookguard_trigger_changed on its own connection, full
/// reload on every notification, after every reconnect, and on a periodic safety refresh.
class TriggerReloader {
 public:
  /// How long stop() waits for the thread before it cuts the PostgreSQL call holding it.
  static constexpr std::chrono::milliseconds kStopGrace{2000};

  /// `dsn` gets db::dsn_with_defaults (connect_timeout, keepalives) for every connection.
  TriggerReloader(std::string dsn, policy::SecretBox box, TriggerCache& cache,
                  std::chrono::milliseconds safety_refresh = std::chrono::seconds(30));
  ~TriggerReloader();
  TriggerReloader(const TriggerReloader&) = delete;
  TriggerReloader& operator=(const TriggerReloader&) = delete;

  void start();
  /// Joins the thread, normally within one poll (200 ms): it closes its session without a last
  /// round trip (no UNLISTEN). A thread still inside a PostgreSQL call after kStopGrace (the
  /// server hangs) has its connections cut, so that the call fails and the thread can leave.
  /// Idempotent.
  void stop();
  /// True while the LISTEN connection is up (for /readyz).
  bool connected() const { return connected_.load(); }

 private:
  void run();
  bool reload();

  std::string dsn_;
  policy::SecretBox box_;
  TriggerCache& cache_;
  std::chrono::milliseconds safety_refresh_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  db::PgSocketGuard socket_;  // the connections of the thread, for stop()
  std::future<void> exited_;  // ready once the thread has left run()
  std::thread thread_;
};

}  // namespace hookguard::gateway
