// Integration tests of gateway/apply_command.cc (`hookguard apply` / `export`) against a fresh,
// migrated PostgreSQL database per test.
#include "gateway/apply_command.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <sstream>
#include <string>

#include "db/trigger_store.h"
#include "policy/secret_box.h"
#include "policy/trigger_codec.h"
#include "tests/support/test_env.h"

namespace hookguard::gateway {
namespace {

const std::string kSecret = "integration-secret-0123456789abcdef";

const std::string kTwoTriggers = R"(triggers:
  - name: github-main
    key: wh_github_main_0123456789abcdef
    upstream_url: http://127.0.0.1:9000/github
    policy:
      ip_allowlist: {enabled: true, cidrs: [192.30.252.0/22, "2606:50c0::/32"]}
      rate_limit: {enabled: true, requests: 100, window_seconds: 60}
      hmac: {enabled: true, scheme: github, algorithm: sha256, secret: )" +
                                 kSecret + R"(}
  - name: plain
    upstream_url: http://127.0.0.1:9000/plain
    methods: [POST, PUT]
)";

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

class ApplyCommand : public ::testing::Test {
 protected:
  ApplyCommand()
      : box_(*policy::SecretBox::from_raw_key(std::string(32, 'm'))),
        file_(std::filesystem::temp_directory_path() /
              (hookguard::testing::unique_prefix() + "_triggers.yaml")) {}
  ~ApplyCommand() override { std::filesystem::remove(file_); }

  void write_file(const std::string& text) { std::ofstream(file_) << text; }

  RunResult apply(bool prune = false, bool dry_run = false, bool json = false) {
    ApplyOptions options{file_.string(), prune, dry_run, json};
    std::ostringstream out;
    std::ostringstream err;
    RunResult result;
    result.code = run_apply(options, db_.dsn(), box_, out, err);
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  std::map<std::string, db::StoredTrigger> rows() {
    db::TriggerStore store(db_.dsn());
    auto all = store.list_all();
    EXPECT_TRUE(all.has_value()) << all.error().message;
    std::map<std::string, db::StoredTrigger> by_name;
    if (all) {
      for (auto& row : *all) by_name.emplace(row.spec.name, row);
    }
    return by_name;
  }

  hookguard::testing::PgTestDb db_;
  policy::SecretBox box_;
  std::filesystem::path file_;
};

TEST_F(ApplyCommand, CreatesThenReportsUnchangedAndWritesNothing) {
  write_file(kTwoTriggers);
  auto first = apply();
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_NE(first.out.find("create     github-main"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("Applied: 2 to create, 0 to update, 0 unchanged, 0 to delete"),
            std::string::npos)
      << first.out;
  auto before = rows();
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before["github-main"].spec.key, "wh_github_main_0123456789abcdef");
  EXPECT_EQ(before["plain"].spec.methods, (std::vector<std::string>{"POST", "PUT"}));

  auto second = apply();
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_NE(second.out.find("0 to create, 0 to update, 2 unchanged, 0 to delete"),
            std::string::npos)
      << second.out;
  auto after = rows();
  for (const auto& name : {"github-main", "plain"}) {
    EXPECT_EQ(after[name].spec.version, before[name].spec.version) << name;
    EXPECT_EQ(after[name].updated, before[name].updated) << name;
    EXPECT_EQ(after[name].secret_enc, before[name].secret_enc) << name;
  }
}

TEST_F(ApplyCommand, UpdatesAnEditedTrigger) {
  write_file(kTwoTriggers);
  ASSERT_EQ(apply().code, 0);
  const auto before = rows();

  std::string edited = kTwoTriggers;
  edited.replace(edited.find("requests: 100"), 13, "requests: 5");
  write_file(edited);
  auto result = apply();
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_NE(result.out.find("update     github-main"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("unchanged  plain"), std::string::npos) << result.out;

  auto after = rows();
  EXPECT_EQ(after["github-main"].spec.policy.rate_limit.requests, 5);
  EXPECT_GT(after["github-main"].spec.version, before.at("github-main").spec.version);
  EXPECT_EQ(after["github-main"].spec.id, before.at("github-main").spec.id);
  EXPECT_EQ(after["plain"].spec.version, before.at("plain").spec.version);
}

TEST_F(ApplyCommand, DeletesTriggersTheFileDropsOnlyWithPrune) {
  write_file(kTwoTriggers);
  ASSERT_EQ(apply().code, 0);
  write_file(kTwoTriggers.substr(0, kTwoTriggers.find("  - name: plain")));

  auto kept = apply();
  ASSERT_EQ(kept.code, 0) << kept.err;
  EXPECT_EQ(rows().size(), 2u);

  auto pruned = apply(/*prune=*/true);
  ASSERT_EQ(pruned.code, 0) << pruned.err;
  EXPECT_NE(pruned.out.find("delete     plain"), std::string::npos) << pruned.out;
  auto left = rows();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_TRUE(left.contains("github-main"));
}

TEST_F(ApplyCommand, DryRunWritesNothing) {
  write_file(kTwoTriggers);
  auto result = apply(false, /*dry_run=*/true);
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_NE(result.out.find("Plan: 2 to create"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("dry run: nothing written"), std::string::npos) << result.out;
  EXPECT_TRUE(rows().empty());
}

TEST_F(ApplyCommand, PrintsJsonThatScriptsCanRead) {
  write_file(kTwoTriggers);
  auto result = apply(false, false, /*json=*/true);
  ASSERT_EQ(result.code, 0) << result.err;
  const auto doc = nlohmann::json::parse(result.out);
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 2u);
  const auto stored = rows();
  for (const auto& item : doc) {
    ASSERT_EQ(item.size(), 4u) << item.dump();
    const auto name = item.at("name").get<std::string>();
    EXPECT_EQ(item.at("action"), "create");
    EXPECT_EQ(item.at("id").get<std::int64_t>(), stored.at(name).spec.id);
    EXPECT_EQ(item.at("key"), stored.at(name).spec.key);
  }

  auto dry = apply(false, /*dry_run=*/true, /*json=*/true);
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_EQ(nlohmann::json::parse(dry.out)[0].at("action"), "unchanged");
}

TEST_F(ApplyCommand, ExportRoundTrips) {
  write_file(kTwoTriggers);
  ASSERT_EQ(apply().code, 0);

  std::ostringstream out;
  std::ostringstream err;
  ASSERT_EQ(run_export(db_.dsn(), out, err), 0) << err.str();
  EXPECT_EQ(out.str().find(kSecret), std::string::npos);
  EXPECT_EQ(out.str().find("secret"), std::string::npos) << out.str();

  auto imported = policy::triggers_from_yaml(out.str());
  ASSERT_TRUE(imported.has_value()) << imported.error().message << "\n" << out.str();
  auto stored = rows();
  ASSERT_EQ(imported->size(), stored.size());
  for (const auto& input : *imported) {
    auto expected = stored.at(input.spec.name).spec;
    expected.id = 0;
    expected.version = 0;
    EXPECT_EQ(input.spec, expected) << input.spec.name;
  }

  // Applying the export changes nothing: the stored secret stays in place.
  write_file(out.str());
  auto again = apply(/*prune=*/true);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("0 to create, 0 to update, 2 unchanged, 0 to delete"), std::string::npos)
      << again.out;
}

TEST_F(ApplyCommand, StoresSecretsEncryptedAndNeverPrintsThem) {
  write_file(kTwoTriggers);
  auto result = apply();
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out.find(kSecret), std::string::npos);
  EXPECT_EQ(result.err.find(kSecret), std::string::npos);

