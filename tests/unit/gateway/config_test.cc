#include "gateway/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "policy/cidr_set.h"

namespace hookguard::gateway {
namespace {

EnvLookup no_env() {
  return [](const std::string&) { return std::optional<std::string>(); };
}

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string error_of(const std::string& yaml, const EnvLookup& env = no_env()) {
  const auto config = parse_config(yaml, env);
  if (config) return "<ok>";
  return config.error().message;
}

// The CidrSet's own wording for a bad list, which the config prefixes with the key or variable.
std::string cidr_error(const std::vector<std::string>& entries) {
  const auto set = policy::CidrSet::parse(entries);
  EXPECT_FALSE(set.has_value());
  return set ? "<ok>" : set.error().message;
}

// A file under the test temp dir, removed again at the end of the test.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& text)
      // The pid keeps concurrent runs of the suite (several build trees) apart.
      : path_(::testing::TempDir() + std::to_string(::getpid()) + "_" + name) {
    std::ofstream(path_, std::ios::binary) << text;
  }
  ~TempFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Config, EmptyDocumentsGiveTheDefaults) {
  for (const std::string yaml : {"", "\n", "# only a comment\n", "---\n", "~\n", "null\n"}) {
    const auto config = parse_config(yaml, no_env());
    ASSERT_TRUE(config) << yaml << ": " << config.error().message;
    EXPECT_EQ(*config, Config{}) << yaml;
  }
}

TEST(Config, DefaultsMatchTheDesign) {
  const Config c;
  EXPECT_EQ(c.ingress.address, "0.0.0.0");
  EXPECT_EQ(c.ingress.port, 8080);
  EXPECT_EQ(c.ingress.threads, 2);
  EXPECT_EQ(c.ingress.max_body_bytes, 10485760);
  EXPECT_EQ(c.ingress.header_timeout_ms, 10000);
  EXPECT_EQ(c.ingress.body_timeout_ms, 30000);
  EXPECT_EQ(c.ingress.keepalive_timeout_ms, 60000);
  EXPECT_EQ(c.admin.address, "127.0.0.1");
  EXPECT_EQ(c.admin.port, 8081);
  EXPECT_EQ(c.admin.token_env, "HOOKGUARD_ADMIN_TOKEN");
  EXPECT_EQ(c.postgres.dsn, "postgresql://hookguard@127.0.0.1:5432/hookguard");
  EXPECT_EQ(c.postgres.pool_size, 4);
  EXPECT_EQ(c.redis.host, "127.0.0.1");
  EXPECT_EQ(c.redis.port, 6379);
  EXPECT_EQ(c.redis.password_env, "");
  EXPECT_EQ(c.redis.connect_timeout_ms, 200);
  EXPECT_EQ(c.redis.command_timeout_ms, 100);
  EXPECT_EQ(c.redis.breaker_open_ms, 1000);
  EXPECT_TRUE(c.trusted_proxies.empty());
  EXPECT_EQ(c.audit.batch_size, 5000);
  EXPECT_EQ(c.audit.flush_interval_ms, 100);
  EXPECT_EQ(c.audit.queue_capacity, 100000);
  EXPECT_EQ(c.audit.spool_dir, "var/spool");
  EXPECT_EQ(c.secrets.master_key_env, "HOOKGUARD_MASTER_KEY");
  EXPECT_EQ(c.secrets.master_key_file, "");
  EXPECT_EQ(c.upstream.threads, 2);
  EXPECT_EQ(c.upstream.connect_timeout_ms, 2000);
  EXPECT_EQ(c.upstream.timeout_ms, 8000);
  EXPECT_EQ(c.upstream.max_connections, 256);
  EXPECT_EQ(c.upstream.max_response_bytes, 1048576);
  EXPECT_EQ(c.upstream.deny_networks, (std::vector<std::string>{"169.254.0.0/16", "fe80::/10"}));
  EXPECT_TRUE(validate_for_serve(c));
}

TEST(Config, ParsesEveryKeyOfEverySection) {
  const auto config = parse_config(R"(
ingress:
  address: "::"
  port: 0
  threads: 4
  max_body_bytes: 2048
  header_timeout_ms: 5000
  body_timeout_ms: 6000
  keepalive_timeout_ms: 7000
admin:
  address: "[::1]"
  port: 9091
  token_env: MY_TOKEN
postgres:
  dsn: "postgresql://u@db:5432/x"
  pool_size: 8
redis:
  host: redis.internal
  port: 6380
  password_env: REDIS_PASSWORD
  connect_timeout_ms: 300
  command_timeout_ms: 150
  breaker_open_ms: 2500
trusted_proxies: [10.0.0.0/8, "2001:db8::/32"]
audit:
  batch_size: 10
  flush_interval_ms: 5
  queue_capacity: 50
  spool_dir: /var/lib/hookguard/spool
secrets:
  master_key_env: ""
  master_key_file: /etc/hookguard/master.key
upstream:
  threads: 3
  connect_timeout_ms: 1000
  timeout_ms: 4000
  max_connections: 32
  max_response_bytes: 65536
  deny_networks: []
)",
                                   no_env());
  ASSERT_TRUE(config) << config.error().message;
  const Config& c = *config;
  EXPECT_EQ(c.ingress.address, "[::]");
  EXPECT_EQ(c.ingress.port, 0);
  EXPECT_EQ(c.ingress.threads, 4);
  EXPECT_EQ(c.ingress.max_body_bytes, 2048);
  EXPECT_EQ(c.ingress.header_timeout_ms, 5000);
  EXPECT_EQ(c.ingress.body_timeout_ms, 6000);
  EXPECT_EQ(c.ingress.keepalive_timeout_ms, 7000);
  EXPECT_EQ(c.admin.address, "[::1]");
  EXPECT_EQ(c.admin.port, 9091);
  EXPECT_EQ(c.admin.token_env, "MY_TOKEN");
  EXPECT_EQ(c.postgres.dsn, "postgresql://u@db:5432/x");
  EXPECT_EQ(c.postgres.pool_size, 8);
  EXPECT_EQ(c.redis.host, "redis.internal");
  EXPECT_EQ(c.redis.port, 6380);
  EXPECT_EQ(c.redis.password_env, "REDIS_PASSWORD");
  EXPECT_EQ(c.redis.connect_timeout_ms, 300);
  EXPECT_EQ(c.redis.command_timeout_ms, 150);
  EXPECT_EQ(c.redis.breaker_open_ms, 2500);
  EXPECT_EQ(c.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "2001:db8::/32"}));
  EXPECT_EQ(c.audit.batch_size, 10);
  EXPECT_EQ(c.audit.flush_interval_ms, 5);
  EXPECT_EQ(c.audit.queue_capacity, 50);
  EXPECT_EQ(c.audit.spool_dir, "/var/lib/hookguard/spool");
  EXPECT_EQ(c.secrets.master_key_env, "");
  EXPECT_EQ(c.secrets.master_key_file, "/etc/hookguard/master.key");
  EXPECT_EQ(c.upstream.threads, 3);
  EXPECT_EQ(c.upstream.connect_timeout_ms, 1000);
  EXPECT_EQ(c.upstream.timeout_ms, 4000);
  EXPECT_EQ(c.upstream.max_connections, 32);
  EXPECT_EQ(c.upstream.max_response_bytes, 65536);
  EXPECT_TRUE(c.upstream.deny_networks.empty());
  EXPECT_TRUE(validate_for_serve(c)) << validate_for_serve(c).error().message;
}

