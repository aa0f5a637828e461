// End-to-end tests of the hookguard command line (no services needed).
#include <gtest/gtest.h>

#include <string>

#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/test_env.h"

namespace hookguard::testing {
namespace {

// GitHub's documented example: docs.github.com, "Validating webhook deliveries",
// secret "It's a Secret to Everybody", payload "Hello, World!".
TEST(Cli, SignPrintsGithubsDocumentedSignature) {
  auto [code, out] = run_hookguard(
      {"sign", "--scheme", "github", "--secret", "It's a Secret to Everybody"}, "Hello, World!");
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out,
            "X-Hub-Signature-256: "
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\n");
}

TEST(Cli, SignRejectsAnUnknownSchemeWithExitCode2) {
  auto [code, out] = run_hookguard({"sign", "--scheme", "nope", "--secret", "s"}, "x");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--scheme"), std::string::npos) << out;
}

TEST(Cli, GenKeyPrintsA32ByteBase64Key) {
  auto [code, out] = run_hookguard({"gen-key"});
  EXPECT_EQ(code, 0);
  ASSERT_EQ(out.size(), 45u) << out;  // 44 base64 characters and a newline
  EXPECT_EQ(out.back(), '\n');
}

TEST(Cli, VersionAndHelpExitZero) {
  auto [version_code, version] = run_hookguard({"--version"});
  EXPECT_EQ(version_code, 0);
  EXPECT_EQ(version.rfind("hookguard ", 0), 0u) << version;
  // The allocator the build chose (CMake option HOOKGUARD_JEMALLOC) is the one that runs.
  EXPECT_EQ(version.find("(jemalloc ") != std::string::npos, HOOKGUARD_WITH_JEMALLOC == 1)
      << version;
  auto [code, out] = run_hookguard({"--help"});
  EXPECT_EQ(code, 0);
  for (const char* sub : {"serve", "migrate", "apply", "export", "sign", "gen-key"}) {
    EXPECT_NE(out.find(sub), std::string::npos) << sub;
  }
}

TEST(Cli, RetentionRejectsAMalformedPeriodWithExitCode2) {
  auto [code, out] = run_hookguard({"retention", "--older-than", "thirty"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--older-than"), std::string::npos) << out;
}

// Verifies that `retention` drops whole day partitions older than the period and keeps newer.
TEST(Cli, RetentionDropsOnlyPartitionsOlderThanThePeriod) {
  PgTestDb db;
  query_value(db.dsn(), "SELECT hookguard_ensure_partitions(current_date - 40, 3)");
  const auto before = query_value(db.dsn(),
                                  "SELECT count(*) FROM pg_inherits WHERE inhparent = "
                                  "'webhook_event_log'::regclass");
  auto [code, out] = run_hookguard({"retention", "--older-than", "30d"}, "",
                                   {{"HOOKGUARD_POSTGRES_DSN", db.dsn()}});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("dropped 3 partition(s)"), std::string::npos) << out;
  const auto after = query_value(db.dsn(),
                                 "SELECT count(*) FROM pg_inherits WHERE inhparent = "
                                 "'webhook_event_log'::regclass");
  EXPECT_EQ(std::stoi(after), std::stoi(before) - 3);
}

TEST(Cli, ServeWithABadConfigKeyExitsWithAMessageNamingIt) {
  char path[] = "/tmp/hookguard-cli-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string yaml = "ingress: {prot: 8080}\n";
  ASSERT_EQ(write(fd, yaml.data(), yaml.size()), static_cast<ssize_t>(yaml.size()));
  close(fd);
  auto [code, out] = run_hookguard({"serve", "--config", path});
  unlink(path);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("ingress.prot"), std::string::npos) << out;
}

}  // namespace
}  // namespace hookguard::testing
