// Integration tests of db/trigger_store.cc against the PostgreSQL of deploy/local.
#include "db/trigger_store.h"

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <regex>
#include <string>

#include "tests/support/test_env.h"

namespace hookguard::db {
namespace {

using policy::HmacAlgorithm;
using policy::Mode;
using policy::SignatureScheme;
using policy::StoreErrorMode;

policy::SecretBox box_with_key(char fill) {
  return *policy::SecretBox::from_raw_key(std::string(policy::SecretBox::kKeyBytes, fill));
}

// Every field away from its default, so a column mixed up with another shows.
StoredTrigger full_trigger(const policy::SecretBox& box) {
  StoredTrigger t;
  auto& s = t.spec;
  s.key = "wh_Abc123_-xyzXYZ0123456789abcdefgh";
  s.name = "github-main";
  s.description = "line one\n\"quoted\", {braced} and \\backslash\\";
  s.enabled = false;
  s.mode = Mode::kMonitor;
  s.methods = {"POST", "PUT"};
  s.upstream_url = "https://127.0.0.1:9443/hook?x=1";
  s.upstream_timeout_ms = 4321;
  s.policy.payload_size_limit_kb = 77;
  s.policy.ip_allowlist.enabled = true;
  s.policy.ip_allowlist.cidrs = {"192.30.252.0/22", "10.0.0.1/32", "2001:db8::/32"};
  s.policy.rate_limit.enabled = true;
  s.policy.rate_limit.requests = 12345;
  s.policy.rate_limit.window_seconds = 3600;
  s.policy.rate_limit.per_source_ip = true;
  s.policy.rate_limit.on_store_error = StoreErrorMode::kClosed;
  s.policy.hmac.enabled = true;
  s.policy.hmac.scheme = SignatureScheme::kGeneric;
  s.policy.hmac.algorithm = HmacAlgorithm::kSha512;
  s.policy.hmac.header = "X-Custom-Signature";
  s.policy.hmac.timestamp_tolerance_seconds = 42;
  t.secret_enc = box.seal("current-secret-0123456789", s.key);
  t.previous_secret_enc = box.seal("previous-secret-0123456789", s.key);
  t.previous_valid_until_unix_ms = 1767225600123;  // 2026-01-01T00:00:00.123Z
  return t;
}

StoredTrigger minimal_trigger(const std::string& name, const std::string& key) {
  StoredTrigger t;
  t.spec.name = name;
  t.spec.key = key;
  t.spec.upstream_url = "http://127.0.0.1:9000/" + name;
  return t;
}

void expect_same_row(const StoredTrigger& actual, const StoredTrigger& expected) {
  EXPECT_EQ(actual.spec, expected.spec);
  EXPECT_EQ(actual.secret_enc, expected.secret_enc);
  EXPECT_EQ(actual.previous_secret_enc, expected.previous_secret_enc);
  EXPECT_EQ(actual.previous_valid_until_unix_ms, expected.previous_valid_until_unix_ms);
  EXPECT_EQ(actual.created, expected.created);
  EXPECT_EQ(actual.updated, expected.updated);
}

const std::regex kIso8601(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");

TEST(TriggerStore, InsertAndFindRoundTripEveryField) {
  testing::PgTestDb db;
  TriggerStore store(db.dsn());
  const auto box = box_with_key('k');
  const StoredTrigger input = full_trigger(box);

  auto inserted = store.insert(input);
  ASSERT_TRUE(inserted) << inserted.error().message;
  EXPECT_GT(inserted->spec.id, 0);
  EXPECT_EQ(inserted->spec.version, 1);
  EXPECT_TRUE(std::regex_match(inserted->created, kIso8601)) << inserted->created;
  EXPECT_EQ(inserted->created, inserted->updated);

  StoredTrigger expected = input;
  expected.spec.id = inserted->spec.id;
  expected.spec.version = 1;
  expected.created = inserted->created;
  expected.updated = inserted->updated;
  expect_same_row(*inserted, expected);

  auto by_id = store.find_by_id(inserted->spec.id);
  ASSERT_TRUE(by_id) << by_id.error().message;
  ASSERT_TRUE(by_id->has_value());
  expect_same_row(**by_id, expected);

  auto by_name = store.find_by_name("github-main");
  ASSERT_TRUE(by_name && by_name->has_value());
  expect_same_row(**by_name, expected);

  auto all = store.list_all();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  expect_same_row(all->front(), expected);

  // The columns themselves hold the typed values analysts query.
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  const auto row = tx.exec1(
      "SELECT ip_allowlist::text, methods::text, mode, hmac_previous_valid_until ="
      " '2026-01-01T00:00:00.123Z'::timestamptz, octet_length(hmac_secret_enc)"
      " FROM webhook_trigger");
  EXPECT_EQ(row[0].as<std::string>(), "{192.30.252.0/22,10.0.0.1/32,2001:db8::/32}");
  EXPECT_EQ(row[1].as<std::string>(), "{POST,PUT}");
  EXPECT_EQ(row[2].as<std::string>(), "monitor");
  EXPECT_TRUE(row[3].as<bool>());
  EXPECT_EQ(row[4].as<std::size_t>(), input.secret_enc->size());
}

TEST(TriggerStore, AbsentSecretsAndDefaultsRoundTrip) {
  testing::PgTestDb db;
  TriggerStore store(db.dsn());
  auto inserted = store.insert(minimal_trigger("plain", "wh_plain"));
  ASSERT_TRUE(inserted) << inserted.error().message;
  auto found = store.find_by_id(inserted->spec.id);
  ASSERT_TRUE(found && found->has_value());
  const StoredTrigger& t = **found;
  EXPECT_FALSE(t.secret_enc.has_value());
  EXPECT_FALSE(t.previous_secret_enc.has_value());
  EXPECT_EQ(t.previous_valid_until_unix_ms, 0);
  EXPECT_EQ(t.spec.methods, std::vector<std::string>{"POST"});
  EXPECT_TRUE(t.spec.policy.ip_allowlist.cidrs.empty());
  EXPECT_EQ(t.spec.policy, policy::TriggerPolicy{});
}

TEST(TriggerStore, FindReturnsNothingForUnknownIdOrName) {
  testing::PgTestDb db;
  TriggerStore store(db.dsn());
  auto by_id = store.find_by_id(987654);
  ASSERT_TRUE(by_id);
  EXPECT_FALSE(by_id->has_value());
  auto by_name = store.find_by_name("nobody");
  ASSERT_TRUE(by_name);
  EXPECT_FALSE(by_name->has_value());
}

TEST(TriggerStore, UpdateWithCurrentVersionChangesRowAndBumpsVersion) {
  testing::PgTestDb db;
  TriggerStore store(db.dsn());
  auto inserted = store.insert(minimal_trigger("svc", "wh_svc"));
  ASSERT_TRUE(inserted);

  StoredTrigger changed = *inserted;
  changed.spec.description = "now with an allowlist";
  changed.spec.policy.ip_allowlist = {true, {"203.0.113.0/24"}};
  auto updated = store.update(changed, 1);
  ASSERT_TRUE(updated) << updated.error().message;
  EXPECT_EQ(updated->spec.version, 2);
  EXPECT_EQ(updated->spec.description, "now with an allowlist");
  EXPECT_EQ(updated->spec.policy.ip_allowlist.cidrs, std::vector<std::string>{"203.0.113.0/24"});
  EXPECT_EQ(updated->created, inserted->created);

  auto reread = store.find_by_id(inserted->spec.id);
  ASSERT_TRUE(reread && reread->has_value());
  EXPECT_EQ((*reread)->spec, updated->spec);
}

TEST(TriggerStore, UpdateWithStaleVersionIsConflictAndChangesNothing) {
  testing::PgTestDb db;
  TriggerStore store(db.dsn());
  auto inserted = store.insert(minimal_trigger("svc", "wh_svc"));
  ASSERT_TRUE(inserted);
  StoredTrigger first = *inserted;
  first.spec.description = "first writer";
  ASSERT_TRUE(store.update(first, 1));

  StoredTrigger second = *inserted;
  second.spec.description = "second writer, read version 1";
  auto stale = store.update(second, 1);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, "conflict");
  EXPECT_EQ(stale.error().field, "version");

  auto reread = store.find_by_id(inserted->spec.id);
  ASSERT_TRUE(reread && reread->has_value());
  EXPECT_EQ((*reread)->spec.description, "first writer");
  EXPECT_EQ((*reread)->spec.version, 2);
}

TEST(TriggerStore, UpdateOfDeletedTriggerIsNotFound) {
  testing::PgTestDb db;
  TriggerStore store(db.dsn());
  auto inserted = store.insert(minimal_trigger("svc", "wh_svc"));
  ASSERT_TRUE(inserted);
  auto removed = store.remove(inserted->spec.id);
  ASSERT_TRUE(removed);
  EXPECT_TRUE(*removed);
  auto again = store.remove(inserted->spec.id);
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);

