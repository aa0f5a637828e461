#include "gateway/runtime.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "db/audit_writer.h"
#include "db/migrator.h"
#include "gateway/forwarder.h"
#include "gateway/ingress.h"
#include "gateway/ingress_server.h"
#include "gateway/maintenance_loop.h"
#include "gateway/metrics.h"
#include "gateway/redis_rate_limit_store.h"
#include "gateway/redis_replay_store.h"
#include "gateway/trigger_cache.h"

namespace hookguard::gateway {

Result<policy::SecretBox> load_master_key(const SecretsConfig& secrets, const EnvLookup& env) {
  std::string key_b64;
  if (!secrets.master_key_env.empty()) {
    if (auto v = env(secrets.master_key_env)) key_b64 = *v;
  }
  if (key_b64.empty() && !secrets.master_key_file.empty()) {
    std::ifstream in(secrets.master_key_file);
    if (!in) {
      return fail("invalid_config",
                  "secrets.master_key_file: cannot read " + secrets.master_key_file);
    }
    std::getline(in, key_b64);
  }
  while (!key_b64.empty() &&
         (key_b64.back() == '\n' || key_b64.back() == '\r' || key_b64.back() == ' ')) {
    key_b64.pop_back();
  }
  if (key_b64.empty()) {
    return fail("invalid_config", "no master key: set " + secrets.master_key_env +
                                      " or secrets.master_key_file (make one with "
                                      "`hookguard gen-key`)");
  }
  auto box = policy::SecretBox::from_base64_key(key_b64);
  if (!box) {
    return fail("invalid_config",
                "master key: " + box.error().message + " (expected 32 bytes, base64)");
  }
  return box;
}

struct Runtime::Parts {
  Config config;
  std::unique_ptr<policy::SecretBox> box;
  TriggerCache cache;
  std::unique_ptr<TriggerReloader> reloader;
  std::unique_ptr<RedisRateLimitStore> rate_limits;
  std::unique_ptr<RedisReplayStore> replays;
  std::unique_ptr<Forwarder> forwarder;
  std::unique_ptr<db::AuditWriter> audit;
  std::unique_ptr<MaintenanceLoop> maintenance;
  Metrics metrics;
  std::atomic<bool> draining{false};
  std::unique_ptr<IngressServer> ingress_server;
};

Runtime::Runtime() : parts_(std::make_unique<Parts>()) {}

Runtime::~Runtime() { stop(std::chrono::milliseconds(0)); }

Result<std::unique_ptr<Runtime>> Runtime::start(const Config& config, const RuntimeOptions& options,
                                                const EnvLookup& env) {
  std::unique_ptr<Runtime> rt(new Runtime());
  auto& p = *rt->parts_;
  p.config = config;

  // Each step either succeeds or stops start-up with a message naming what failed.
  if (auto ok = validate_for_serve(config); !ok) return tl::unexpected(ok.error());

  auto box = load_master_key(config.secrets, env);
  if (!box) return tl::unexpected(box.error());
  p.box = std::make_unique<policy::SecretBox>(*box);

  if (options.migrate) {
    auto report = db::migrate(config.postgres.dsn);
    if (!report) return fail("startup_failed", "migrations: " + report.error().message);
    for (const auto& name : report->applied) spdlog::info("applied migration {}", name);
  }

  auto snapshot = load_snapshot(config.postgres.dsn, *p.box);
  if (!snapshot) return fail("startup_failed", "loading triggers: " + snapshot.error().message);
  spdlog::info("loaded {} trigger(s)", (*snapshot)->by_key.size());
  p.cache.replace(std::move(*snapshot));
  p.reloader = std::make_unique<TriggerReloader>(config.postgres.dsn, *p.box, p.cache,
                                                 options.trigger_refresh);
  p.reloader->start();

  RedisOptions redis;
  redis.host = config.redis.host;
  redis.port = config.redis.port;
  redis.connect_timeout_ms = config.redis.connect_timeout_ms;
  redis.command_timeout_ms = config.redis.command_timeout_ms;
  redis.breaker_open_ms = config.redis.breaker_open_ms;
  redis.key_prefix = config.redis.key_prefix;
  if (!config.redis.password_env.empty()) {
    if (auto pw = env(config.redis.password_env)) redis.password = *pw;
  }
  p.rate_limits = std::make_unique<RedisRateLimitStore>(redis);
  p.replays = std::make_unique<RedisReplayStore>(redis);

  ForwarderOptions fwd;
  fwd.threads = config.upstream.threads;
  fwd.connect_timeout_ms = config.upstream.connect_timeout_ms;
  fwd.max_connections = config.upstream.max_connections;
  fwd.max_response_bytes = config.upstream.max_response_bytes;
  fwd.deny_networks = config.upstream.deny_networks;
  // A trigger timeout set through apply or SQL must still end before Pistache answers 408.
  fwd.max_timeout_ms = config.upstream.timeout_ms;
  p.forwarder = std::make_unique<Forwarder>(fwd);
  p.forwarder->start();

  db::AuditWriterOptions audit;
  audit.dsn = config.postgres.dsn;
  audit.batch_size = static_cast<std::size_t>(config.audit.batch_size);
  audit.flush_interval_ms = config.audit.flush_interval_ms;
  audit.queue_capacity = static_cast<std::size_t>(config.audit.queue_capacity);
  audit.spool_dir = config.audit.spool_dir;
  audit.durable_wait_max_ms = kStrictAuditWaitMs;
  p.audit = std::make_unique<db::AuditWriter>(audit);
  p.audit->start();

  db::MaintenanceOptions upkeep;
  upkeep.dsn = config.postgres.dsn;
  if (config.audit.retention_days > 0) upkeep.retention_days = config.audit.retention_days;
  upkeep.rollup_retention_days = config.audit.rollup_retention_days;
  auto maintenance = db::Maintenance::create(upkeep);
  if (!maintenance) return fail("invalid_config", "audit: " + maintenance.error().message);
  p.maintenance = std::make_unique<MaintenanceLoop>(
      std::move(*maintenance), std::chrono::seconds(config.audit.maintenance_interval_seconds));
  p.maintenance->start();

  auto trusted = policy::CidrSet::parse(config.trusted_proxies);
  if (!trusted) return fail("invalid_config", "trusted_proxies" + trusted.error().message);

  IngressDeps deps;
  deps.cache = &p.cache;
  deps.rate_limits = p.rate_limits.get();
  deps.replays = p.replays.get();
  deps.forwarder = p.forwarder.get();
  auto* writer = p.audit.get();
  if (config.audit.durability == "strict") {
    deps.audit.write_then = [writer](db::AuditRow row, std::function<void()> then) {
      writer->enqueue(std::move(row), std::move(then));
    };
  } else {
    deps.audit.write = [writer](db::AuditRow row) { writer->enqueue(std::move(row)); };
  }
  deps.metrics = &p.metrics;
  deps.trusted_proxies = std::move(*trusted);
  deps.draining = &p.draining;
  auto ingress = std::make_shared<const Ingress>(std::move(deps));

  p.metrics.add_gauge("hookguard_audit_queue_depth", "Log rows waiting for PostgreSQL.", "gauge",
                      [writer] { return static_cast<double>(writer->queue_depth()); });
  p.metrics.add_gauge("hookguard_audit_rows_written_total", "Log rows committed.", "counter",
                      [writer] { return static_cast<double>(writer->counters().written.load()); });
  p.metrics.add_gauge("hookguard_audit_rows_spooled_total",
                      "Log rows that had to be written to the disk spool.", "counter",
                      [writer] { return static_cast<double>(writer->counters().spooled.load()); });
  p.metrics.add_gauge(
      "hookguard_audit_rows_quarantined_total", "Log rows PostgreSQL rejected.", "counter",
      [writer] { return static_cast<double>(writer->counters().quarantined.load()); });
  p.metrics.add_gauge("hookguard_audit_rows_dropped_total",
                      "Log rows lost because the spool was full or unwritable.", "counter",
                      [writer] { return static_cast<double>(writer->counters().dropped.load()); });
  p.metrics.add_gauge("hookguard_audit_commits_total",
                      "Log transactions committed (one per batch: a group commit).", "counter",
                      [writer] { return static_cast<double>(writer->counters().commits.load()); });
  p.metrics.add_gauge(
      "hookguard_audit_durable_waits_total",
      "Answers that waited for their log row (audit.durability: strict).", "counter",
      [writer] { return static_cast<double>(writer->counters().durable_waits.load()); });
  p.metrics.add_gauge(
      "hookguard_audit_durable_wait_seconds_total",
      "Total time answers waited for their log row; divide by the count for the mean.", "counter",
      [writer] { return static_cast<double>(writer->counters().durable_wait_us.load()) / 1e6; });
  p.metrics.add_gauge(
      "hookguard_audit_durable_rescues_total",
      "Rows spooled because their answer waited past the bound (the writer was stuck).", "counter",
      [writer] { return static_cast<double>(writer->counters().durable_rescued.load()); });
  auto* store = p.rate_limits.get();
  p.metrics.add_gauge("hookguard_redis_errors_total", "Rate-limit store errors.", "counter",
                      [store] { return static_cast<double>(store->errors()); });
  auto* replays = p.replays.get();
  p.metrics.add_gauge("hookguard_replay_store_errors_total",
                      "Replay store errors (each let a request through unchecked).", "counter",
                      [replays] { return static_cast<double>(replays->errors()); });
  p.metrics.add_gauge(
      "hookguard_redis_round_trips_total",
      "Pipelined Redis round trips of the rate-limit and replay checks; requests per round trip "
      "is the pipelining's batch size.",
      "counter", [store, replays] {
        return static_cast<double>(store->round_trips() + replays->round_trips());
      });
  auto* forwarder = p.forwarder.get();
  p.metrics.add_gauge("hookguard_upstream_in_flight", "Requests waiting for an upstream.", "gauge",
                      [forwarder] { return static_cast<double>(forwarder->in_flight()); });
  auto* cache = &p.cache;
  p.metrics.add_gauge("hookguard_trigger_reloads_total", "Trigger snapshot reloads.", "counter",
                      [cache] { return static_cast<double>(cache->reloads()); });

  p.ingress_server = std::make_unique<IngressServer>(config.ingress, ingress, &p.metrics);
  if (auto ok = p.ingress_server->start(); !ok) return tl::unexpected(ok.error());
  return rt;
}

std::uint16_t Runtime::ingress_port() const {
  return parts_->ingress_server ? parts_->ingress_server->port() : 0;
}

std::string Runtime::metrics_text() const { return parts_->metrics.render(); }

std::vector<std::pair<std::string, bool>> Runtime::readiness() const {
  const auto& p = *parts_;
  return {{"postgres", p.reloader && p.reloader->connected()},
          {"redis", p.rate_limits && p.rate_limits->ping()},
          {"draining", !p.draining.load()}};
}

void Runtime::begin_drain() { parts_->draining.store(true); }

void Runtime::stop(std::chrono::milliseconds deadline) {
  auto& p = *parts_;
  p.draining.store(true);
  const auto until = std::chrono::steady_clock::now() + deadline;
  // Requests waiting for Redis resume on the stores' pipeline threads and go on to the
  // forwarder: answer them all (bounded by the Redis timeouts) while the forwarder still runs.
  if (p.rate_limits) p.rate_limits->stop_async();
  if (p.replays) p.replays->stop_async();
  while (p.forwarder && p.forwarder->in_flight() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // The forwarder answers through the listener's transport: stop it (finishing what is in
  // flight) before the listener goes away, or a late send would touch a destroyed transport.
  if (p.forwarder) p.forwarder->stop();
  // In strict durability the audit writer sends answers too: drain it while the listener is
  // still there. Requests arriving after that are spooled and answered on their own thread.
  if (p.audit && p.config.audit.durability == "strict") p.audit->stop();
  if (p.ingress_server) p.ingress_server->stop();
  // With the listener gone every answered request has its row queued: commit or spool them
  // now, before the reloader and the maintenance loop, whose stop may first wait out a hung
  // PostgreSQL (bounded, but for seconds).
  if (p.audit) p.audit->stop();
  if (p.reloader) p.reloader->stop();
  if (p.maintenance) p.maintenance->stop();
  p.ingress_server.reset();
  p.forwarder.reset();
}

}  // namespace hookguard::gateway
