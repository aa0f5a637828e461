#include "db/trigger_store.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <utility>
#include <vector>

#include "db/pg_error.h"
#include "db/pg_socket_guard.h"

namespace hookguard::db {
namespace {

using policy::TriggerSpec;

// Column order shared by every SELECT/RETURNING; row_to_trigger() reads by these indexes.
constexpr const char* kColumns =
    "id, key, name, description, enabled, upstream_url, upstream_timeout_ms,"
    " array_to_json(methods)::text, mode, payload_size_limit_kb, ip_allowlist_enabled,"
    " array_to_json(ip_allowlist::text[])::text, rate_limit_enabled,"
    " rate_limit_requests, rate_limit_window_seconds, rate_limit_per_source_ip,"
    " rate_limit_on_store_error, hmac_enabled, hmac_scheme, hmac_algorithm, hmac_header,"
    " hmac_secret_enc, hmac_previous_secret_enc,"
    " COALESCE((extract(epoch FROM hmac_previous_valid_until) * 1000)::bigint, 0),"
    " timestamp_tolerance_seconds,"
    " to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
    " to_char(updated AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), version,"
    " replay_enabled, replay_window_seconds, replay_header, events_enabled,"
    " array_to_json(events_allow)::text, events_source, handshake";

// Parameters $1..$31 of insert and update, in this order (see BoundColumns).
constexpr const char* kInsert =
    "INSERT INTO webhook_trigger (key, name, description, enabled, upstream_url,"
    " upstream_timeout_ms, methods, mode, payload_size_limit_kb, ip_allowlist_enabled,"
    " ip_allowlist, rate_limit_enabled, rate_limit_requests, rate_limit_window_seconds,"
    " rate_limit_per_source_ip, rate_limit_on_store_error, hmac_enabled, hmac_scheme,"
    " hmac_algorithm, hmac_header, hmac_secret_enc, hmac_previous_secret_enc,"
    " hmac_previous_valid_until, timestamp_tolerance_seconds, replay_enabled,"
    " replay_window_seconds, replay_header, events_enabled, events_allow, events_source,"
    " handshake)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8, $9, $10, $11::text[]::cidr[], $12, $13,"
    " $14, $15, $16, $17, $18, $19, $20, decode($21, 'hex'), decode($22, 'hex'),"
    " CASE WHEN $23::bigint = 0 THEN NULL"
    " ELSE 'epoch'::timestamptz + $23::bigint * interval '1 millisecond' END, $24, $25, $26,"
    " $27, $28, $29::text[], $30, $31)"
    " RETURNING ";

// version and updated are moved on by the hookguard_trigger_touch trigger (0001_init.sql).
constexpr const char* kUpdate =
    "UPDATE webhook_trigger SET key = $1, name = $2, description = $3, enabled = $4,"
    " upstream_url = $5, upstream_timeout_ms = $6, methods = $7::text[], mode = $8,"
    " payload_size_limit_kb = $9, ip_allowlist_enabled = $10,"
    " ip_allowlist = $11::text[]::cidr[], rate_limit_enabled = $12, rate_limit_requests = $13,"
    " rate_limit_window_seconds = $14, rate_limit_per_source_ip = $15,"
    " rate_limit_on_store_error = $16, hmac_enabled = $17, hmac_scheme = $18,"
    " hmac_algorithm = $19, hmac_header = $20, hmac_secret_enc = decode($21, 'hex'),"
    " hmac_previous_secret_enc = decode($22, 'hex'),"
    " hmac_previous_valid_until = CASE WHEN $23::bigint = 0 THEN NULL"
    " ELSE 'epoch'::timestamptz + $23::bigint * interval '1 millisecond' END,"
    " timestamp_tolerance_seconds = $24, replay_enabled = $25, replay_window_seconds = $26,"
    " replay_header = $27, events_enabled = $28, events_allow = $29::text[],"
    " events_source = $30, handshake = $31"
    " WHERE id = $32 AND version = $33 RETURNING ";

// A PostgreSQL array literal: every element double-quoted with \ and " escaped, so no element
// can end the literal early or add elements.
std::string to_array_literal(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

// The text[] columns are selected as JSON (array_to_json): PostgreSQL's own array format leaves
// an element such as ' unquoted, and libpqxx 6.4's array_parser takes a leading ' for a quote:
// it asserts (aborting the process) on {'} and reads {'a'} back as "a". JSON has one quoting.
std::vector<std::string> from_array(const pqxx::field& field) {
  std::vector<std::string> out;
  if (field.is_null()) return out;
  for (const auto& item : nlohmann::json::parse(field.c_str())) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

std::string to_hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0x0f];
  }
  return out;
}

std::optional<std::string> from_bytea(const pqxx::field& field) {
  if (field.is_null()) return std::nullopt;
  return pqxx::binarystring(field).str();
}

// libpq passes text parameters as C strings: an embedded NUL would silently cut the value.
Result<void> check_no_nul(const TriggerSpec& spec) {
  auto bad = [](const std::string& s) { return s.find('\0') != std::string::npos; };
  const std::pair<const char*, const std::string*> fields[] = {
      {"key", &spec.key},
      {"name", &spec.name},
      {"description", &spec.description},
      {"upstream_url", &spec.upstream_url},
      {"policy.hmac.header", &spec.policy.hmac.header},
      {"policy.replay.header", &spec.policy.replay.header},
      {"policy.events.source", &spec.policy.events.source}};
  for (const auto& [field, value] : fields) {
    if (bad(*value)) return fail("invalid_request", std::string(field) + ": contains NUL", field);
  }
  for (const auto& m : spec.methods) {
    if (bad(m)) return fail("invalid_request", "methods: contains NUL", "methods");
  }
  for (const auto& e : spec.policy.events.allow) {
    if (bad(e)) {
      return fail("invalid_request", "policy.events.allow: contains NUL", "policy.events.allow");
    }
  }
  for (const auto& c : spec.policy.ip_allowlist.cidrs) {
    if (bad(c)) {
      return fail("invalid_request", "policy.ip_allowlist.cidrs: contains NUL",
                  "policy.ip_allowlist.cidrs");
    }
  }
  return {};
}

template <class E>
Result<E> parse_enum(Result<E> parsed, const char* column) {
  if (!parsed) {
    return fail("db_corrupt",
                std::string("webhook_trigger.") + column + ": " + parsed.error().message);
  }
  return parsed;
}

Result<StoredTrigger> row_to_trigger(const pqxx::row& row) {
  StoredTrigger t;
  TriggerSpec& s = t.spec;
  s.id = row[0].as<std::int64_t>();
  s.key = row[1].as<std::string>();
  s.name = row[2].as<std::string>();
  s.description = row[3].as<std::string>();
  s.enabled = row[4].as<bool>();
  s.upstream_url = row[5].as<std::string>();
  s.upstream_timeout_ms = row[6].as<int>();
  s.methods = from_array(row[7]);
  auto mode = parse_enum(policy::parse_mode(row[8].as<std::string>()), "mode");
  if (!mode) return tl::unexpected(mode.error());
  s.mode = *mode;
  s.policy.payload_size_limit_kb = row[9].as<int>();
  s.policy.ip_allowlist.enabled = row[10].as<bool>();
  s.policy.ip_allowlist.cidrs = from_array(row[11]);
  auto& rate = s.policy.rate_limit;
  rate.enabled = row[12].as<bool>();
  rate.requests = row[13].as<std::int64_t>();
  rate.window_seconds = row[14].as<std::int64_t>();
  rate.per_source_ip = row[15].as<bool>();
  auto store_error = parse_enum(policy::parse_store_error_mode(row[16].as<std::string>()),
                                "rate_limit_on_store_error");
  if (!store_error) return tl::unexpected(store_error.error());
  rate.on_store_error = *store_error;
  auto& hmac = s.policy.hmac;
  hmac.enabled = row[17].as<bool>();
  auto scheme =
      parse_enum(policy::parse_signature_scheme(row[18].as<std::string>()), "hmac_scheme");
  if (!scheme) return tl::unexpected(scheme.error());
  hmac.scheme = *scheme;
  auto algorithm =
      parse_enum(policy::parse_hmac_algorithm(row[19].as<std::string>()), "hmac_algorithm");
  if (!algorithm) return tl::unexpected(algorithm.error());
  hmac.algorithm = *algorithm;
  hmac.header = row[20].as<std::string>();
  t.secret_enc = from_bytea(row[21]);
  t.previous_secret_enc = from_bytea(row[22]);
  t.previous_valid_until_unix_ms = row[23].as<std::int64_t>();
  hmac.timestamp_tolerance_seconds = row[24].as<int>();
  t.created = row[25].as<std::string>();
  t.updated = row[26].as<std::string>();
  s.version = row[27].as<std::int64_t>();
  auto& replay = s.policy.replay;
  replay.enabled = row[28].as<bool>();
  replay.window_seconds = row[29].as<std::int64_t>();
  replay.header = row[30].as<std::string>();
  auto& events = s.policy.events;
  events.enabled = row[31].as<bool>();
  events.allow = from_array(row[32]);
  events.source = row[33].as<std::string>();
  auto handshake = parse_enum(policy::parse_handshake(row[34].as<std::string>()), "handshake");
  if (!handshake) return tl::unexpected(handshake.error());
  s.policy.handshake = *handshake;
  return t;
}

// The server's DETAIL line can quote the whole failing row, sealed secrets included: an error
// that may reach an API client keeps only the first line.
std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.rfind("ERROR:  ", 0) == 0) line.erase(0, 8);
  return line;
}