  auto updated = store.update(*inserted, 1);
  ASSERT_FALSE(updated);
  EXPECT_EQ(updated.error().code, "not_found");
  auto found = store.find_by_id(inserted->spec.id);
  ASSERT_TRUE(found);
  EXPECT_FALSE(found->has_value());
}

TEST(TriggerStore, DuplicateNameOrKeyIsConflictNamingTheField) {
  testing::PgTestDb db;
  TriggerStore store(db.dsn());
  ASSERT_TRUE(store.insert(minimal_trigger("taken", "wh_one")));

  auto same_name = store.insert(minimal_trigger("taken", "wh_two"));
  ASSERT_FALSE(same_name);
  EXPECT_EQ(same_name.error().code, "conflict");
  EXPECT_EQ(same_name.error().field, "name");
  EXPECT_NE(same_name.error().message.find("taken"), std::string::npos);

  auto same_key = store.insert(minimal_trigger("other", "wh_one"));
  ASSERT_FALSE(same_key);
  EXPECT_EQ(same_key.error().code, "conflict");
  EXPECT_EQ(same_key.error().field, "key");

  // Renaming onto a taken name through update is the same conflict.
  auto other = store.insert(minimal_trigger("other", "wh_other"));
  ASSERT_TRUE(other);
  StoredTrigger renamed = *other;
  renamed.spec.name = "taken";
  auto clash = store.update(renamed, other->spec.version);
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().code, "conflict");
  EXPECT_EQ(clash.error().field, "name");

