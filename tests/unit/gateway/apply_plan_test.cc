#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <string>
#include <vector>

#include "gateway/apply_command.h"
#include "policy/encoding.h"
#include "policy/secret_box.h"
#include "policy/trigger_codec.h"

namespace hookguard::gateway {
namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef";

policy::SecretBox test_box() { return *policy::SecretBox::from_raw_key(std::string(32, 'k')); }

class PlanApply : public ::testing::Test {
 protected:
  // A desired entry as the file would give it.
  static policy::TriggerInput input(const std::string& name, const std::string& extra_yaml = "") {
    auto inputs = policy::triggers_from_yaml("triggers:\n  - name: " + name +
                                             "\n    upstream_url: http://127.0.0.1:9000/" + name +
                                             "\n" + extra_yaml);
    EXPECT_TRUE(inputs.has_value()) << inputs.error().message;
    return inputs->at(0);
  }

  // A stored row equal to what `input(name)` plans, as if applied earlier.
  db::StoredTrigger stored(const std::string& name, std::int64_t id,
                           const std::string& extra_yaml = "") {
    db::StoredTrigger row;
    row.spec = input(name, extra_yaml).spec;
    row.spec.id = id;
    row.spec.version = 3;
    if (row.spec.key.empty()) row.spec.key = "wh_stored_" + name;
    row.created = row.updated = "2024-01-01T00:00:00Z";
    return row;
  }

  Result<Plan> plan(const std::vector<db::StoredTrigger>& existing,
                    const std::vector<policy::TriggerInput>& desired, bool prune = false) {
    return plan_apply(existing, desired, prune,
                      SecretResolver{box_, [this](const std::string& n) {
                                       auto it = env_.find(n);
                                       return it == env_.end() ? std::nullopt
                                                               : std::optional(it->second);
                                     }});
  }

  static std::vector<std::string> actions(const Plan& plan) {
    std::vector<std::string> out;
    for (const auto& change : plan.changes) {
      out.push_back(change.summary.action + " " + change.summary.name);
    }
    return out;
  }

  policy::SecretBox box_ = test_box();
  std::map<std::string, std::string> env_;
};

TEST_F(PlanApply, CreatesANewTriggerWithAGeneratedKey) {
  auto result = plan({}, {input("a")});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_EQ(result->changes.size(), 1u);
  const auto& change = result->changes[0];
  EXPECT_EQ(change.summary.action, "create");
  EXPECT_EQ(change.summary.id, 0);
  EXPECT_TRUE(std::regex_match(change.summary.key, std::regex("^wh_[0-9A-Za-z]{32}$")))
      << change.summary.key;
  EXPECT_EQ(change.row.spec.key, change.summary.key);
  EXPECT_FALSE(change.secret.has_value());
}

TEST_F(PlanApply, KeepsTheKeyTheFileGives) {
  auto result = plan({}, {input("a", "    key: wh_given_key\n")});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->changes[0].summary.key, "wh_given_key");
}

TEST_F(PlanApply, ReportsUnchangedWhenEverythingMatches) {
  auto row = stored("a", 7);
  auto result = plan({row}, {input("a")});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_EQ(actions(*result), std::vector<std::string>{"unchanged a"});
  EXPECT_EQ(result->changes[0].summary.id, 7);
  EXPECT_EQ(result->changes[0].summary.key, "wh_stored_a");
}

TEST_F(PlanApply, UpdatesWhenAnyFieldDiffers) {
  auto row = stored("a", 7);
  auto result = plan({row}, {input("a", "    policy: {rate_limit: {requests: 5}}\n")});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_EQ(actions(*result), std::vector<std::string>{"update a"});
  const auto& change = result->changes[0];
  EXPECT_EQ(change.expected_version, 3);
  EXPECT_EQ(change.row.spec.id, 7);
  EXPECT_EQ(change.row.spec.key, "wh_stored_a");  // absent from the file: kept
  EXPECT_EQ(change.row.spec.policy.rate_limit.requests, 5);
}