TEST(Config, KeepsDefaultsOfKeysAndSectionsNotGiven) {
  const auto config = parse_config("ingress:\n  port: 9000\nadmin:\nupstream: {}\n", no_env());
  ASSERT_TRUE(config) << config.error().message;
  Config expected;
  expected.ingress.port = 9000;
  EXPECT_EQ(*config, expected);
}

TEST(Config, AcceptsIpLiteralsAndBracketsIpv6ForPistache) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"0.0.0.0", "0.0.0.0"}, {"127.0.0.1", "127.0.0.1"}, {"\"::\"", "[::]"},
      {"\"[::]\"", "[::]"},   {"\"::1\"", "[::1]"},       {"\"[2001:db8::1]\"", "[2001:db8::1]"},
  };
  for (const auto& [text, stored] : cases) {
    const auto config = parse_config("ingress:\n  address: " + text + "\n", no_env());
    ASSERT_TRUE(config) << text << ": " << config.error().message;
    EXPECT_EQ(config->ingress.address, stored) << text;
  }
}

TEST(Config, AcceptsBoundaryValuesOfEveryRange) {
  const auto config = parse_config(R"(
ingress: {port: 65535, threads: 64, max_body_bytes: 104857600, header_timeout_ms: 600000,
          body_timeout_ms: 100, keepalive_timeout_ms: 100}
admin: {port: 0}
postgres: {pool_size: 1}
redis: {port: 1, connect_timeout_ms: 100, command_timeout_ms: 600000}
audit: {batch_size: 100000, flush_interval_ms: 60000, queue_capacity: 10000000}
upstream: {connect_timeout_ms: 100, timeout_ms: 600000, max_connections: 65535,
           max_response_bytes: 1024}
)",
                                   no_env());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->audit.queue_capacity, 10000000);
  EXPECT_EQ(config->ingress.max_body_bytes, 104857600);
}

struct ErrorCase {
  std::string yaml;
  std::string message;
};