  auto all = store.list_all();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 2u);
}

TEST(TriggerStore, InvalidSpecIsRejectedBeforeReachingTheDatabase) {
  testing::PgTestDb db;
  TriggerStore store(db.dsn());
  StoredTrigger bad = minimal_trigger("bad", "wh/not-url-safe");
  auto result = store.insert(bad);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().field, "key");

  StoredTrigger nul = minimal_trigger("nul", "wh_nul");
  nul.spec.description = std::string("before\0after", 12);
  auto cut = store.insert(nul);
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().field, "description");

  auto all = store.list_all();
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->empty());
}

TEST(TriggerStore, CidrWithHostBitsIsInvalidRequest) {
  testing::PgTestDb db;
  TriggerStore store(db.dsn());
  StoredTrigger t = minimal_trigger("cidr", "wh_cidr");
  t.spec.policy.ip_allowlist = {true, {"10.1.2.3/8"}};
  auto result = store.insert(t);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, "invalid_request");
  EXPECT_EQ(result.error().field.rfind("policy.ip_allowlist.cidrs", 0), 0u) << result.error().field;
}

TEST(TriggerStore, UnreachableDatabaseIsDbUnavailableWithoutPassword) {
  TriggerStore store("postgresql://hookguard:Pa55wordXyz@127.0.0.1:1/x?connect_timeout=2");
  auto result = store.list_all();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, "db_unavailable");
  EXPECT_EQ(result.error().message.find("Pa55wordXyz"), std::string::npos);
}

TEST(TriggerStore, CompileStoredOpensSecretsBoundToTheKey) {
  testing::PgTestDb db;
  TriggerStore store(db.dsn());
  const auto box = box_with_key('k');
  auto inserted = store.insert(full_trigger(box));
  ASSERT_TRUE(inserted) << inserted.error().message;

  auto compiled = compile_stored(*inserted, box);
  ASSERT_TRUE(compiled) << compiled.error().message;
  EXPECT_EQ(compiled->secrets.current, "current-secret-0123456789");
  EXPECT_EQ(compiled->secrets.previous, "previous-secret-0123456789");
  EXPECT_EQ(compiled->secrets.previous_valid_until_unix_ms, 1767225600123);
  EXPECT_EQ(compiled->spec, inserted->spec);

  auto wrong_master = compile_stored(*inserted, box_with_key('x'));
  ASSERT_FALSE(wrong_master);
  EXPECT_EQ(wrong_master.error().code, "secret_unreadable");

  // A sealed secret copied onto another trigger does not open there (AAD = trigger key).
  StoredTrigger moved = *inserted;
  moved.spec.key = "wh_someone_else";
  auto moved_result = compile_stored(moved, box);
  ASSERT_FALSE(moved_result);
  EXPECT_EQ(moved_result.error().code, "secret_unreadable");
  EXPECT_EQ(moved_result.error().message.find("current-secret"), std::string::npos);
}

}  // namespace
}  // namespace hookguard::db