  pqxx::connection conn(db_.dsn());
  pqxx::work tx(conn);
  auto row = tx.exec_params1("SELECT hmac_secret_enc, key FROM webhook_trigger WHERE name = $1",
                             "github-main");
  const pqxx::binarystring raw(row[0]);
  const std::string sealed = raw.str();
  EXPECT_EQ(sealed.find(kSecret), std::string::npos);
  EXPECT_EQ(sealed.find(kSecret.substr(0, 16)), std::string::npos);
  auto opened = box_.open(sealed, row[1].as<std::string>());
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(*opened, kSecret);
}

TEST_F(ApplyCommand, UpdatesWhenOnlyTheSecretChanges) {
  write_file(kTwoTriggers);
  ASSERT_EQ(apply().code, 0);
  const auto before = rows();

  std::string edited = kTwoTriggers;
  edited.replace(edited.find(kSecret), kSecret.size(), "a-new-secret-of-enough-length");
  write_file(edited);
  auto result = apply();
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_NE(result.out.find("update     github-main"), std::string::npos) << result.out;
  const auto after = rows();
  auto opened = box_.open(*after.at("github-main").secret_enc, after.at("github-main").spec.key);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(*opened, "a-new-secret-of-enough-length");
}

TEST_F(ApplyCommand, ReadsSecretEnvFromTheProcessEnvironment) {
  const std::string variable = "HG_APPLY_TEST_SECRET_" + std::to_string(::getpid());
  write_file(
      "triggers:\n  - name: env\n    upstream_url: http://127.0.0.1:9000/env\n"
      "    policy: {hmac: {enabled: true, secret_env: " +
      variable + "}}\n");
  auto missing = apply();
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("triggers[0].policy.hmac.secret_env: environment variable " +
                             variable + " is not set"),
            std::string::npos)
      << missing.err;
  EXPECT_TRUE(rows().empty());

  ::setenv(variable.c_str(), kSecret.c_str(), 1);
  auto result = apply();
  ::unsetenv(variable.c_str());
  ASSERT_EQ(result.code, 0) << result.err;
  const auto stored = rows();
  auto opened = box_.open(*stored.at("env").secret_enc, stored.at("env").spec.key);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(*opened, kSecret);
}

TEST_F(ApplyCommand, RejectsAnInvalidFileWithExitCode2AndTheField) {
  write_file(kTwoTriggers + "    policy: {rate_limit: {reqests: 5}}\n");
  auto result = apply();
  EXPECT_EQ(result.code, 2);
  EXPECT_NE(result.err.find("triggers[1].policy.rate_limit.reqests: unknown field"),
            std::string::npos)
      << result.err;
  EXPECT_TRUE(rows().empty());

  std::filesystem::remove(file_);
  EXPECT_EQ(apply().code, 2);
}

TEST_F(ApplyCommand, FailsWithExitCode1WhenTheDatabaseIsUnreachable) {
  write_file(kTwoTriggers);
  ApplyOptions options{file_.string(), false, false, false};
  std::ostringstream out;
  std::ostringstream err;
  const std::string dsn = "postgresql://hookguard@127.0.0.1:1/none?connect_timeout=2";
  EXPECT_EQ(run_apply(options, dsn, box_, out, err), 1);
  EXPECT_FALSE(err.str().empty());
  EXPECT_EQ(run_export(dsn, out, err), 1);
}

}  // namespace
}  // namespace hookguard::gateway
