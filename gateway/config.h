// gateway.yaml: plain structs with defaults, parsed strictly, overridable from the environment.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "policy/result.h"

namespace hookguard::gateway {

/// Listener addresses are IP literals; IPv6 is stored bracketed ("::" becomes "[::]"), the form
/// Pistache::Address(host, port) accepts. Port 0 asks the kernel for a free port (tests).
struct IngressConfig {
  std::string address = "0.0.0.0";
  int port = 8080;
  int threads = 2;
  std::int64_t max_body_bytes = 10485760;
  int header_timeout_ms = 10000;
  int body_timeout_ms = 30000;
  int keepalive_timeout_ms = 60000;

  friend bool operator==(const IngressConfig&, const IngressConfig&) = default;
};

struct AdminConfig {
  std::string address = "127.0.0.1";
  int port = 8081;
  std::string token_env = "HOOKGUARD_ADMIN_TOKEN";

  friend bool operator==(const AdminConfig&, const AdminConfig&) = default;
};

struct PostgresConfig {
  std::string dsn = "postgresql://hookguard@127.0.0.1:5432/hookguard";
  int pool_size = 4;

  friend bool operator==(const PostgresConfig&, const PostgresConfig&) = default;
};

struct RedisConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password_env;
  int connect_timeout_ms = 200;
  int command_timeout_ms = 100;
  int breaker_open_ms = 1000;  // after a failure, calls fail fast this long before a reconnect
  std::string key_prefix;      // prepended to every rate-limit key (several deployments, one Redis)

  friend bool operator==(const RedisConfig&, const RedisConfig&) = default;
};

struct AuditConfig {
  int batch_size = 5000;
  int flush_interval_ms = 100;
  int queue_capacity = 100000;
  std::string spool_dir = "var/spool";
  int retention_days = 0;  // drop log partitions older than this; 0 keeps the log forever
  int rollup_retention_days = 400;
  int maintenance_interval_seconds = 30;  // partitions ahead, rollups, retention
  // "async": answer, then log. "strict": an answer is sent only once its row is committed in
  // PostgreSQL or fdatasync'd in the spool (README, "Audit durability").
  std::string durability = "async";

  friend bool operator==(const AuditConfig&, const AuditConfig&) = default;
};

/// In strict durability, the longest an answer waits for its log row before the row is
/// spooled instead (the audit writer's watchdog); validate_for_serve keeps it inside the
/// ingress deadline.
inline constexpr int kStrictAuditWaitMs = 1000;

struct SecretsConfig {
  std::string master_key_env = "HOOKGUARD_MASTER_KEY";
  std::string master_key_file;

  friend bool operator==(const SecretsConfig&, const SecretsConfig&) = default;
};

struct UpstreamConfig {
  int threads = 2;  // forwarder event loops (ForwarderOptions::threads)
  int connect_timeout_ms = 2000;
  int timeout_ms = 8000;
  int max_connections = 256;
  std::int64_t max_response_bytes = 1048576;
  std::vector<std::string> deny_networks{"169.254.0.0/16", "fe80::/10"};

  friend bool operator==(const UpstreamConfig&, const UpstreamConfig&) = default;
};

/// The whole gateway configuration (DESIGN §6).
struct Config {
  IngressConfig ingress;
  AdminConfig admin;
  PostgresConfig postgres;
  RedisConfig redis;
  std::vector<std::string> trusted_proxies;
  AuditConfig audit;
  SecretsConfig secrets;
  UpstreamConfig upstream;

  friend bool operator==(const Config&, const Config&) = default;
};

/// Reads an environment variable; injectable for tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment.
EnvLookup process_env();

/// Parses YAML text: unknown keys, duplicate keys, wrong types and out-of-range values are errors
/// naming the key path ("ingress.port: must be 0-65535, got 70000"); an empty document gives the
/// defaults. Then applies HOOKGUARD_<SECTION>_<KEY> overrides from `env` (HOOKGUARD_TRUSTED_PROXIES
/// for the top-level list; lists as comma-separated text, "" = empty list), validated the same
/// way, errors naming the variable. Error code "invalid_config"; `Error::field` holds the path.
Result<Config> parse_config(const std::string& yaml_text, const EnvLookup& env);

/// Reads and parses a file (at most 1 MiB); a missing file is an error naming the path (code
/// "config_unreadable"), and errors inside the file are prefixed with the path.
Result<Config> load_config(const std::string& path, const EnvLookup& env);

/// Cross-field rules that `serve` enforces: upstream (and Redis + upstream) timeouts below
/// min(header, body) timeout, connect timeout within the upstream timeout, distinct listener
/// ports, audit batch within the queue, a master key source; with audit.durability strict, the
/// request budget plus kStrictAuditWaitMs below that minimum too.
Result<void> validate_for_serve(const Config& config);

}  // namespace hookguard::gateway
