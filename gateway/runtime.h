// The running gateway: every long-lived part of `hookguard serve` except the admin listener.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gateway/config.h"
#include "policy/result.h"
#include "policy/secret_box.h"

namespace hookguard::gateway {

/// Reads the master key from the environment variable or key file named in `secrets`.
Result<policy::SecretBox> load_master_key(const SecretsConfig& secrets, const EnvLookup& env);

/// Start-up options beyond gateway.yaml.
struct RuntimeOptions {
  bool migrate = true;  // apply pending migrations before serving
  std::chrono::milliseconds trigger_refresh = std::chrono::seconds(30);
};

/// Owns the trigger cache and its reloader, the rate limiter, the forwarder, the audit writer
/// and the ingress listener. Started in order, stopped in reverse.
class Runtime {
 public:
  /// Runs the start-up steps in order; the first that fails stops start-up with its error.
  static Result<std::unique_ptr<Runtime>> start(const Config& config, const RuntimeOptions& options,
                                                const EnvLookup& env);
  ~Runtime();

  std::uint16_t ingress_port() const;
  /// Prometheus text of the gateway's metrics.
  std::string metrics_text() const;
  /// (name, ok) for postgres, redis, triggers and draining.
  std::vector<std::pair<std::string, bool>> readiness() const;
  /// New requests get 503 shutting_down; in-flight ones finish.
  void begin_drain();
  /// Waits up to `deadline` for in-flight requests, then stops every part and flushes the
  /// audit queue (to PostgreSQL or the spool).
  void stop(std::chrono::milliseconds deadline);

 private:
  Runtime();
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

}  // namespace hookguard::gateway