// Verifies the exact message for each kind of mistake, in each section.
TEST(Config, RejectsMistakesWithAMessageNamingTheKey) {
  const std::vector<ErrorCase> cases = {
      // unknown keys, at every level
      {"ingres:\n  port: 1\n", "ingres: unknown key"},
      {"ingress:\n  prot: 1\n", "ingress.prot: unknown key"},
      {"admin:\n  token: x\n", "admin.token: unknown key"},
      {"postgres:\n  dns: x\n", "postgres.dns: unknown key"},
      {"redis:\n  password: x\n", "redis.password: unknown key"},
      {"audit:\n  batch: 1\n", "audit.batch: unknown key"},
      {"secrets:\n  master_key: x\n", "secrets.master_key: unknown key"},
      {"upstream:\n  timeout: 1\n", "upstream.timeout: unknown key"},
      {"upstream:\n  deny_networks: []\n  extra: 1\n", "upstream.extra: unknown key"},
      {"trusted_proxies: []\nport: 1\n", "port: unknown key"},
      // the first mistake in document order is the one reported
      {"ingress:\n  threads: 0\n  prot: 1\n", "ingress.threads: must be 1-64, got 0"},
      // duplicates, which yaml-cpp would silently accept
      {"ingress:\n  port: 1\n  port: 2\n", "ingress.port: duplicate key"},
      {"ingress: {}\ningress: {}\n", "ingress: duplicate key"},
      {"trusted_proxies: []\ntrusted_proxies: []\n", "trusted_proxies: duplicate key"},
      // shapes
      {"- ingress\n", "config: expected a mapping, got a list"},
      {"hello\n", "config: expected a mapping, got \"hello\""},
      {"ingress: 5\n", "ingress: expected a mapping, got \"5\""},
      {"ingress: [1]\n", "ingress: expected a mapping, got a list"},
      {"? [a]\n: 1\n", "config: keys must be strings, got a list"},
      {"ingress:\n  ? {a: 1}\n  : 1\n", "ingress: keys must be strings, got a mapping"},
      {"ingress: {}\n---\nadmin: {}\n", "config: expected one YAML document, got 2"},
      // integer types
      {"ingress:\n  port: abc\n", "ingress.port: expected an integer, got \"abc\""},
      {"ingress:\n  port: \"\"\n", "ingress.port: expected an integer, got \"\""},
      {"ingress:\n  port:\n", "ingress.port: expected an integer, got null"},
      {"ingress:\n  port: [1]\n", "ingress.port: expected an integer, got a list"},
      {"ingress:\n  port: {a: 1}\n", "ingress.port: expected an integer, got a mapping"},
      {"ingress:\n  port: 80.5\n", "ingress.port: expected an integer, got \"80.5\""},
      {"ingress:\n  port: 0x50\n", "ingress.port: expected an integer, got \"0x50\""},
      {"ingress:\n  port: 1e3\n", "ingress.port: expected an integer, got \"1e3\""},
      {"ingress:\n  port: +80\n", "ingress.port: expected an integer, got \"+80\""},
      {"ingress:\n  port: \"-\"\n", "ingress.port: expected an integer, got \"-\""},
      {"ingress:\n  port: true\n", "ingress.port: expected an integer, got \"true\""},
      // integer ranges
      {"ingress:\n  port: 65536\n", "ingress.port: must be 0-65535, got 65536"},
      {"ingress:\n  port: -1\n", "ingress.port: must be 0-65535, got -1"},
      {"ingress:\n  port: 99999999999999999999\n",
       "ingress.port: must be 0-65535, got 99999999999999999999"},
      {"ingress:\n  threads: 0\n", "ingress.threads: must be 1-64, got 0"},
      {"ingress:\n  threads: 65\n", "ingress.threads: must be 1-64, got 65"},
      {"ingress:\n  max_body_bytes: 1023\n",
       "ingress.max_body_bytes: must be 1024-104857600, got 1023"},
      {"ingress:\n  max_body_bytes: 104857601\n",
       "ingress.max_body_bytes: must be 1024-104857600, got 104857601"},
      {"ingress:\n  header_timeout_ms: 99\n",
       "ingress.header_timeout_ms: must be 100-600000, got 99"},
      {"audit:\n  retention_days: -1\n", "audit.retention_days: must be 0-36500, got -1"},
      {"audit:\n  rollup_retention_days: 0\n",
       "audit.rollup_retention_days: must be 1-36500, got 0"},
      {"audit:\n  maintenance_interval_seconds: 3601\n",
       "audit.maintenance_interval_seconds: must be 1-3600, got 3601"},
      {"ingress:\n  body_timeout_ms: 600001\n",
       "ingress.body_timeout_ms: must be 100-600000, got 600001"},
      {"ingress:\n  keepalive_timeout_ms: 0\n",
       "ingress.keepalive_timeout_ms: must be 100-600000, got 0"},
      {"admin:\n  port: 70000\n", "admin.port: must be 0-65535, got 70000"},
      {"postgres:\n  pool_size: 0\n", "postgres.pool_size: must be 1-64, got 0"},
      {"postgres:\n  pool_size: 65\n", "postgres.pool_size: must be 1-64, got 65"},
      {"redis:\n  port: 0\n", "redis.port: must be 1-65535, got 0"},
      {"redis:\n  port: 65536\n", "redis.port: must be 1-65535, got 65536"},
      {"redis:\n  connect_timeout_ms: 99\n",
       "redis.connect_timeout_ms: must be 100-600000, got 99"},
      {"redis:\n  command_timeout_ms: 600001\n",
       "redis.command_timeout_ms: must be 100-600000, got 600001"},
      {"redis:\n  breaker_open_ms: 99\n", "redis.breaker_open_ms: must be 100-600000, got 99"},
      {"audit:\n  batch_size: 0\n", "audit.batch_size: must be 1-100000, got 0"},
      {"audit:\n  batch_size: 100001\n", "audit.batch_size: must be 1-100000, got 100001"},
      {"audit:\n  flush_interval_ms: 0\n", "audit.flush_interval_ms: must be 1-60000, got 0"},
      {"audit:\n  flush_interval_ms: 60001\n",
       "audit.flush_interval_ms: must be 1-60000, got 60001"},
      {"audit:\n  queue_capacity: 0\n", "audit.queue_capacity: must be 1-10000000, got 0"},
      {"audit:\n  queue_capacity: 10000001\n",
       "audit.queue_capacity: must be 1-10000000, got 10000001"},
      {"upstream:\n  threads: 0\n", "upstream.threads: must be 1-64, got 0"},
      {"upstream:\n  threads: 65\n", "upstream.threads: must be 1-64, got 65"},
      {"upstream:\n  connect_timeout_ms: 99\n",
       "upstream.connect_timeout_ms: must be 100-600000, got 99"},
      {"upstream:\n  timeout_ms: 600001\n", "upstream.timeout_ms: must be 100-600000, got 600001"},
      {"upstream:\n  max_connections: 0\n", "upstream.max_connections: must be 1-65535, got 0"},
      {"upstream:\n  max_connections: 65536\n",
       "upstream.max_connections: must be 1-65535, got 65536"},
      {"upstream:\n  max_response_bytes: 1023\n",
       "upstream.max_response_bytes: must be 1024-104857600, got 1023"},
      {"upstream:\n  max_response_bytes: 104857601\n",
       "upstream.max_response_bytes: must be 1024-104857600, got 104857601"},
      // strings
      {"postgres:\n  dsn: \"\"\n", "postgres.dsn: must not be empty"},
      {"postgres:\n  dsn:\n", "postgres.dsn: expected a string, got null"},
      {"postgres:\n  dsn: [a]\n", "postgres.dsn: expected a string, got a list"},
      {"postgres:\n  dsn: \"host=x\\npassword=secret\"\n",
       "postgres.dsn: must not contain control characters"},
      {"redis:\n  host: \"\"\n", "redis.host: must not be empty"},
      {"audit:\n  spool_dir: \"\"\n", "audit.spool_dir: must not be empty"},
      {"admin:\n  token_env: \"\"\n",
       "admin.token_env: expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got "
       "\"\""},
      {"admin:\n  token_env: 1TOKEN\n",
       "admin.token_env: expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got "
       "\"1TOKEN\""},
      {"redis:\n  password_env: REDIS-PASSWORD\n",
       "redis.password_env: expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got "
       "\"REDIS-PASSWORD\""},
      {"secrets:\n  master_key_env: \"MY KEY\"\n",
       "secrets.master_key_env: expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), "
       "got \"MY KEY\""},
      {"secrets:\n  master_key_file: {a: b}\n",
       "secrets.master_key_file: expected a string, got a mapping"},
      // listener addresses
      {"ingress:\n  address: localhost\n",
       "ingress.address: expected an IP address literal, got \"localhost\""},
      {"ingress:\n  address: \"0.0.0.0:8080\"\n",
       "ingress.address: expected an IP address literal, got \"0.0.0.0:8080\""},
      {"ingress:\n  address: \"[127.0.0.1]\"\n",
       "ingress.address: expected an IP address literal, got \"[127.0.0.1]\""},
      {"admin:\n  address: \"\"\n", "admin.address: expected an IP address literal, got \"\""},
      {"admin:\n  address: \"[::1\"\n",
       "admin.address: expected an IP address literal, got \"[::1\""},
      {"admin:\n  address: \"a\\u0007b\"\n", "admin.address: must not contain control characters"},
      // lists of CIDRs
      {"trusted_proxies: 10.0.0.0/8\n", "trusted_proxies: expected a list, got \"10.0.0.0/8\""},
      {"trusted_proxies: {a: b}\n", "trusted_proxies: expected a list, got a mapping"},
      {"trusted_proxies: [10.0.0.0/8, [a]]\n", "trusted_proxies[1]: expected a string, got a list"},
      {"trusted_proxies: [10.0.0.0/8, nope]\n",
       "trusted_proxies" + cidr_error({"10.0.0.0/8", "nope"})},
      {"trusted_proxies: [10.0.0.1/8]\n", "trusted_proxies" + cidr_error({"10.0.0.1/8"})},
      {"trusted_proxies: [0.0.0.0/0]\n",
       "trusted_proxies[0]: 0.0.0.0/0 would trust X-Forwarded-For from any client"},
      {"trusted_proxies: [10.0.0.0/8, \"::/0\"]\n",
       "trusted_proxies[1]: ::/0 would trust X-Forwarded-For from any client"},
      {"upstream:\n  deny_networks: [169.254.0.0/16, \"fe80::/129\"]\n",
       "upstream.deny_networks" + cidr_error({"169.254.0.0/16", "fe80::/129"})},
      {"upstream:\n  deny_networks: 10.0.0.0/8\n",
       "upstream.deny_networks: expected a list, got \"10.0.0.0/8\""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(error_of(c.yaml), c.message) << "yaml:\n" << c.yaml;
  }
}

TEST(Config, ErrorCarriesCodeAndFieldPath) {
  const auto config = parse_config("ingress:\n  port: 70000\n", no_env());
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code, "invalid_config");
  EXPECT_EQ(config.error().field, "ingress.port");

  const auto list = parse_config("trusted_proxies: [10.0.0.0/8, nope]\n", no_env());
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().field, "trusted_proxies[1]");
}