// Which unique constraint fired, from the server's message (libpqxx 6.4 does not expose
// PG_DIAG_CONSTRAINT_NAME).
Error unique_error(const pqxx::unique_violation& e, const TriggerSpec& spec) {
  const std::string what = e.what();
  if (what.find("webhook_trigger_name_key") != std::string::npos) {
    return Error{"conflict", "name: a trigger named \"" + spec.name + "\" already exists", "name"};
  }
  if (what.find("webhook_trigger_key_key") != std::string::npos) {
    return Error{"conflict", "key: another trigger already uses this key", "key"};
  }
  return Error{"conflict", "a unique value is already taken", ""};
}

}  // namespace

struct TriggerStore::Impl {
  std::string dsn;
  PgSocketGuard* guard = nullptr;
  std::unique_ptr<pqxx::connection> conn;
  PgSocketGuard::Tracked tracked;  // conn's socket in `guard`; released before conn closes

  // libpqxx 6 would try to reactivate a broken connection; a fresh one is more predictable.
  pqxx::connection& connection() {
    if (!conn || !conn->is_open()) {
      tracked = PgSocketGuard::Tracked();
      conn = std::make_unique<pqxx::connection>(dsn);
      tracked = PgSocketGuard::track(guard, *conn);
    }
    return *conn;
  }

