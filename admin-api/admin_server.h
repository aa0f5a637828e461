// The admin listener: operational endpoints (/healthz, /readyz, /metrics) and the REST API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "admin-api/trigger_rules.h"
#include "policy/result.h"
#include "policy/secret_box.h"

namespace hookguard::admin {

/// One dependency's readiness, for /readyz.
struct ReadinessCheck {
  std::string name;  // "postgres", "redis", "draining"
  bool ok = false;
};

/// What the admin listener reads from the rest of the process (wired in main).
struct AdminDeps {
  std::function<std::string()> metrics_text;
  std::function<std::vector<ReadinessCheck>()> readiness;
};

/// Configuration of the admin listener, filled from gateway.yaml and the environment by main.
struct AdminOptions {
  std::string address = "127.0.0.1";
  int port = 8081;
  std::string token;  // the bearer token; empty: every /api/v1 call answers 401
  std::string dsn;    // PostgreSQL; empty: /api/v1 calls answer 500
  std::optional<policy::SecretBox> secret_box;  // seals trigger secrets; required with dsn
  DeploymentLimits limits;
  std::string actor = "token";                                  // admin_audit_log.actor
  std::int64_t default_previous_valid_ms = 24LL * 3600 * 1000;  // rotate grace period
  std::size_t max_body_bytes = 1024 * 1024;
};

/// Serves the admin port on one reactor thread: handlers block on PostgreSQL, and the admin
/// API needs no concurrency. Routes come from admin_routes() (routes.h).
class AdminServer {
 public:
  AdminServer(AdminOptions options, AdminDeps deps);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  Result<void> start();
  std::uint16_t port() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hookguard::admin