TEST(Config, RejectsMoreCidrsThanTheSetHolds) {
  std::string yaml = "trusted_proxies: [";
  for (std::size_t i = 0; i <= policy::CidrSet::kMaxEntries; ++i) {
    yaml += (i ? ", 10.0." : "10.0.") + std::to_string(i / 250) + "." + std::to_string(i % 250);
  }
  yaml += "]\n";
  const std::vector<std::string> too_many(policy::CidrSet::kMaxEntries + 1, "10.0.0.1");
  EXPECT_EQ(error_of(yaml), "trusted_proxies: " + cidr_error(too_many));
}

TEST(Config, EchoesHostileValuesEscapedAndBounded) {
  EXPECT_EQ(error_of("ingress:\n  port: \"a\\\"b\\\\c\"\n"),
            "ingress.port: expected an integer, got \"a\\\"b\\\\c\"");
  EXPECT_EQ(error_of("ingress:\n  port: " + std::string(100, 'x') + "\n"),
            "ingress.port: expected an integer, got \"" + std::string(64, 'x') + "...\"");
  EXPECT_EQ(error_of("ingress:\n  port: " + std::string(100, '9') + "\n"),
            "ingress.port: must be 0-65535, got " + std::string(64, '9') + "...");
}

TEST(Config, YamlSyntaxErrorsGiveTheLine) {
  const std::vector<ErrorCase> cases = {
      {"ingress:\n  port: [1, 2\n",
       "invalid YAML at line 3, column 1: end of sequence flow not found"},
      {"ingress:\n  port: 1\n bad: 2\n", "invalid YAML at line 3, column 2: end of map not found"},
      {"ingress: {port: 1\n", "invalid YAML at line 2, column 1: end of map flow not found"},
      {"a: *nothing\n", "invalid YAML at line 1, column 4: the referenced anchor is not defined"},
  };
  for (const auto& c : cases) {
    const auto config = parse_config(c.yaml, no_env());
    ASSERT_FALSE(config) << c.yaml;
    EXPECT_EQ(config.error().message, c.message) << "yaml:\n" << c.yaml;
    EXPECT_EQ(config.error().code, "invalid_config");
  }
}