  Error to_error(const std::exception& e, const std::string& context) {
    if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
        dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
      tracked = PgSocketGuard::Tracked();
      conn.reset();
    }
    return error_from_exception(e, "trigger store: " + context, dsn);
  }

  // Runs `body(tx)` in a transaction and commits; every exception becomes an Error.
  template <class T, class Body>
  Result<T> run(const std::string& context, const TriggerSpec* spec, Body&& body) {
    try {
      pqxx::work tx(connection());
      Result<T> result = body(tx);
      if (result) tx.commit();
      return result;
    } catch (const pqxx::unique_violation& e) {
      if (spec != nullptr) return tl::unexpected(unique_error(e, *spec));
      return tl::unexpected(to_error(e, context));
    } catch (const pqxx::check_violation& e) {
      return tl::unexpected(
          Error{"invalid_request", "rejected by the database: " + first_line(e.what()), ""});
    } catch (const pqxx::data_exception& e) {
      if (spec == nullptr) return tl::unexpected(to_error(e, context));
      // The one user-supplied value PostgreSQL parses itself is a CIDR of the allowlist.
      return tl::unexpected(
          Error{"invalid_request",
                "policy.ip_allowlist.cidrs: rejected by the database: " + first_line(e.what()),
                "policy.ip_allowlist.cidrs"});
    } catch (const std::exception& e) {
      return tl::unexpected(to_error(e, context));
    }
  }
};

