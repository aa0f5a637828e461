// hookguard: the command line. Parses arguments and wires the parts together; nothing else.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#ifdef HOOKGUARD_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "admin-api/admin_server.h"
#include "db/maintenance.h"
#include "db/migrator.h"
#include "gateway/apply_command.h"
#include "gateway/config.h"
#include "gateway/runtime.h"
#include "policy/cidr_set.h"
#include "policy/secret_box.h"
#include "policy/signature.h"
#include "policy/trigger_policy.h"

namespace {

// "hookguard 0.1.0", and the allocator when it is not the C library's.
std::string version_text() {
  std::string text = std::string("hookguard ") + HOOKGUARD_VERSION;
#ifdef HOOKGUARD_WITH_JEMALLOC
  const char* version = nullptr;
  std::size_t size = sizeof(version);
  if (mallctl("version", &version, &size, nullptr, 0) == 0 && version != nullptr) {
    text += std::string(" (jemalloc ") + version + ")";
  }
#endif
  return text;
}

using namespace hookguard;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

Result<gateway::Config> config_from(const std::string& path) {
  auto env = gateway::process_env();
  if (path.empty()) return gateway::parse_config("", env);
  return gateway::load_config(path, env);
}

int cmd_migrate(const std::string& config_path) {
  auto config = config_from(config_path);
  if (!config) {
    std::cerr << "hookguard migrate: " << config.error().message << "\n";
    return kExitUsage;
  }
  auto report = db::migrate(config->postgres.dsn);
  if (!report) {
    std::cerr << "hookguard migrate: " << report.error().message << "\n";
    return kExitRuntime;
  }
  for (const auto& name : report->applied) std::cout << "applied " << name << "\n";
  std::cout << report->applied.size() << " applied, " << report->already_applied.size()
            << " already applied\n";
  return 0;
}

int cmd_sign(const std::string& scheme, const std::string& algorithm, const std::string& secret,
             const std::string& header, std::int64_t timestamp, const std::string& id) {
  policy::HmacPolicy hmac;
  hmac.enabled = true;
  auto s = policy::parse_signature_scheme(scheme);
  if (!s) {
    std::cerr << "hookguard sign: --scheme: " << s.error().message << "\n";
    return kExitUsage;
  }
  auto a = policy::parse_hmac_algorithm(algorithm);
  if (!a) {
    std::cerr << "hookguard sign: --algorithm: " << a.error().message << "\n";
    return kExitUsage;
  }
  hmac.scheme = *s;
  hmac.algorithm = *a;
  hmac.header = header;
  std::string body((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (timestamp == 0) {
    timestamp = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  }
  auto headers = policy::sign_request(hmac, secret, body, timestamp, id);
  if (!headers) {
    std::cerr << "hookguard sign: " << headers.error().message << "\n";
    return kExitUsage;
  }
  for (const auto& [name, value] : headers->fields()) std::cout << name << ": " << value << "\n";
  return 0;
}

// The admin listener's settings: the token from admin.token_env, and the deployment limits
// every trigger written through the API must respect.
Result<admin::AdminOptions> admin_options_from(const gateway::Config& config) {
  admin::AdminOptions options;
  options.address = config.admin.address;
  options.port = config.admin.port;
  options.dsn = config.postgres.dsn;
  const auto env = gateway::process_env();
  options.token = env(config.admin.token_env).value_or("");
  if (options.token.empty()) {
    spdlog::warn("{} is not set: every /api/v1 call will answer 401", config.admin.token_env);
  } else if (options.token.size() < 16) {
    spdlog::warn("{} is shorter than 16 characters: use a long random token",
                 config.admin.token_env);
  }
  auto box = gateway::load_master_key(config.secrets, env);
  if (!box) return tl::unexpected(box.error());
  options.secret_box = std::move(*box);
  auto deny = policy::CidrSet::parse(config.upstream.deny_networks);
  if (!deny) return fail("invalid_config", "upstream.deny_networks" + deny.error().message);
  options.limits.deny_networks = std::move(*deny);
  options.limits.max_body_bytes = config.ingress.max_body_bytes;
  options.limits.upstream_timeout_below_ms =
      std::min(config.ingress.header_timeout_ms, config.ingress.body_timeout_ms);
  return options;
}

int cmd_serve(const std::string& config_path, bool no_migrate, const std::string& ready_file) {
  auto config = config_from(config_path);
  if (!config) {
    std::cerr << "hookguard serve: " << config.error().message << "\n";
    return kExitUsage;
  }
  // Block the shutdown signals before any thread starts, so every thread inherits the mask and
  // only sigwait() below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  gateway::RuntimeOptions options;
  options.migrate = !no_migrate;
  auto runtime = gateway::Runtime::start(*config, options, gateway::process_env());
  if (!runtime) {
    std::cerr << "hookguard serve: " << runtime.error().message << "\n";
    return runtime.error().code == "invalid_config" ? kExitUsage : kExitRuntime;
  }
  auto* rt = runtime->get();

  admin::AdminDeps deps;
  deps.metrics_text = [rt] { return rt->metrics_text(); };
  deps.readiness = [rt] {
    std::vector<admin::ReadinessCheck> out;
    for (const auto& [name, ok] : rt->readiness()) out.push_back({name, ok});
    return out;
  };
  auto admin_options = admin_options_from(*config);
  if (!admin_options) {
    std::cerr << "hookguard serve: " << admin_options.error().message << "\n";
    return kExitUsage;
  }
  admin::AdminServer admin_server(std::move(*admin_options), std::move(deps));
  if (auto ok = admin_server.start(); !ok) {
    std::cerr << "hookguard serve: " << ok.error().message << "\n";
    return kExitRuntime;
  }
  spdlog::info("ingress listening on {}:{}, admin on {}:{}", config->ingress.address,
               rt->ingress_port(), config->admin.address, admin_server.port());
  if (!ready_file.empty()) {
    std::ofstream out(ready_file + ".tmp");
    out << nlohmann::json{{"ingress_port", rt->ingress_port()},
                          {"admin_port", admin_server.port()},
                          {"pid", getpid()}}
               .dump()
        << "\n";
    out.close();
    std::rename((ready_file + ".tmp").c_str(), ready_file.c_str());
  }

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: draining", sig);
  rt->begin_drain();
  rt->stop(std::chrono::milliseconds(config->ingress.header_timeout_ms));
  admin_server.stop();
  runtime->reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  spdlog::set_default_logger(spdlog::stderr_color_mt("hookguard"));

  CLI::App app{"hookguard: a security-hardened inbound webhook gateway"};
  app.set_version_flag("--version", version_text());
  app.require_subcommand(1);

  std::string config_path;
  auto* serve = app.add_subcommand("serve", "Run the ingress and admin listeners");
  bool no_migrate = false;
  std::string ready_file;
  serve->add_option("-c,--config", config_path, "gateway.yaml")->check(CLI::ExistingFile);
  serve->add_flag("--no-migrate", no_migrate, "Do not apply pending migrations at start");
  serve->add_option("--ready-file", ready_file,
                    "Write {ingress_port, admin_port, pid} as JSON here once serving");

  auto* migrate = app.add_subcommand("migrate", "Apply pending database migrations");
  migrate->add_option("-c,--config", config_path, "gateway.yaml")->check(CLI::ExistingFile);

  gateway::ApplyOptions apply_options;
  std::string output = "text";
  auto* apply = app.add_subcommand("apply", "Sync triggers from a YAML file (policy as code)");
  apply->add_option("-f,--file", apply_options.file, "triggers.yaml")
      ->required()
      ->check(CLI::ExistingFile);
  apply->add_option("-c,--config", config_path, "gateway.yaml")->check(CLI::ExistingFile);
  apply->add_flag("--prune", apply_options.prune, "Delete triggers the file does not name");
  apply->add_flag("--dry-run", apply_options.dry_run, "Print the plan, change nothing");
  apply->add_option("-o,--output", output, "text or json")->check(CLI::IsMember({"text", "json"}));

  auto* export_cmd = app.add_subcommand("export", "Print every trigger as triggers YAML");
  export_cmd->add_option("-c,--config", config_path, "gateway.yaml")->check(CLI::ExistingFile);

  std::string scheme = "generic", algorithm = "sha256", secret, header, id;
  std::int64_t timestamp = 0;
  auto* sign = app.add_subcommand("sign", "Print the signature headers a sender would send");
  sign->add_option("--scheme", scheme,
                   "generic, github, stripe, slack, standard-webhooks, shopify");
  sign->add_option("--algorithm", algorithm, "sha256, sha512 or sha1");
  sign->add_option("--secret", secret, "The shared secret")->required();
  sign->add_option("--header", header, "Signature header name (generic scheme)");
  sign->add_option("--timestamp", timestamp, "Unix time to sign with (default: now)");
  sign->add_option("--id", id, "Delivery id (standard-webhooks)");

  std::string older_than;
  auto* retention = app.add_subcommand(
      "retention", "Drop whole log partitions older than a number of days (rollups are kept)");
  retention->add_option("--older-than", older_than, "e.g. 30d")->required();
  retention->add_option("-c,--config", config_path, "gateway.yaml")->check(CLI::ExistingFile);

  auto* gen_key = app.add_subcommand("gen-key", "Print a fresh base64 master key");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  if (*serve) return cmd_serve(config_path, no_migrate, ready_file);
  if (*migrate) return cmd_migrate(config_path);
  if (*sign) return cmd_sign(scheme, algorithm, secret, header, timestamp, id);
  if (*gen_key) {
    std::cout << policy::SecretBox::generate_key_base64() << "\n";
    return 0;
  }
  auto config = config_from(config_path);
  if (!config) {
    std::cerr << "hookguard: " << config.error().message << "\n";
    return kExitUsage;
  }
  if (*apply) {
    apply_options.json_output = output == "json";
    auto box = gateway::load_master_key(config->secrets, gateway::process_env());
    if (!box) {
      std::cerr << "hookguard apply: " << box.error().message << "\n";
      return kExitUsage;
    }
    return gateway::run_apply(apply_options, config->postgres.dsn, *box, std::cout, std::cerr);
  }
  if (*export_cmd) return gateway::run_export(config->postgres.dsn, std::cout, std::cerr);
  if (*retention) {
    auto days = db::parse_retention_days(older_than);
    if (!days) {
      std::cerr << "hookguard retention: --older-than: " << days.error().message << "\n";
      return kExitUsage;
    }
    auto dropped = db::drop_partitions_older_than(config->postgres.dsn, *days);
    if (!dropped) {
      std::cerr << "hookguard retention: " << dropped.error().message << "\n";
      return kExitRuntime;
    }
    std::cout << "dropped " << *dropped << " partition(s)\n";
    return 0;
  }
  return kExitUsage;
}