// Verifies that the file is the whole truth: a field it omits returns to its default.
TEST_F(PlanApply, ResetsFieldsTheFileOmits) {
  auto row = stored("a", 7, "    description: old\n");
  auto result = plan({row}, {input("a")});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(actions(*result), std::vector<std::string>{"update a"});
  EXPECT_EQ(result->changes[0].row.spec.description, "");
}

TEST_F(PlanApply, DeletesOnlyWithPrune) {
  std::vector<db::StoredTrigger> existing{stored("a", 1), stored("gone", 2)};
  auto kept = plan(existing, {input("a")}, false);
  ASSERT_TRUE(kept.has_value()) << kept.error().message;
  EXPECT_EQ(actions(*kept), std::vector<std::string>{"unchanged a"});

  auto pruned = plan(existing, {input("a"), input("b")}, true);
  ASSERT_TRUE(pruned.has_value()) << pruned.error().message;
  EXPECT_EQ(actions(*pruned), (std::vector<std::string>{"unchanged a", "create b", "delete gone"}));
  EXPECT_EQ(pruned->changes[2].summary.id, 2);
  EXPECT_EQ(pruned->changes[2].summary.key, "wh_stored_gone");
}

TEST_F(PlanApply, PruneWithAnEmptyFileDeletesEverything) {
  auto result = plan({stored("a", 1), stored("b", 2)}, {}, true);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(actions(*result), (std::vector<std::string>{"delete a", "delete b"}));
}

// --- secrets
// ---------------------------------------------------------------------------------------

const std::string kHmacFromEnv = "    policy: {hmac: {enabled: true, secret_env: HG_SECRET}}\n";
const std::string kHmacInline = "    policy: {hmac: {enabled: true, secret: " + kSecret + "}}\n";
const std::string kHmacNoSecret = "    policy: {hmac: {enabled: true}}\n";

db::StoredTrigger with_secret(db::StoredTrigger row, const std::string& secret) {
  row.secret_enc = test_box().seal(secret, row.spec.key);
  return row;
}

TEST_F(PlanApply, ReadsTheSecretFromTheEnvironment) {
  env_["HG_SECRET"] = kSecret;
  auto result = plan({}, {input("a", kHmacFromEnv)});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->changes[0].secret, kSecret);
  EXPECT_FALSE(result->changes[0].secret_generated);
}

TEST_F(PlanApply, FailsWhenSecretEnvNamesAnUnsetVariable) {
  auto result = plan({}, {input("a"), input("b", kHmacFromEnv)});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, "invalid_request");
  EXPECT_EQ(result.error().field, "triggers[1].policy.hmac.secret_env");
  EXPECT_EQ(result.error().message,
            "triggers[1].policy.hmac.secret_env: environment variable HG_SECRET is not set");
}

TEST_F(PlanApply, ValidatesASecretFromTheEnvironmentUnderItsField) {
  env_["HG_SECRET"] = "short";
  auto result = plan({}, {input("a", kHmacFromEnv)});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().message,
            "triggers[0].policy.hmac.secret_env: must be between 16 and 256 bytes (got 5)");
}

TEST_F(PlanApply, IsUnchangedWhenTheFileSecretEqualsTheStoredOne) {
  auto row = with_secret(stored("a", 1, kHmacInline), kSecret);
  auto result = plan({row}, {input("a", kHmacInline)});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(actions(*result), std::vector<std::string>{"unchanged a"});
  EXPECT_FALSE(result->changes[0].secret.has_value());
}

TEST_F(PlanApply, UpdatesWhenOnlyTheSecretChanged) {
  auto row = with_secret(stored("a", 1, kHmacInline), "another-secret-0123456789");
  auto result = plan({row}, {input("a", kHmacInline)});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(actions(*result), std::vector<std::string>{"update a"});
  EXPECT_EQ(result->changes[0].secret, kSecret);
}

TEST_F(PlanApply, KeepsTheStoredSecretWhenTheFileGivesNone) {
  auto row = with_secret(stored("a", 1, kHmacNoSecret), kSecret);
  auto result = plan({row}, {input("a", kHmacNoSecret)});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(actions(*result), std::vector<std::string>{"unchanged a"});
  EXPECT_FALSE(result->changes[0].secret.has_value());
}