TriggerStore::TriggerStore(std::string dsn, PgSocketGuard* guard)
    : impl_(std::make_unique<Impl>()) {
  impl_->dsn = std::move(dsn);
  impl_->guard = guard;
}

TriggerStore::~TriggerStore() = default;

Result<std::vector<StoredTrigger>> TriggerStore::list_all() {
  return impl_->run<std::vector<StoredTrigger>>(
      "list", nullptr, [](pqxx::work& tx) -> Result<std::vector<StoredTrigger>> {
        std::vector<StoredTrigger> out;
        for (const auto& row :
             tx.exec(std::string("SELECT ") + kColumns + " FROM webhook_trigger ORDER BY id")) {
          auto t = row_to_trigger(row);
          if (!t) return tl::unexpected(t.error());
          out.push_back(std::move(*t));
        }
        return out;
      });
}

Result<std::optional<StoredTrigger>> TriggerStore::find_by_name(const std::string& name) {
  if (name.find('\0') != std::string::npos) return std::optional<StoredTrigger>();
  return impl_->run<std::optional<StoredTrigger>>(
      "find by name", nullptr, [&](pqxx::work& tx) -> Result<std::optional<StoredTrigger>> {
        const auto rows = tx.exec_params(
            std::string("SELECT ") + kColumns + " FROM webhook_trigger WHERE name = $1", name);
        if (rows.empty()) return std::optional<StoredTrigger>();
        auto t = row_to_trigger(rows[0]);
        if (!t) return tl::unexpected(t.error());
        return std::optional<StoredTrigger>(std::move(*t));
      });
}

Result<std::optional<StoredTrigger>> TriggerStore::find_by_id(std::int64_t id) {
  return impl_->run<std::optional<StoredTrigger>>(
      "find by id", nullptr, [&](pqxx::work& tx) -> Result<std::optional<StoredTrigger>> {
        const auto rows = tx.exec_params(
            std::string("SELECT ") + kColumns + " FROM webhook_trigger WHERE id = $1", id);
        if (rows.empty()) return std::optional<StoredTrigger>();
        auto t = row_to_trigger(rows[0]);
        if (!t) return tl::unexpected(t.error());
        return std::optional<StoredTrigger>(std::move(*t));
      });
}

namespace {

// The values of parameters $1..$31 of kInsert/kUpdate as text; nullptr is SQL NULL.
class BoundColumns {
 public:
  explicit BoundColumns(const StoredTrigger& t) {
    const TriggerSpec& s = t.spec;
    const auto& p = s.policy;
    add(s.key);
    add(s.name);
    add(s.description);
    add(s.enabled);
    add(s.upstream_url);
    add(std::to_string(s.upstream_timeout_ms));
    add(to_array_literal(s.methods));
    add(std::string(policy::to_string(s.mode)));
    add(std::to_string(p.payload_size_limit_kb));
    add(p.ip_allowlist.enabled);
    add(to_array_literal(p.ip_allowlist.cidrs));
    add(p.rate_limit.enabled);
    add(std::to_string(p.rate_limit.requests));
    add(std::to_string(p.rate_limit.window_seconds));
    add(p.rate_limit.per_source_ip);
    add(std::string(policy::to_string(p.rate_limit.on_store_error)));
    add(p.hmac.enabled);
    add(std::string(policy::to_string(p.hmac.scheme)));
    add(std::string(policy::to_string(p.hmac.algorithm)));
    add(p.hmac.header);
    add(t.secret_enc ? std::optional<std::string>(to_hex(*t.secret_enc)) : std::nullopt);
    add(t.previous_secret_enc ? std::optional<std::string>(to_hex(*t.previous_secret_enc))
                              : std::nullopt);
    add(std::to_string(t.previous_valid_until_unix_ms));
    add(std::to_string(p.hmac.timestamp_tolerance_seconds));
    add(p.replay.enabled);
    add(std::to_string(p.replay.window_seconds));
    add(p.replay.header);
    add(p.events.enabled);
    add(to_array_literal(p.events.allow));
    add(p.events.source);
    add(std::string(policy::to_string(p.handshake)));
  }
  /// Pointers into storage_, valid as long as this object.
  std::vector<const char*> pointers() const {
    std::vector<const char*> out;
    for (const auto& v : storage_) out.push_back(v ? v->c_str() : nullptr);
    return out;
  }