// ---- environment overrides ----------------------------------------------------------------

struct EnvCase {
  std::string variable;
  std::string value;
  std::function<bool(const Config&)> applied;
};

// Verifies that every key has its HOOKGUARD_<SECTION>_<KEY> override.
TEST(ConfigEnv, EveryKeyCanBeOverridden) {
  const std::vector<EnvCase> cases = {
      {"HOOKGUARD_INGRESS_ADDRESS", "::", [](auto& c) { return c.ingress.address == "[::]"; }},
      {"HOOKGUARD_INGRESS_PORT", "0", [](auto& c) { return c.ingress.port == 0; }},
      {"HOOKGUARD_INGRESS_THREADS", "8", [](auto& c) { return c.ingress.threads == 8; }},
      {"HOOKGUARD_INGRESS_MAX_BODY_BYTES", "2048",
       [](auto& c) { return c.ingress.max_body_bytes == 2048; }},
      {"HOOKGUARD_INGRESS_HEADER_TIMEOUT_MS", "1234",
       [](auto& c) { return c.ingress.header_timeout_ms == 1234; }},
      {"HOOKGUARD_INGRESS_BODY_TIMEOUT_MS", "2345",
       [](auto& c) { return c.ingress.body_timeout_ms == 2345; }},
      {"HOOKGUARD_INGRESS_KEEPALIVE_TIMEOUT_MS", "3456",
       [](auto& c) { return c.ingress.keepalive_timeout_ms == 3456; }},
      {"HOOKGUARD_ADMIN_ADDRESS", "127.0.0.2",
       [](auto& c) { return c.admin.address == "127.0.0.2"; }},
      {"HOOKGUARD_ADMIN_PORT", "9999", [](auto& c) { return c.admin.port == 9999; }},
      {"HOOKGUARD_ADMIN_TOKEN_ENV", "OTHER_TOKEN",
       [](auto& c) { return c.admin.token_env == "OTHER_TOKEN"; }},
      {"HOOKGUARD_POSTGRES_DSN", "postgresql://x@y/z",
       [](auto& c) { return c.postgres.dsn == "postgresql://x@y/z"; }},
      {"HOOKGUARD_POSTGRES_POOL_SIZE", "2", [](auto& c) { return c.postgres.pool_size == 2; }},
      {"HOOKGUARD_REDIS_HOST", "10.1.2.3", [](auto& c) { return c.redis.host == "10.1.2.3"; }},
      {"HOOKGUARD_REDIS_PORT", "6380", [](auto& c) { return c.redis.port == 6380; }},
      {"HOOKGUARD_REDIS_PASSWORD_ENV", "REDIS_PW",
       [](auto& c) { return c.redis.password_env == "REDIS_PW"; }},
      {"HOOKGUARD_REDIS_CONNECT_TIMEOUT_MS", "500",
       [](auto& c) { return c.redis.connect_timeout_ms == 500; }},
      {"HOOKGUARD_REDIS_COMMAND_TIMEOUT_MS", "250",
       [](auto& c) { return c.redis.command_timeout_ms == 250; }},
      {"HOOKGUARD_REDIS_BREAKER_OPEN_MS", "300",
       [](auto& c) { return c.redis.breaker_open_ms == 300; }},
      {"HOOKGUARD_TRUSTED_PROXIES", " 10.0.0.0/8 ,192.168.0.0/16, 2001:db8::/32",
       [](auto& c) {
         return c.trusted_proxies ==
                std::vector<std::string>{"10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"};
       }},
      {"HOOKGUARD_AUDIT_BATCH_SIZE", "5", [](auto& c) { return c.audit.batch_size == 5; }},
      {"HOOKGUARD_AUDIT_FLUSH_INTERVAL_MS", "7",
       [](auto& c) { return c.audit.flush_interval_ms == 7; }},
      {"HOOKGUARD_AUDIT_QUEUE_CAPACITY", "99",
       [](auto& c) { return c.audit.queue_capacity == 99; }},
      {"HOOKGUARD_AUDIT_RETENTION_DAYS", "30",
       [](auto& c) { return c.audit.retention_days == 30; }},
      {"HOOKGUARD_AUDIT_ROLLUP_RETENTION_DAYS", "800",
       [](auto& c) { return c.audit.rollup_retention_days == 800; }},
      {"HOOKGUARD_AUDIT_MAINTENANCE_INTERVAL_SECONDS", "5",
       [](auto& c) { return c.audit.maintenance_interval_seconds == 5; }},
      {"HOOKGUARD_REDIS_KEY_PREFIX",
       "prod:", [](auto& c) { return c.redis.key_prefix == "prod:"; }},
      {"HOOKGUARD_AUDIT_SPOOL_DIR", "/tmp/spool",
       [](auto& c) { return c.audit.spool_dir == "/tmp/spool"; }},
      {"HOOKGUARD_SECRETS_MASTER_KEY_ENV", "",
       [](auto& c) { return c.secrets.master_key_env.empty(); }},
      {"HOOKGUARD_SECRETS_MASTER_KEY_FILE", "/k",
       [](auto& c) { return c.secrets.master_key_file == "/k"; }},
      {"HOOKGUARD_UPSTREAM_THREADS", "4", [](auto& c) { return c.upstream.threads == 4; }},
      {"HOOKGUARD_UPSTREAM_CONNECT_TIMEOUT_MS", "150",
       [](auto& c) { return c.upstream.connect_timeout_ms == 150; }},
      {"HOOKGUARD_UPSTREAM_TIMEOUT_MS", "160",
       [](auto& c) { return c.upstream.timeout_ms == 160; }},
      {"HOOKGUARD_UPSTREAM_MAX_CONNECTIONS", "12",
       [](auto& c) { return c.upstream.max_connections == 12; }},
      {"HOOKGUARD_UPSTREAM_MAX_RESPONSE_BYTES", "4096",
       [](auto& c) { return c.upstream.max_response_bytes == 4096; }},
      {"HOOKGUARD_UPSTREAM_DENY_NETWORKS", "",
       [](auto& c) { return c.upstream.deny_networks.empty(); }},
      {"HOOKGUARD_UPSTREAM_DENY_NETWORKS", "10.0.0.0/8",
       [](auto& c) { return c.upstream.deny_networks == std::vector<std::string>{"10.0.0.0/8"}; }},
  };
  for (const auto& c : cases) {
    const auto config = parse_config("", env_of({{c.variable, c.value}}));
    ASSERT_TRUE(config) << c.variable << ": " << config.error().message;
    EXPECT_TRUE(c.applied(*config)) << c.variable << "=" << c.value;
    // Only that one key moved.
    EXPECT_FALSE(c.applied(Config{})) << c.variable;
  }
}

