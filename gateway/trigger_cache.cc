#include "gateway/trigger_cache.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "db/trigger_store.h"

namespace hookguard::gateway {

policy::TriggerPtr TriggerCache::find(std::string_view key) const {
  auto snap = snapshot_.load();
  // Heterogeneous lookup needs C++20 transparent hashing; a key is at most 128 bytes, so the
  // temporary string is cheap and keeps the map simple.
  auto it = snap->by_key.find(std::string(key));
  return it == snap->by_key.end() ? nullptr : it->second;
}

Result<std::shared_ptr<const TriggerSnapshot>> load_snapshot(const std::string& dsn,
                                                             const policy::SecretBox& box,
                                                             db::PgSocketGuard* guard) {
  db::TriggerStore store(dsn, guard);
  auto rows = store.list_all();
  if (!rows) return tl::unexpected(rows.error());
  auto snap = std::make_shared<TriggerSnapshot>();
  for (const auto& row : *rows) {
    auto compiled = db::compile_stored(row, box);
    if (!compiled) {
      // One bad row (say, a secret sealed under another master key) must not take the others
      // down; it answers 404 like an unknown key until it is fixed.
      spdlog::error("trigger {} ({}): cannot load: {}", row.spec.id, row.spec.name,
                    compiled.error().message);
      ++snap->load_errors;
      continue;
    }
    auto key = compiled->spec.key;
    snap->by_key.emplace(std::move(key),
                         std::make_shared<const policy::CompiledTrigger>(std::move(*compiled)));
  }
  return std::shared_ptr<const TriggerSnapshot>(std::move(snap));
}

TriggerReloader::TriggerReloader(std::string dsn, policy::SecretBox box, TriggerCache& cache,
                                 std::chrono::milliseconds safety_refresh)
    : dsn_(db::dsn_with_defaults(dsn, "hookguard-triggers")),
      box_(std::move(box)),
      cache_(cache),
      safety_refresh_(safety_refresh) {}

TriggerReloader::~TriggerReloader() { stop(); }

void TriggerReloader::start() {
  std::promise<void> exited;
  exited_ = exited.get_future();
  thread_ = std::thread([this, exited = std::move(exited)]() mutable {
    pthread_setname_np(pthread_self(), "hg-triggers");
    run();
    exited.set_value();
  });
}

void TriggerReloader::stop() {
  stop_.store(true);
  if (!thread_.joinable()) return;
  const bool cut = socket_.wait_or_cut(kStopGrace, [this](std::chrono::milliseconds timeout) {
    return exited_.wait_for(timeout) == std::future_status::ready;
  });
  if (cut) {
    spdlog::warn(
        "trigger change listener: still waiting on PostgreSQL after {} ms; cut its "
        "connection to stop",
        kStopGrace.count());
  }
  thread_.join();
}

bool TriggerReloader::reload() {
  auto snap = load_snapshot(dsn_, box_, &socket_);
  if (!snap) {
    spdlog::warn("trigger reload failed: {}", snap.error().message);
    return false;
  }
  cache_.replace(std::move(*snap));
  cache_.count_reload();
  return true;
}

namespace {

// Ends a session without the UNLISTEN a notification receiver's destructor would send first:
// closing the session drops its LISTEN anyway, and that UNLISTEN waits on a hung server, tries
// to reconnect a broken connection, and on a connection that stop() cut leaks a PGresult inside
// libpqxx 6 (make_result() throws on the dead connection before it owns the result).
struct DisconnectFirst {
  pqxx::connection_base& conn;
  ~DisconnectFirst() { conn.disconnect(); }
};

class ChangeReceiver final : public pqxx::notification_receiver {
 public:
  ChangeReceiver(pqxx::connection_base& conn, bool& pending)
      : pqxx::notification_receiver(conn, "hookguard_trigger_changed"), pending_(pending) {}
  // libpqxx swallows exceptions thrown here, so this only sets a flag.
  void operator()(const std::string&, int) override { pending_ = true; }

 private:
  bool& pending_;
};

}  // namespace

void TriggerReloader::run() {
  using Clock = std::chrono::steady_clock;
  auto backoff = std::chrono::milliseconds(100);
  while (!stop_.load()) {
    try {
      pqxx::connection conn(dsn_);
      // Declared before the receiver so that it covers the receiver's LISTEN.
      const db::PgSocketGuard::Tracked tracked = socket_.track(conn);
      bool pending = false;
      ChangeReceiver receiver(conn, pending);
      const DisconnectFirst disconnect_first{conn};  // destroyed before the receiver
      // LISTEN is issued lazily by libpqxx; force it before the reload so that a change made
      // between the reload and the LISTEN cannot be missed.
      conn.get_notifs();
      connected_.store(true);
      backoff = std::chrono::milliseconds(100);
      // Notifications sent while we were disconnected are lost: always reload after connect.
      reload();
      auto next_refresh = Clock::now() + safety_refresh_;
      while (!stop_.load()) {
        conn.await_notification(0, 200000);
        if (!conn.is_open()) throw pqxx::broken_connection("connection lost");
        if (pending || Clock::now() >= next_refresh) {
          pending = false;
          reload();
          next_refresh = Clock::now() + safety_refresh_;
        }
      }
      return;
    } catch (const std::exception& e) {
      connected_.store(false);
      if (stop_.load()) return;  // a call cut by stop(), or one that failed while stopping
      spdlog::warn("trigger change listener: {}; reconnecting", e.what());
    }
    auto until = Clock::now() + backoff;
    while (!stop_.load() && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

}  // namespace hookguard::gateway
