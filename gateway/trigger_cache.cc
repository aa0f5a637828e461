#include "gateway/trigger_cache.h"

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
                                                             const policy::SecretBox& box) {
  db::TriggerStore store(dsn);
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
    : dsn_(std::move(dsn)), box_(std::move(box)), cache_(cache), safety_refresh_(safety_refresh) {}

TriggerReloader::~TriggerReloader() { stop(); }

void TriggerReloader::start() {
  thread_ = std::thread([this] { run(); });
}

void TriggerReloader::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

namespace {

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
      bool pending = false;
      ChangeReceiver receiver(conn, pending);
      // LISTEN is issued lazily by libpqxx; force it before the reload so that a change made
      // between the reload and the LISTEN cannot be missed.
      conn.get_notifs();
      connected_.store(true);
      backoff = std::chrono::milliseconds(100);
      auto reload = [&] {
        auto snap = load_snapshot(dsn_, box_);
        if (!snap) {
          spdlog::warn("trigger reload failed: {}", snap.error().message);
          return false;
        }
        cache_.replace(std::move(*snap));
        cache_.count_reload();
        return true;
      };
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