TEST_F(PlanApply, GeneratesASecretWhenHmacHasNoneAnywhere) {
  auto created = plan({}, {input("a", kHmacNoSecret)});
  ASSERT_TRUE(created.has_value()) << created.error().message;
  const auto& change = created->changes[0];
  EXPECT_TRUE(change.secret_generated);
  ASSERT_TRUE(change.secret.has_value());
  EXPECT_TRUE(std::regex_match(*change.secret, std::regex("^[0-9A-Za-z]{43}$"))) << *change.secret;

  // Enabling HMAC on a stored trigger without a secret is an update that generates one.
  auto updated = plan({stored("a", 1)}, {input("a", kHmacNoSecret)});
  ASSERT_TRUE(updated.has_value()) << updated.error().message;
  EXPECT_EQ(actions(*updated), std::vector<std::string>{"update a"});
  EXPECT_TRUE(updated->changes[0].secret_generated);
}

TEST_F(PlanApply, GeneratesAStandardWebhooksSecretInItsOwnFormat) {
  auto result =
      plan({}, {input("a", "    policy: {hmac: {enabled: true, scheme: standard-webhooks}}\n")});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  const auto& secret = *result->changes[0].secret;
  ASSERT_TRUE(secret.starts_with("whsec_")) << secret;
  EXPECT_EQ(policy::from_base64(secret.substr(6)).value_or("").size(), 32u);
}

TEST_F(PlanApply, ResealsTheSecretsWhenTheKeyChanges) {
  auto row = with_secret(stored("a", 1, kHmacNoSecret), kSecret);
  row.previous_secret_enc = box_.seal("previous-secret-0123456789", row.spec.key);
  auto result = plan({row}, {input("a", kHmacNoSecret + "    key: wh_new_key\n")});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  const auto& change = result->changes[0];
  EXPECT_EQ(change.summary.action, "update");
  EXPECT_EQ(change.secret, kSecret);
  EXPECT_EQ(change.previous_secret, "previous-secret-0123456789");
  EXPECT_FALSE(change.secret_generated);
}

TEST_F(PlanApply, FailsWhenTheStoredSecretDoesNotOpen) {
  auto row = stored("a", 1, kHmacInline);
  row.secret_enc =
      policy::SecretBox::from_raw_key(std::string(32, 'x'))->seal(kSecret, row.spec.key);
  auto result = plan({row}, {input("a", kHmacInline)});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, "secret_unreadable");
  EXPECT_EQ(result.error().field, "triggers[0].policy.hmac.secret");
}

TEST_F(PlanApply, RejectsAStandardWebhooksSecretThatIsNotBase64) {
  auto result = plan({}, {input("a",
                                "    policy: {hmac: {enabled: true, scheme: standard-webhooks, "
                                "secret: 'not base64 at all!!'}}\n")});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().field, "triggers[0].policy.hmac.secret");
}

// --- validation and keys
// ----------------------------------------------------------------------------

TEST_F(PlanApply, ValidatesEverySpecAndNamesTheEntry) {
  auto result = plan({}, {input("a"), input("b", "    policy: {rate_limit: {requests: 0}}\n")});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, "invalid_request");
  EXPECT_EQ(result.error().field, "triggers[1].policy.rate_limit.requests");
  EXPECT_EQ(result.error().message,
            "triggers[1].policy.rate_limit.requests: must be between 1 and 1000000 (got 0)");
}

TEST_F(PlanApply, RejectsAKeyHeldByAnotherTrigger) {
  auto other = stored("other", 2);
  auto result = plan({other}, {input("a", "    key: wh_stored_other\n")});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().message, "triggers[0].key: already used by trigger other");

  // ... unless this run prunes that trigger.
  auto pruned = plan({other}, {input("a", "    key: wh_stored_other\n")}, true);
  ASSERT_TRUE(pruned.has_value()) << pruned.error().message;
  EXPECT_EQ(actions(*pruned), (std::vector<std::string>{"create a", "delete other"}));
}

}  // namespace
}  // namespace hookguard::gateway