TEST(ConfigEnv, OverridesTheFile) {
  const auto config = parse_config(
      "redis:\n  port: 6390\ntrusted_proxies: [10.0.0.0/8]\n",
      env_of({{"HOOKGUARD_REDIS_PORT", "6391"}, {"HOOKGUARD_TRUSTED_PROXIES", "172.16.0.0/12"}}));
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->redis.port, 6391);
  EXPECT_EQ(config->trusted_proxies, std::vector<std::string>{"172.16.0.0/12"});
}

TEST(ConfigEnv, IgnoresVariablesThatAreNotKeys) {
  // HOOKGUARD_ADMIN_TOKEN and HOOKGUARD_MASTER_KEY are the secrets themselves, not overrides.
  const auto config = parse_config("", env_of({{"HOOKGUARD_ADMIN_TOKEN", "not a port"},
                                               {"HOOKGUARD_MASTER_KEY", "x"},
                                               {"HOOKGUARD_INGRESS", "1"}}));
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(*config, Config{});
}

struct EnvErrorCase {
  std::string variable;
  std::string value;
  std::string message;
};

TEST(ConfigEnv, RejectsBadValuesWithAMessageNamingTheVariable) {
  const std::vector<EnvErrorCase> cases = {
      {"HOOKGUARD_REDIS_PORT", "99999", "HOOKGUARD_REDIS_PORT: must be 1-65535, got 99999"},
      {"HOOKGUARD_INGRESS_PORT", "70000", "HOOKGUARD_INGRESS_PORT: must be 0-65535, got 70000"},
      {"HOOKGUARD_INGRESS_PORT", "abc", "HOOKGUARD_INGRESS_PORT: expected an integer, got \"abc\""},
      {"HOOKGUARD_INGRESS_PORT", "", "HOOKGUARD_INGRESS_PORT: expected an integer, got \"\""},
      {"HOOKGUARD_INGRESS_PORT", " 8080",
       "HOOKGUARD_INGRESS_PORT: expected an integer, got \" 8080\""},
      {"HOOKGUARD_INGRESS_THREADS", "0", "HOOKGUARD_INGRESS_THREADS: must be 1-64, got 0"},
      {"HOOKGUARD_AUDIT_QUEUE_CAPACITY", "10000001",
       "HOOKGUARD_AUDIT_QUEUE_CAPACITY: must be 1-10000000, got 10000001"},
      {"HOOKGUARD_UPSTREAM_TIMEOUT_MS", "50",
       "HOOKGUARD_UPSTREAM_TIMEOUT_MS: must be 100-600000, got 50"},
      {"HOOKGUARD_POSTGRES_DSN", "", "HOOKGUARD_POSTGRES_DSN: must not be empty"},
      {"HOOKGUARD_POSTGRES_DSN", "a\nb",
       "HOOKGUARD_POSTGRES_DSN: must not contain control characters"},
      {"HOOKGUARD_ADMIN_ADDRESS", "localhost",
       "HOOKGUARD_ADMIN_ADDRESS: expected an IP address literal, got \"localhost\""},
      {"HOOKGUARD_ADMIN_TOKEN_ENV", "",
       "HOOKGUARD_ADMIN_TOKEN_ENV: expected an environment variable name "
       "([A-Za-z_][A-Za-z0-9_]*), got \"\""},
      {"HOOKGUARD_TRUSTED_PROXIES", "10.0.0.0/8,bad",
       "HOOKGUARD_TRUSTED_PROXIES" + cidr_error({"10.0.0.0/8", "bad"})},
      {"HOOKGUARD_TRUSTED_PROXIES", "10.0.0.0/8,,10.1.0.0/16",
       "HOOKGUARD_TRUSTED_PROXIES" + cidr_error({"10.0.0.0/8", "", "10.1.0.0/16"})},
      {"HOOKGUARD_TRUSTED_PROXIES", "0.0.0.0/0",
       "HOOKGUARD_TRUSTED_PROXIES[0]: 0.0.0.0/0 would trust X-Forwarded-For from any client"},
      {"HOOKGUARD_UPSTREAM_DENY_NETWORKS", "169.254.0.0/16 fe80::/10",
       "HOOKGUARD_UPSTREAM_DENY_NETWORKS" + cidr_error({"169.254.0.0/16 fe80::/10"})},
  };
  for (const auto& c : cases) {
    const auto config = parse_config("", env_of({{c.variable, c.value}}));
    ASSERT_FALSE(config) << c.variable << "=" << c.value;
    EXPECT_EQ(config.error().message, c.message);
    EXPECT_EQ(config.error().code, "invalid_config");
  }
  const auto config = parse_config("", env_of({{"HOOKGUARD_REDIS_PORT", "99999"}}));
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().field, "HOOKGUARD_REDIS_PORT");
}

