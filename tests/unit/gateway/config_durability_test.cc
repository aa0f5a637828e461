// audit.durability: the key, its environment override, and the deadline rule of strict mode.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "gateway/config.h"

namespace hookguard::gateway {
namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ConfigDurability, DefaultsToAsync) {
  const auto config = parse_config("", env_of({}));
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->audit.durability, "async");
}

TEST(ConfigDurability, AcceptsAsyncAndStrict) {
  for (const std::string mode : {"async", "strict"}) {
    const auto config = parse_config("audit:\n  durability: " + mode + "\n", env_of({}));
    ASSERT_TRUE(config) << mode << ": " << config.error().message;
    EXPECT_EQ(config->audit.durability, mode);
  }
}

TEST(ConfigDurability, RefusesAnythingElseNamingTheKey) {
  const std::map<std::string, std::string> cases = {
      {"audit:\n  durability: sync\n", "audit.durability: expected async or strict, got \"sync\""},
      {"audit:\n  durability: Strict\n",
       "audit.durability: expected async or strict, got \"Strict\""},
      {"audit:\n  durability: \"\"\n", "audit.durability: expected async or strict, got \"\""},
      {"audit:\n  durability: [strict]\n", "audit.durability: expected a string, got a list"},
  };
  for (const auto& [yaml, message] : cases) {
    const auto config = parse_config(yaml, env_of({}));
    ASSERT_FALSE(config) << yaml;
    EXPECT_EQ(config.error().message, message) << yaml;
    EXPECT_EQ(config.error().field, "audit.durability") << yaml;
  }
}

TEST(ConfigDurability, EnvironmentOverridesTheFileAndIsChecked) {
  const auto config = parse_config("audit:\n  durability: async\n",
                                   env_of({{"HOOKGUARD_AUDIT_DURABILITY", "strict"}}));
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->audit.durability, "strict");

  const auto bad = parse_config("", env_of({{"HOOKGUARD_AUDIT_DURABILITY", "fsync"}}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            "HOOKGUARD_AUDIT_DURABILITY: expected async or strict, got \"fsync\"");
}

// The defaults leave 10000 - (200 + 100 + 8000) = 1700 ms, enough for the strict wait.
TEST(ConfigDurability, StrictFitsTheDefaultDeadline) {
  Config config;
  config.audit.durability = "strict";
  EXPECT_TRUE(validate_for_serve(config));
}

// A strict answer can wait kStrictAuditWaitMs for its row after the upstream answered: that
// wait must end before Pistache's own 408, like the upstream timeout must.
TEST(ConfigDurability, StrictNeedsRoomForTheRowWaitBeforeTheIngressDeadline) {
  Config config;
  config.upstream.timeout_ms = 9000;  // 200 + 100 + 9000 + 1000 >= 10000
  EXPECT_TRUE(validate_for_serve(config)) << "async has no such rule";
  config.audit.durability = "strict";
  const auto result = validate_for_serve(config);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().field, "audit.durability");
  EXPECT_EQ(result.error().message,
            "audit.durability: strict needs redis.connect_timeout_ms + "
            "redis.command_timeout_ms + upstream.timeout_ms + 1000 ms (the longest wait for a "
            "log row) below min(ingress.header_timeout_ms, ingress.body_timeout_ms) = 10000 ms, "
            "got 10300: Pistache answers 408 itself to a request still waiting after that, and the "
            "answer is lost");
  config.upstream.timeout_ms = 8699;  // 200 + 100 + 8699 + 1000 = 9999
  EXPECT_TRUE(validate_for_serve(config));
}

}  // namespace
}  // namespace hookguard::gateway
