// Integration tests of the replay, events and handshake columns (0002_replay_events_handshake.sql)
// through db/trigger_store.cc, against the PostgreSQL of deploy/local.
#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <string>

#include "db/trigger_store.h"
#include "tests/support/test_env.h"

namespace hookguard::db {
namespace {

StoredTrigger delivery_trigger() {
  StoredTrigger t;
  auto& s = t.spec;
  s.key = "wh_delivery_0123456789abcdefghijkl";
  s.name = "delivery";
  s.upstream_url = "http://127.0.0.1:9000/";
  s.policy.hmac.enabled = true;
  s.policy.hmac.scheme = policy::SignatureScheme::kGithub;
  s.policy.replay = {true, 604800, "X-GitHub-Delivery"};
  s.policy.events = {true, {"push", "a \"quoted\", {braced} \\ event"}, "json:type"};
  s.policy.handshake = policy::Handshake::kTmi;
  return t;
}

TEST(TriggerStoreDelivery, InsertUpdateAndFindRoundTripTheDeliveryFields) {
  testing::PgTestDb db;
  TriggerStore store(db.dsn());
  auto inserted = store.insert(delivery_trigger());
  ASSERT_TRUE(inserted.has_value()) << inserted.error().message;
  auto found = store.find_by_id(inserted->spec.id);
  ASSERT_TRUE(found.has_value() && found->has_value());
  EXPECT_EQ((*found)->spec.policy, delivery_trigger().spec.policy);

  StoredTrigger changed = **found;
  changed.spec.policy.replay = {false, 60, ""};
  changed.spec.policy.events = {false, {}, ""};
  changed.spec.policy.handshake = policy::Handshake::kSlack;
  auto updated = store.update(changed, changed.spec.version);
  ASSERT_TRUE(updated.has_value()) << updated.error().message;
  EXPECT_EQ(updated->spec.policy, changed.spec.policy);
}

TEST(TriggerStoreDelivery, DefaultsApplyToRowsWrittenBeforeTheMigration) {
  testing::PgTestDb db;
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  tx.exec("INSERT INTO webhook_trigger (key, name, upstream_url) VALUES ('k1', 'n1', 'http://h/')");
  tx.commit();
  auto all = TriggerStore(db.dsn()).list_all();
  ASSERT_TRUE(all.has_value()) << all.error().message;
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].spec.policy.replay, (policy::ReplayPolicy{false, 86400, ""}));
  EXPECT_EQ((*all)[0].spec.policy.events, (policy::EventFilterPolicy{}));
  EXPECT_EQ((*all)[0].spec.policy.handshake, policy::Handshake::kNone);
}

// Verifies the CHECKs mirror validation, so a hand-written row cannot hold what the gateway
// could not compile.
TEST(TriggerStoreDelivery, TheDatabaseRefusesOutOfRangeValues) {
  testing::PgTestDb db;
  const char* bad[] = {
      "replay_window_seconds = 0",
      "replay_window_seconds = 604801",
      "replay_header = 'bad header'",
      "events_source = 'body:type'",
      "events_source = 'header:'",
      "handshake = 'twitch'",
      "events_enabled = true",  // with an empty allowlist
      "replay_enabled = true",  // without hmac
      "events_allow = array_fill('x'::text, ARRAY[101])",
  };
  for (const char* assignment : bad) {
    pqxx::connection conn(db.dsn());
    pqxx::work tx(conn);
    tx.exec(
        "INSERT INTO webhook_trigger (key, name, upstream_url) VALUES ('k1', 'n1', 'http://h/')");
    EXPECT_THROW(tx.exec(std::string("UPDATE webhook_trigger SET ") + assignment),
                 pqxx::check_violation)
        << assignment;
  }
}

}  // namespace
}  // namespace hookguard::db
