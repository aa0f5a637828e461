#include "gateway/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string_view>
#include <variant>
#include <vector>

#include "policy/cidr_set.h"
#include "policy/yaml_documents.h"

namespace hookguard::gateway {
namespace {

constexpr std::string_view kInvalidConfig = "invalid_config";
constexpr std::size_t kMaxConfigFileBytes = 1 << 20;

constexpr std::int64_t kMinTimeoutMs = 100;
constexpr std::int64_t kMaxTimeoutMs = 600000;
constexpr std::int64_t kMinBodyBytes = 1024;
constexpr std::int64_t kMaxBodyBytes = 104857600;

tl::unexpected<Error> config_error(const std::string& path, const std::string& what) {
  return fail(std::string(kInvalidConfig), path + ": " + what, path);
}

// Values are echoed bounded and escaped: an error message ends up in logs and terminals.
std::string echo_value(std::string_view text) {
  constexpr std::size_t kMaxEcho = 64;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kMaxEcho; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMaxEcho) out += "...";
  return out + "\"";
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return echo_value(node.Scalar());
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (auto& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

enum class StringRule { kAny, kNonEmpty, kEnvName, kOptionalEnvName, kIpLiteral, kDurability };
enum class ListRule { kNetworks, kTrustedProxies };

using IntTarget = int& (*)(Config&);
using Int64Target = std::int64_t& (*)(Config&);
using StringTarget = std::string& (*)(Config&);
using ListTarget = std::vector<std::string>& (*)(Config&);

// One configurable key: where it lives, where it goes, and what it accepts.
struct Field {
  std::string_view section;  // empty for a top-level key
  std::string_view key;
  std::variant<IntTarget, Int64Target, StringTarget, ListTarget> target;
  std::int64_t min = 0;
  std::int64_t max = 0;
  StringRule string_rule = StringRule::kAny;
  ListRule list_rule = ListRule::kNetworks;

  std::string path() const {
    return section.empty() ? std::string(key) : std::string(section) + "." + std::string(key);
  }
  std::string env_name() const {
    return section.empty() ? "HOOKGUARD_" + upper(key)
                           : "HOOKGUARD_" + upper(section) + "_" + upper(key);
  }
};

Field integer(std::string_view section, std::string_view key, IntTarget target, std::int64_t min,
              std::int64_t max) {
  return Field{section, key, target, min, max, StringRule::kAny, ListRule::kNetworks};
}
Field integer64(std::string_view section, std::string_view key, Int64Target target,
                std::int64_t min, std::int64_t max) {
  return Field{section, key, target, min, max, StringRule::kAny, ListRule::kNetworks};
}
Field text(std::string_view section, std::string_view key, StringTarget target, StringRule rule) {
  return Field{section, key, target, 0, 0, rule, ListRule::kNetworks};
}
Field list(std::string_view section, std::string_view key, ListTarget target, ListRule rule) {
  return Field{section, key, target, 0, 0, StringRule::kAny, rule};
}

// Every key of gateway.yaml, in the order of DESIGN §6. A new key is one new row (and a default
// in config.h); the parser, the environment overrides and the tests all read this table.
const std::vector<Field>& fields() {
  static const std::vector<Field> kFields = {
      text(
          "ingress", "address", [](Config& c) -> std::string& { return c.ingress.address; },
          StringRule::kIpLiteral),
      integer(
          "ingress", "port", [](Config& c) -> int& { return c.ingress.port; }, 0, 65535),
      integer(
          "ingress", "threads", [](Config& c) -> int& { return c.ingress.threads; }, 1, 64),
      integer64(
          "ingress", "max_body_bytes",
          [](Config& c) -> std::int64_t& { return c.ingress.max_body_bytes; }, kMinBodyBytes,
          kMaxBodyBytes),
      integer(
          "ingress", "header_timeout_ms",
          [](Config& c) -> int& { return c.ingress.header_timeout_ms; }, kMinTimeoutMs,
          kMaxTimeoutMs),
      integer(
          "ingress", "body_timeout_ms", [](Config& c) -> int& { return c.ingress.body_timeout_ms; },
          kMinTimeoutMs, kMaxTimeoutMs),
      integer(
          "ingress", "keepalive_timeout_ms",
          [](Config& c) -> int& { return c.ingress.keepalive_timeout_ms; }, kMinTimeoutMs,
          kMaxTimeoutMs),

      text(
          "admin", "address", [](Config& c) -> std::string& { return c.admin.address; },
          StringRule::kIpLiteral),
      integer(
          "admin", "port", [](Config& c) -> int& { return c.admin.port; }, 0, 65535),
      text(
          "admin", "token_env", [](Config& c) -> std::string& { return c.admin.token_env; },
          StringRule::kEnvName),

      text(
          "postgres", "dsn", [](Config& c) -> std::string& { return c.postgres.dsn; },
          StringRule::kNonEmpty),
      integer(
          "postgres", "pool_size", [](Config& c) -> int& { return c.postgres.pool_size; }, 1, 64),

      text(
          "redis", "host", [](Config& c) -> std::string& { return c.redis.host; },
          StringRule::kNonEmpty),
      // Port 0 means "pick a free port" for a listener only; a client cannot connect to it, and
      // with on_store_error: open an unreachable Redis would quietly switch rate limits off.
      integer(
          "redis", "port", [](Config& c) -> int& { return c.redis.port; }, 1, 65535),
      text(
          "redis", "password_env", [](Config& c) -> std::string& { return c.redis.password_env; },
          StringRule::kOptionalEnvName),
      integer(
          "redis", "connect_timeout_ms",
          [](Config& c) -> int& { return c.redis.connect_timeout_ms; }, kMinTimeoutMs,
          kMaxTimeoutMs),
      integer(
          "redis", "command_timeout_ms",
          [](Config& c) -> int& { return c.redis.command_timeout_ms; }, kMinTimeoutMs,
          kMaxTimeoutMs),
      integer(
          "redis", "breaker_open_ms", [](Config& c) -> int& { return c.redis.breaker_open_ms; },
          kMinTimeoutMs, kMaxTimeoutMs),
      text(
          "redis", "key_prefix", [](Config& c) -> std::string& { return c.redis.key_prefix; },
          StringRule::kAny),

      list(
          "", "trusted_proxies",
          [](Config& c) -> std::vector<std::string>& { return c.trusted_proxies; },
          ListRule::kTrustedProxies),

      integer(
          "audit", "batch_size", [](Config& c) -> int& { return c.audit.batch_size; }, 1, 100000),
      integer(
          "audit", "flush_interval_ms", [](Config& c) -> int& { return c.audit.flush_interval_ms; },
          1, 60000),
      integer(
          "audit", "queue_capacity", [](Config& c) -> int& { return c.audit.queue_capacity; }, 1,
          10000000),
      text(
          "audit", "spool_dir", [](Config& c) -> std::string& { return c.audit.spool_dir; },
          StringRule::kNonEmpty),
      integer(
          "audit", "retention_days", [](Config& c) -> int& { return c.audit.retention_days; }, 0,
          36500),
      integer(
          "audit", "rollup_retention_days",
          [](Config& c) -> int& { return c.audit.rollup_retention_days; }, 1, 36500),
      integer(
          "audit", "maintenance_interval_seconds",
          [](Config& c) -> int& { return c.audit.maintenance_interval_seconds; }, 1, 3600),
      text(
          "audit", "durability", [](Config& c) -> std::string& { return c.audit.durability; },
          StringRule::kDurability),

      text(
          "secrets", "master_key_env",
          [](Config& c) -> std::string& { return c.secrets.master_key_env; },
          StringRule::kOptionalEnvName),
      text(
          "secrets", "master_key_file",
          [](Config& c) -> std::string& { return c.secrets.master_key_file; }, StringRule::kAny),

      integer(
          "upstream", "threads", [](Config& c) -> int& { return c.upstream.threads; }, 1, 64),
      integer(
          "upstream", "connect_timeout_ms",
          [](Config& c) -> int& { return c.upstream.connect_timeout_ms; }, kMinTimeoutMs,
          kMaxTimeoutMs),
      integer(
          "upstream", "timeout_ms", [](Config& c) -> int& { return c.upstream.timeout_ms; },
          kMinTimeoutMs, kMaxTimeoutMs),
      integer(
          "upstream", "max_connections",
          [](Config& c) -> int& { return c.upstream.max_connections; }, 1, 65535),
      integer64(
          "upstream", "max_response_bytes",
          [](Config& c) -> std::int64_t& { return c.upstream.max_response_bytes; }, kMinBodyBytes,
          kMaxBodyBytes),
      list(
          "upstream", "deny_networks",
          [](Config& c) -> std::vector<std::string>& { return c.upstream.deny_networks; },
          ListRule::kNetworks),
  };
  return kFields;
}

bool is_section(std::string_view name) {
  for (const auto& field : fields()) {
    if (!field.section.empty() && field.section == name) return true;
  }
  return false;
}

const Field* find_field(std::string_view section, std::string_view key) {
  for (const auto& field : fields()) {
    if (field.section == section && field.key == key) return &field;
  }
  return nullptr;
}

// ---- value rules, shared by the YAML file and the environment ----------------------------

Result<std::int64_t> check_integer(std::string_view value, const Field& field,
                                   const std::string& where) {
  // Decimal digits only: yaml-cpp's as<int> would also take "0x1F" and "1e3".
  std::int64_t number = 0;
  const char* begin = value.data();
  const char* end = value.data() + value.size();
  const bool digits_only =
      !value.empty() &&
      value.find_first_not_of("0123456789", value[0] == '-' ? 1 : 0) == std::string_view::npos &&
      value != "-";
  if (!digits_only) return config_error(where, "expected an integer, got " + echo_value(value));
  const auto [ptr, ec] = std::from_chars(begin, end, number);
  if (ec != std::errc() || ptr != end || number < field.min || number > field.max) {
    return config_error(
        where, "must be " + std::to_string(field.min) + "-" + std::to_string(field.max) + ", got " +
                   std::string(value.substr(0, 64)) + (value.size() > 64 ? "..." : ""));
  }
  return number;
}

bool is_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') return false;
  }
  return true;
}

bool has_control(std::string_view text) {
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

Result<std::string> check_string(std::string value, const Field& field, const std::string& where) {
  // Not echoed: a DSN may carry a password.
  if (has_control(value)) return config_error(where, "must not contain control characters");
  switch (field.string_rule) {
    case StringRule::kAny:
      return value;
    case StringRule::kNonEmpty:
      if (value.empty()) return config_error(where, "must not be empty");
      return value;
    case StringRule::kOptionalEnvName:
      if (value.empty()) return value;
      [[fallthrough]];
    case StringRule::kEnvName:
      if (!is_env_name(value)) {
        return config_error(where,
                            "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got " +
                                echo_value(value));
      }
      return value;
    case StringRule::kIpLiteral: {
      std::string_view inner = value;
      const bool bracketed = inner.size() >= 2 && inner.front() == '[' && inner.back() == ']';
      if (bracketed) inner = inner.substr(1, inner.size() - 2);
      const auto ip = policy::IpAddress::parse(inner);
      const bool v6_text = inner.find(':') != std::string_view::npos;
      if (!ip || (bracketed && !v6_text)) {
        return config_error(where, "expected an IP address literal, got " + echo_value(value));
      }
      // Pistache's Address(host, port) throws "Invalid port" on a bare "::"; it takes "[::]".
      return v6_text ? "[" + std::string(inner) + "]" : std::string(inner);
    }
    case StringRule::kDurability:
      if (value != "async" && value != "strict") {
        return config_error(where, "expected async or strict, got " + echo_value(value));
      }
      return value;
  }
  return value;
}

Result<std::vector<std::string>> check_list(std::vector<std::string> items, const Field& field,
                                            const std::string& where) {
  const auto set = policy::CidrSet::parse(items);
  if (!set) {
    // CidrSet names a bad entry as "[i]: ..."; a whole-list error has no index.
    const Error& error = set.error();
    const bool indexed = !error.field.empty() && error.message.rfind(error.field, 0) == 0;
    return fail(std::string(kInvalidConfig), where + (indexed ? "" : ": ") + error.message,
                where + error.field);
  }
  if (field.list_rule == ListRule::kTrustedProxies) {
    for (std::size_t i = 0; i < set->cidrs().size(); ++i) {
      if (set->cidrs()[i].prefix == 0) {
        // Trusting every peer's X-Forwarded-For lets any client choose its own source IP and
        // walk through every allowlist.
        return config_error(
            where + "[" + std::to_string(i) + "]",
            set->cidrs()[i].to_string() + " would trust X-Forwarded-For from any client");
      }
    }
  }
  return items;
}

void assign_int(Config& config, const Field& field, std::int64_t value) {
  if (const auto* target = std::get_if<IntTarget>(&field.target)) {
    (*target)(config) = static_cast<int>(value);  // the range check keeps it inside int
  } else {
    std::get<Int64Target>(field.target)(config) = value;
  }
}

bool is_integer(const Field& field) {
  return std::holds_alternative<IntTarget>(field.target) ||
         std::holds_alternative<Int64Target>(field.target);
}

// ---- the YAML file -----------------------------------------------------------------------

Result<void> apply_yaml_value(Config& config, const Field& field, const YAML::Node& value) {
  const std::string where = field.path();
  if (is_integer(field)) {
    if (!value.IsScalar()) {
      return config_error(where, "expected an integer, got " + describe(value));
    }
    auto number = check_integer(value.Scalar(), field, where);
    if (!number) return tl::unexpected(number.error());
    assign_int(config, field, *number);
    return {};
  }
  if (const auto* target = std::get_if<StringTarget>(&field.target)) {
    if (!value.IsScalar()) return config_error(where, "expected a string, got " + describe(value));
    auto checked = check_string(value.Scalar(), field, where);
    if (!checked) return tl::unexpected(checked.error());
    (*target)(config) = std::move(*checked);
    return {};
  }
  std::vector<std::string> items;
  if (value.IsSequence()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      const YAML::Node item = value[i];
      if (!item.IsScalar()) {
        return config_error(where + "[" + std::to_string(i) + "]",
                            "expected a string, got " + describe(item));
      }
      items.push_back(item.Scalar());
    }
  } else if (!value.IsNull()) {
    return config_error(where, "expected a list, got " + describe(value));
  }
  auto checked = check_list(std::move(items), field, where);
  if (!checked) return tl::unexpected(checked.error());
  std::get<ListTarget>(field.target)(config) = std::move(*checked);
  return {};
}

// Walks a mapping in document order so that the first mistake in the file is the one reported;
// yaml-cpp accepts duplicate keys silently, so they are caught here.
template <class Visit>
Result<void> walk_mapping(const YAML::Node& map, const std::string& prefix, Visit visit) {
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      return config_error(prefix.empty() ? "config" : prefix,
                          "keys must be strings, got " + describe(key));
    }
    const std::string& name = key.Scalar();
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    if (!seen.insert(name).second) return config_error(path, "duplicate key");
    auto result = visit(name, path, it->second);
    if (!result) return result;
  }
  return {};
}

