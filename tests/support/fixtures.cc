#include "tests/support/fixtures.h"

#include <pqxx/pqxx>
#include <stdexcept>
#include <thread>

#include "policy/encoding.h"
#include "policy/secret_box.h"
#include "tests/support/gateway_process.h"

namespace hookguard::testing {

namespace {

policy::SecretBox test_box() {
  auto box = policy::SecretBox::from_base64_key(kTestMasterKey);
  if (!box) throw std::runtime_error("test master key: " + box.error().message);
  return *box;
}

}  // namespace

policy::TriggerSpec basic_trigger(const std::string& name, const std::string& upstream_url) {
  policy::TriggerSpec spec;
  spec.name = name;
  spec.upstream_url = upstream_url;
  spec.upstream_timeout_ms = 3000;
  return spec;
}

db::StoredTrigger insert_trigger(const std::string& dsn, policy::TriggerSpec spec,
                                 const std::string& secret) {
  if (spec.key.empty()) spec.key = policy::generate_trigger_key();
  db::StoredTrigger row;
  row.spec = spec;
  if (!secret.empty()) row.secret_enc = test_box().seal(secret, spec.key);
  db::TriggerStore store(dsn);
  auto inserted = store.insert(row);
  if (!inserted) throw std::runtime_error("insert_trigger: " + inserted.error().message);
  return *inserted;
}

db::StoredTrigger update_trigger(const std::string& dsn, const db::StoredTrigger& current,
                                 const policy::TriggerSpec& spec, const std::string& secret) {
  db::StoredTrigger row = current;
  row.spec = spec;
  row.spec.id = current.spec.id;
  row.spec.key = current.spec.key;
  if (!secret.empty()) row.secret_enc = test_box().seal(secret, row.spec.key);
  db::TriggerStore store(dsn);
  auto updated = store.update(row, current.spec.version);
  if (!updated) throw std::runtime_error("update_trigger: " + updated.error().message);
  return *updated;
}

std::optional<LogRow> wait_for_log_row(const std::string& dsn, const std::string& request_id,
                                       std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  pqxx::connection conn(dsn);
  while (std::chrono::steady_clock::now() < deadline) {
    pqxx::work tx(conn);
    auto r =
        tx.exec_params("SELECT * FROM webhook_event_log WHERE request_id = $1::uuid", request_id);
    tx.commit();
    if (!r.empty()) {
      LogRow row;
      for (const auto& field : r[0]) {
        row[field.name()] =
            field.is_null() ? std::nullopt : std::optional<std::string>(field.c_str());
      }
      return row;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return std::nullopt;
}

std::string query_value(const std::string& dsn, const std::string& sql) {
  pqxx::connection conn(dsn);
  pqxx::work tx(conn);
  auto r = tx.exec(sql);
  tx.commit();
  if (r.empty()) return "";
  return r[0][0].is_null() ? "NULL" : r[0][0].c_str();
}

bool wait_for_value(const std::string& dsn, const std::string& sql, const std::string& expected,
                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (query_value(dsn, sql) == expected) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

}  // namespace hookguard::testing