TEST(ConfigEnv, FileErrorsAreReportedBeforeEnvironmentErrors) {
  EXPECT_EQ(error_of("ingress:\n  prot: 1\n", env_of({{"HOOKGUARD_REDIS_PORT", "x"}})),
            "ingress.prot: unknown key");
}

TEST(ConfigEnv, ProcessEnvReadsTheEnvironment) {
  const EnvLookup env = process_env();
  EXPECT_EQ(env("HOOKGUARD_TEST_SURELY_UNSET_VARIABLE"), std::nullopt);
  ::setenv("HOOKGUARD_TEST_CONFIG_VARIABLE", "value", 1);
  EXPECT_EQ(env("HOOKGUARD_TEST_CONFIG_VARIABLE"), std::optional<std::string>("value"));
  ::unsetenv("HOOKGUARD_TEST_CONFIG_VARIABLE");
}

// ---- files ------------------------------------------------------------------------------

TEST(ConfigFile, MissingFileNamesThePath) {
  const auto config = load_config("/nonexistent/hookguard/gateway.yaml", no_env());
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code, "config_unreadable");
  EXPECT_EQ(config.error().message,
            "/nonexistent/hookguard/gateway.yaml: cannot open: No such file or directory");
}

TEST(ConfigFile, DirectoryIsNotAConfig) {
  const std::string dir = ::testing::TempDir();
  const auto config = load_config(dir, no_env());
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message, dir + ": is a directory");
}

TEST(ConfigFile, ErrorsInsideTheFileNameTheFile) {
  const TempFile bad("hookguard_config_test_bad.yaml", "ingress:\n  prot: 1\n");
  const std::string& path = bad.path();
  const auto config = load_config(path, no_env());
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message, path + ": ingress.prot: unknown key");
  EXPECT_EQ(config.error().field, "ingress.prot");

  const TempFile ok("hookguard_config_test_ok.yaml", "ingress:\n  port: 1\n");
  const auto env_error = load_config(ok.path(), env_of({{"HOOKGUARD_REDIS_PORT", "0"}}));
  ASSERT_FALSE(env_error);
  EXPECT_EQ(env_error.error().message, "HOOKGUARD_REDIS_PORT: must be 1-65535, got 0");
}

TEST(ConfigFile, RefusesAFileOverOneMebibyte) {
  const TempFile big("hookguard_config_test_big.yaml", "# " + std::string(1 << 20, 'x') + "\n");
  const std::string& path = big.path();
  const auto config = load_config(path, no_env());
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message, path + ": larger than 1048576 bytes");
}