Result<void> apply_yaml(Config& config, const std::string& yaml_text) {
  try {
    const std::vector<YAML::Node> documents = policy::load_first_documents(yaml_text);
    if (documents.empty()) return {};
    if (documents.size() > 1) {
      return config_error("config",
                          "expected one YAML document, got " + std::to_string(documents.size()));
    }
    const YAML::Node& root = documents.front();
    if (root.IsNull()) return {};
    if (!root.IsMap()) return config_error("config", "expected a mapping, got " + describe(root));

    return walk_mapping(root, "",
                        [&](const std::string& name, const std::string& path,
                            const YAML::Node& value) -> Result<void> {
                          if (const Field* field = find_field("", name)) {
                            return apply_yaml_value(config, *field, value);
                          }
                          if (!is_section(name)) return config_error(path, "unknown key");
                          // An empty section ("admin:" with every key commented out) keeps its
                          // defaults.
                          if (value.IsNull()) return {};
                          if (!value.IsMap()) {
                            return config_error(path, "expected a mapping, got " + describe(value));
                          }
                          return walk_mapping(
                              value, path,
                              [&](const std::string& key, const std::string& key_path,
                                  const YAML::Node& key_value) -> Result<void> {
                                const Field* field = find_field(name, key);
                                if (field == nullptr) return config_error(key_path, "unknown key");
                                return apply_yaml_value(config, *field, key_value);
                              });
                        });
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return fail(std::string(kInvalidConfig), "invalid YAML: " + e.msg);
    return fail(std::string(kInvalidConfig), "invalid YAML at line " +
                                                 std::to_string(e.mark.line + 1) + ", column " +
                                                 std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

// ---- the environment ---------------------------------------------------------------------

std::vector<std::string> split_list(std::string_view value) {
  std::vector<std::string> items;
  if (trim(value).empty()) return items;  // "" clears a list, e.g. deny_networks
  std::size_t start = 0;
  while (true) {
    const auto comma = value.find(',', start);
    items.emplace_back(trim(value.substr(start, comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return items;
}

Result<void> apply_env(Config& config, const EnvLookup& env) {
  if (!env) return {};
  for (const auto& field : fields()) {
    const std::string name = field.env_name();
    const std::optional<std::string> value = env(name);
    if (!value) continue;
    if (is_integer(field)) {
      auto number = check_integer(*value, field, name);
      if (!number) return tl::unexpected(number.error());
      assign_int(config, field, *number);
    } else if (const auto* target = std::get_if<StringTarget>(&field.target)) {
      auto checked = check_string(*value, field, name);
      if (!checked) return tl::unexpected(checked.error());
      (*target)(config) = std::move(*checked);
    } else {
      auto checked = check_list(split_list(*value), field, name);
      if (!checked) return tl::unexpected(checked.error());
      std::get<ListTarget>(field.target)(config) = std::move(*checked);
    }
  }
  return {};
}

// ---- cross-field rules -------------------------------------------------------------------

std::optional<policy::IpAddress> listen_ip(const std::string& address) {
  std::string_view inner = address;
  if (inner.size() >= 2 && inner.front() == '[' && inner.back() == ']') {
    inner = inner.substr(1, inner.size() - 2);
  }
  auto ip = policy::IpAddress::parse(inner);
  if (!ip) return std::nullopt;
  return *ip;
}

bool is_wildcard(const policy::IpAddress& ip) {
  for (auto byte : ip.bytes()) {
    if (byte != 0) return false;
  }
  return true;
}

bool listeners_overlap(const std::string& a, const std::string& b) {
  const auto ip_a = listen_ip(a);
  const auto ip_b = listen_ip(b);
  if (!ip_a || !ip_b) return a == b;
  return *ip_a == *ip_b || is_wildcard(*ip_a) || is_wildcard(*ip_b);
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

Result<Config> parse_config(const std::string& yaml_text, const EnvLookup& env) {
  Config config;
  if (auto parsed = apply_yaml(config, yaml_text); !parsed) return tl::unexpected(parsed.error());
  if (auto overridden = apply_env(config, env); !overridden) {
    return tl::unexpected(overridden.error());
  }
  return config;
}

Result<Config> load_config(const std::string& path, const EnvLookup& env) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return fail("config_unreadable", path + ": is a directory", path);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return fail("config_unreadable",
                path + ": cannot open: " + (err != 0 ? std::strerror(err) : "unknown error"), path);
  }
  std::string text(kMaxConfigFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return fail("config_unreadable", path + ": read error", path);
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigFileBytes) {
    return fail("config_unreadable",
                path + ": larger than " + std::to_string(kMaxConfigFileBytes) + " bytes", path);
  }

  Config config;
  if (auto parsed = apply_yaml(config, text); !parsed) {
    // Errors inside the file name the file; environment errors below name their variable.
    Error error = parsed.error();
    error.message = path + ": " + error.message;
    return tl::unexpected(std::move(error));
  }
  if (auto overridden = apply_env(config, env); !overridden) {
    return tl::unexpected(overridden.error());
  }
  return config;
}

Result<void> validate_for_serve(const Config& config) {
  const int ingress_deadline =
      std::min(config.ingress.header_timeout_ms, config.ingress.body_timeout_ms);
  const std::string deadline_text = "min(ingress.header_timeout_ms, ingress.body_timeout_ms) = " +
                                    std::to_string(ingress_deadline) + " ms";
  // Pistache's header/body timers keep running while the handler waits (notes A1.4).
  const std::string why_408 =
      ": Pistache answers 408 itself to a request still in flight after that, and the upstream's "
      "reply is lost";

  if (config.upstream.timeout_ms >= ingress_deadline) {
    return config_error("upstream.timeout_ms", "must be below " + deadline_text + ", got " +
                                                   std::to_string(config.upstream.timeout_ms) +
                                                   why_408);
  }
  if (config.upstream.connect_timeout_ms >= ingress_deadline) {
    return config_error("upstream.connect_timeout_ms",
                        "must be below " + deadline_text + ", got " +
                            std::to_string(config.upstream.connect_timeout_ms) + why_408);
  }
  if (config.upstream.connect_timeout_ms > config.upstream.timeout_ms) {
    return config_error("upstream.connect_timeout_ms",
                        "must not exceed upstream.timeout_ms (" +
                            std::to_string(config.upstream.timeout_ms) + " ms), got " +
                            std::to_string(config.upstream.connect_timeout_ms) +
                            ": the upstream timeout covers the whole exchange, connect included");
  }
  // A request can spend a Redis reconnect and command (the rate-limit stage) before forwarding.
  const long long request_budget = static_cast<long long>(config.redis.connect_timeout_ms) +
                                   config.redis.command_timeout_ms + config.upstream.timeout_ms;
  if (request_budget >= ingress_deadline) {
    return config_error("upstream.timeout_ms",
                        "redis.connect_timeout_ms + redis.command_timeout_ms + "
                        "upstream.timeout_ms must be below " +
                            deadline_text + ", got " + std::to_string(request_budget) + why_408);
  }
  // A strict answer may also wait for its log row; a send after Pistache's own 408 could
  // reach another client that reused the connection's descriptor (notes A1.4).
  if (config.audit.durability == "strict" &&
      request_budget + kStrictAuditWaitMs >= ingress_deadline) {
    return config_error("audit.durability",
                        "strict needs redis.connect_timeout_ms + redis.command_timeout_ms + "
                        "upstream.timeout_ms + " +
                            std::to_string(kStrictAuditWaitMs) +
                            " ms (the longest wait for a log row) below " + deadline_text +
                            ", got " + std::to_string(request_budget + kStrictAuditWaitMs) +
                            ": Pistache answers 408 itself to a request still waiting after that, "
                            "and the answer is lost");
  }
  if (config.ingress.port != 0 && config.ingress.port == config.admin.port &&
      listeners_overlap(config.ingress.address, config.admin.address)) {
    return config_error("admin.port", "must differ from ingress.port (" +
                                          std::to_string(config.ingress.port) +
                                          ") when both listen on overlapping addresses");
  }
  if (config.audit.batch_size > config.audit.queue_capacity) {
    return config_error("audit.batch_size", "must not exceed audit.queue_capacity (" +
                                                std::to_string(config.audit.queue_capacity) +
                                                "), got " +
                                                std::to_string(config.audit.batch_size));
  }
  if (config.secrets.master_key_env.empty() && config.secrets.master_key_file.empty()) {
    return config_error("secrets",
                        "set master_key_env or master_key_file: without a master key "
                        "no trigger secret can be decrypted");
  }
  return {};
}

}  // namespace hookguard::gateway