 private:
  void add(std::optional<std::string> v) { storage_.push_back(std::move(v)); }
  void add(bool v) { storage_.emplace_back(v ? "true" : "false"); }
  std::vector<std::optional<std::string>> storage_;
};

}  // namespace

Result<StoredTrigger> TriggerStore::insert(const StoredTrigger& trigger) {
  const TriggerSpec& s = trigger.spec;
  if (auto ok = policy::validate(s); !ok) return tl::unexpected(ok.error());
  if (auto ok = check_no_nul(s); !ok) return tl::unexpected(ok.error());
  const BoundColumns bound(trigger);
  const auto values = bound.pointers();
  return impl_->run<StoredTrigger>("insert", &s, [&](pqxx::work& tx) -> Result<StoredTrigger> {
    const auto rows =
        tx.exec_params(std::string(kInsert) + kColumns, pqxx::prepare::make_dynamic_params(values));
    return row_to_trigger(rows.at(0));
  });
}

Result<StoredTrigger> TriggerStore::update(const StoredTrigger& trigger,
                                           std::int64_t expected_version) {
  const TriggerSpec& s = trigger.spec;
  if (auto ok = policy::validate(s); !ok) return tl::unexpected(ok.error());
  if (auto ok = check_no_nul(s); !ok) return tl::unexpected(ok.error());
  const BoundColumns bound(trigger);
  const auto values = bound.pointers();
  return impl_->run<StoredTrigger>("update", &s, [&](pqxx::work& tx) -> Result<StoredTrigger> {
    const auto rows =
        tx.exec_params(std::string(kUpdate) + kColumns, pqxx::prepare::make_dynamic_params(values),
                       s.id, expected_version);
    if (!rows.empty()) return row_to_trigger(rows[0]);
    const auto current = tx.exec_params("SELECT version FROM webhook_trigger WHERE id = $1", s.id);
    if (current.empty()) {
      return fail("not_found", "trigger " + std::to_string(s.id) + " does not exist");
    }
    return fail("conflict",
                "version: trigger " + std::to_string(s.id) + " is at version " +
                    current[0][0].as<std::string>() + ", not " + std::to_string(expected_version),
                "version");
  });
}

Result<bool> TriggerStore::remove(std::int64_t id) {
  return impl_->run<bool>("remove", nullptr, [&](pqxx::work& tx) -> Result<bool> {
    return tx.exec_params("DELETE FROM webhook_trigger WHERE id = $1", id).affected_rows() > 0;
  });
}

Result<policy::CompiledTrigger> compile_stored(const StoredTrigger& stored,
                                               const policy::SecretBox& box) {
  policy::TriggerSecrets secrets;
  // The AAD binds each sealed secret to its trigger key: a ciphertext copied between rows fails.
  if (stored.secret_enc) {
    auto current = box.open(*stored.secret_enc, stored.spec.key);
    if (!current) {
      return fail("secret_unreadable", "trigger \"" + stored.spec.name +
                                           "\": the HMAC secret cannot be opened (wrong master "
                                           "key, or the row was altered)");
    }
    secrets.current = std::move(*current);
  }
  if (stored.previous_secret_enc) {
    auto previous = box.open(*stored.previous_secret_enc, stored.spec.key);
    if (!previous) {
      return fail("secret_unreadable", "trigger \"" + stored.spec.name +
                                           "\": the previous HMAC secret cannot be opened "
                                           "(wrong master key, or the row was altered)");
    }
    secrets.previous = std::move(*previous);
    secrets.previous_valid_until_unix_ms = stored.previous_valid_until_unix_ms;
  }
  return policy::CompiledTrigger::compile(stored.spec, std::move(secrets));
}

}  // namespace hookguard::db