TEST(ConfigFile, LoadsAFileAndAppliesTheEnvironment) {
  const TempFile file("hookguard_config_test_env.yaml", "ingress:\n  port: 9000\n");
  const auto config = load_config(file.path(), env_of({{"HOOKGUARD_POSTGRES_POOL_SIZE", "3"}}));
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->ingress.port, 9000);
  EXPECT_EQ(config->postgres.pool_size, 3);
}

// Verifies that deploy/gateway.example.yaml parses and documents exactly the defaults.
TEST(ConfigFile, ExampleFileParsesToTheDefaults) {
  const auto config =
      load_config(std::string(HOOKGUARD_SOURCE_DIR) + "/deploy/gateway.example.yaml", no_env());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(*config, Config{});
  EXPECT_TRUE(validate_for_serve(*config));
}

// ---- validate_for_serve -------------------------------------------------------------------

struct ServeCase {
  std::string name;
  std::function<void(Config&)> change;
  std::string message;  // empty: valid
};

TEST(ConfigServe, EnforcesCrossFieldRules) {
  const std::string why_408 =
      ": Pistache answers 408 itself to a request still in flight after that, and the "
      "upstream's reply is lost";
  const std::vector<ServeCase> cases = {
      {"defaults", [](Config&) {}, ""},
      {"upstream timeout equal to the header timeout",
       [](Config& c) { c.upstream.timeout_ms = 10000; },
       "upstream.timeout_ms: must be below min(ingress.header_timeout_ms, "
       "ingress.body_timeout_ms) = 10000 ms, got 10000" +
           why_408},
      {"body timeout is the smaller one",
       [](Config& c) {
         c.ingress.header_timeout_ms = 20000;
         c.ingress.body_timeout_ms = 5000;
       },
       "upstream.timeout_ms: must be below min(ingress.header_timeout_ms, "
       "ingress.body_timeout_ms) = 5000 ms, got 8000" +
           why_408},
      {"connect timeout at the deadline",
       [](Config& c) {
         c.ingress.header_timeout_ms = 3000;
         c.upstream.timeout_ms = 2900;
         c.upstream.connect_timeout_ms = 3000;
       },
       "upstream.connect_timeout_ms: must be below min(ingress.header_timeout_ms, "
       "ingress.body_timeout_ms) = 3000 ms, got 3000" +
           why_408},
      {"connect timeout above the upstream timeout",
       [](Config& c) {
         c.upstream.timeout_ms = 1000;
         c.upstream.connect_timeout_ms = 1500;
       },
       "upstream.connect_timeout_ms: must not exceed upstream.timeout_ms (1000 ms), got 1500: "
       "the upstream timeout covers the whole exchange, connect included"},
      {"redis and upstream together reach the deadline",
       [](Config& c) { c.upstream.timeout_ms = 9700; },
       "upstream.timeout_ms: redis.connect_timeout_ms + redis.command_timeout_ms + "
       "upstream.timeout_ms must be below min(ingress.header_timeout_ms, "
       "ingress.body_timeout_ms) = 10000 ms, got 10000" +
           why_408},
      {"just below the deadline", [](Config& c) { c.upstream.timeout_ms = 9699; }, ""},
      {"same port on the same address",
       [](Config& c) {
         c.ingress.address = "127.0.0.1";
         c.ingress.port = 9000;
         c.admin.port = 9000;
       },
       "admin.port: must differ from ingress.port (9000) when both listen on overlapping "
       "addresses"},
      {"same port, ingress on the IPv4 wildcard", [](Config& c) { c.admin.port = 8080; },
       "admin.port: must differ from ingress.port (8080) when both listen on overlapping "
       "addresses"},
      {"same port, ingress on the dual-stack wildcard",
       [](Config& c) {
         c.ingress.address = "[::]";
         c.admin.port = 8080;
       },
       "admin.port: must differ from ingress.port (8080) when both listen on overlapping "
       "addresses"},
      {"same port on distinct addresses",
       [](Config& c) {
         c.ingress.address = "127.0.0.2";
         c.admin.port = 8080;
       },
       ""},
      {"both ports picked by the kernel",
       [](Config& c) {
         c.ingress.port = 0;
         c.admin.port = 0;
       },
       ""},
      {"batch larger than the queue",
       [](Config& c) {
         c.audit.batch_size = 500;
         c.audit.queue_capacity = 100;
       },
       "audit.batch_size: must not exceed audit.queue_capacity (100), got 500"},
      {"no master key source", [](Config& c) { c.secrets.master_key_env.clear(); },
       "secrets: set master_key_env or master_key_file: without a master key no trigger secret "
       "can be decrypted"},
      {"master key from a file only",
       [](Config& c) {
         c.secrets.master_key_env.clear();
         c.secrets.master_key_file = "/etc/hookguard/key";
       },
       ""},
  };
  for (const auto& c : cases) {
    Config config;
    c.change(config);
    const auto result = validate_for_serve(config);
    if (c.message.empty()) {
      EXPECT_TRUE(result) << c.name << ": " << result.error().message;
    } else {
      ASSERT_FALSE(result) << c.name;
      EXPECT_EQ(result.error().message, c.message) << c.name;
      EXPECT_EQ(result.error().code, "invalid_config") << c.name;
    }
  }
}

}  // namespace
}  // namespace hookguard::gateway
