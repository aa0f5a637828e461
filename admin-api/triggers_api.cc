#include "admin-api/triggers_api.h"

#include <spdlog/spdlog.h>

#include <limits>

#include "admin-api/api_values.h"
#include "policy/encoding.h"
#include "policy/trigger_codec.h"

namespace hookguard::admin {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::int64_t kDefaultPageSize = 100;
constexpr std::int64_t kMaxPageSize = 1000;

ApiReply not_found(std::int64_t id) {
  return error_reply("not_found", "trigger " + std::to_string(id) + " does not exist");
}

// The store says "conflict" for a stale version and for a taken name or key: both are 409.
ApiReply store_error(const Error& error, std::int64_t id) {
  if (error.code == "not_found") return not_found(id);
  return error_reply(error);
}

}  // namespace

Json trigger_json(const db::StoredTrigger& row) {
  return Json::parse(
      policy::trigger_to_json(row.spec, row.secret_enc.has_value(), row.created, row.updated));
}

Result<std::int64_t> parse_trigger_id(const std::string& text) {
  return parse_int(text, 1, std::numeric_limits<std::int64_t>::max(), "id");
}

TriggersApi::TriggersApi(std::string dsn, policy::SecretBox box, DeploymentLimits limits,
                         AuditLog& audit, std::int64_t default_grace_ms)
    : store_(std::move(dsn)),
      box_(std::move(box)),
      limits_(std::move(limits)),
      audit_(audit),
      default_grace_ms_(default_grace_ms) {}

void TriggersApi::audit(const std::string& action, std::int64_t trigger_id, const Json& diff) {
  // The change is committed already; a lost audit row must at least be loud in the log.
  if (auto ok = audit_.record(action, trigger_id, diff); !ok) {
    spdlog::error("admin api: audit row for {} of trigger {} not written: {}", action, trigger_id,
                  ok.error().message);
  }
}

Result<db::StoredTrigger> TriggersApi::load(const ApiRequest& request) {
  auto id = parse_trigger_id(request.params.at("id"));
  if (!id) return tl::unexpected(id.error());
  auto row = store_.find_by_id(*id);
  if (!row) return tl::unexpected(row.error());
  if (!*row) return fail("not_found", "trigger " + std::to_string(*id) + " does not exist");
  return std::move(**row);
}

ApiReply TriggersApi::list(const ApiRequest& request) {
  if (auto ok = reject_unknown_params(request.query, {"limit", "cursor"}); !ok) {
    return error_reply(ok.error());
  }
  std::int64_t limit = kDefaultPageSize;
  if (auto text = param(request.query, "limit")) {
    auto parsed = parse_int(*text, 1, kMaxPageSize, "limit");
    if (!parsed) return error_reply(parsed.error());
    limit = *parsed;
  }
  std::int64_t after = 0;
  if (auto text = param(request.query, "cursor")) {
    auto cursor = decode_cursor(*text, "t");
    if (!cursor) return error_reply(cursor.error());
    after = cursor->first;
  }
  // Triggers number in the thousands at most and every gateway holds them all in memory; the
  // page is cut from the whole ordered list.
  auto rows = store_.list_all();
  if (!rows) return error_reply(rows.error());
  Json items = Json::array();
  Json next = nullptr;
  for (const auto& row : *rows) {
    if (row.spec.id <= after) continue;
    if (static_cast<std::int64_t>(items.size()) == limit) {
      next = encode_cursor("t", items.back()["id"].get<std::int64_t>(), 0);
      break;
    }
    items.push_back(trigger_json(row));
  }
  return json_reply(200, {{"items", std::move(items)}, {"next_cursor", std::move(next)}});
}

ApiReply TriggersApi::get(const ApiRequest& request) {
  auto row = load(request);
  if (!row) return error_reply(row.error());
  return json_reply(200, trigger_json(*row));
}

ApiReply TriggersApi::create(const ApiRequest& request) {
  auto input = policy::trigger_from_json(request.body, policy::DecodeMode::kCreate);
  if (!input) return error_reply(input.error());
  policy::TriggerSpec spec = input->spec;
  spec.id = 0;
  spec.version = 0;
  if (!input->present.contains("key")) spec.key = policy::generate_trigger_key();
  if (auto ok = policy::validate(spec); !ok) return error_reply(ok.error());
  if (auto ok = check_deployment_limits(spec, limits_); !ok) return error_reply(ok.error());

  std::optional<std::string> secret = input->secret;
  bool generated = false;
  if (!secret && spec.policy.hmac.enabled) {
    secret = generate_secret(spec.policy.hmac.scheme);
    generated = true;
  }
  if (secret) {
    if (auto ok = check_secret_for(spec, *secret); !ok) return error_reply(ok.error());
  }
  db::StoredTrigger row;
  row.spec = spec;
  if (secret) row.secret_enc = box_.seal(*secret, spec.key);
  auto inserted = store_.insert(row);
  if (!inserted) return error_reply(inserted.error());

  Json body = trigger_json(*inserted);
  audit("trigger.create", inserted->spec.id,
        {{"after", body}, {"secret", secret ? (generated ? "generated" : "set") : "none"}});
  spdlog::info("admin api: created trigger {} ({})", inserted->spec.id, inserted->spec.name);
  if (secret) body["secret"] = *secret;
  ApiReply reply = json_reply(201, std::move(body));
  reply.headers.emplace_back("Location", "/api/v1/triggers/" + std::to_string(inserted->spec.id));
  return reply;
}

ApiReply TriggersApi::patch(const ApiRequest& request) {
  auto current = load(request);
  if (!current) return error_reply(current.error());
  auto input = policy::trigger_from_json(request.body, policy::DecodeMode::kPatch);
  if (!input) return error_reply(input.error());
  const std::int64_t id = current->spec.id;
  std::int64_t expected_version = current->spec.version;
  if (input->present.contains("version")) {
    expected_version = input->spec.version;
    if (expected_version != current->spec.version) {
      return error_reply("conflict",
                         "version: trigger " + std::to_string(id) + " is at version " +
                             std::to_string(current->spec.version) + ", not " +
                             std::to_string(expected_version),
                         "version");
    }
  }
  db::StoredTrigger row = *current;
  policy::apply_patch(row.spec, *input);
  if (auto ok = policy::validate(row.spec); !ok) return error_reply(ok.error());
  if (auto ok = check_deployment_limits(row.spec, limits_); !ok) return error_reply(ok.error());

  std::optional<std::string> new_secret = input->secret;
  bool generated = false;
  if (!new_secret && row.spec.policy.hmac.enabled && !row.secret_enc) {
    new_secret = generate_secret(row.spec.policy.hmac.scheme);
    generated = true;
  }
  if (new_secret) {
    if (auto ok = check_secret_for(row.spec, *new_secret); !ok) return error_reply(ok.error());
    row.secret_enc = box_.seal(*new_secret, row.spec.key);
    // A secret set by PATCH replaces the old one at once; a grace period is what rotate is for.
    row.previous_secret_enc.reset();
    row.previous_valid_until_unix_ms = 0;
  } else if (row.spec.policy.hmac.enabled && row.secret_enc &&
             row.spec.policy.hmac.scheme != current->spec.policy.hmac.scheme) {
    // A scheme change can make the stored secret unusable (standard-webhooks needs base64).
    auto opened = box_.open(*row.secret_enc, row.spec.key);
    if (!opened) return error_reply("secret_unreadable", "trigger secret does not open");
    if (auto ok = check_secret_for(row.spec, *opened); !ok) return error_reply(ok.error());
  }

  if (row.spec == current->spec && !new_secret) return json_reply(200, trigger_json(*current));
  auto updated = store_.update(row, expected_version);
  if (!updated) return store_error(updated.error(), id);

  Json body = trigger_json(*updated);
  Json diff = {{"changes", trigger_diff(trigger_json(*current), body)}};
  if (new_secret) diff["secret"] = generated ? "generated" : "replaced";
  audit("trigger.update", id, diff);
  spdlog::info("admin api: updated trigger {} to version {}", id, updated->spec.version);
  if (new_secret) body["secret"] = *new_secret;
  return json_reply(200, std::move(body));
}

ApiReply TriggersApi::remove(const ApiRequest& request) {
  auto current = load(request);
  if (!current) return error_reply(current.error());
  const std::int64_t id = current->spec.id;
  auto removed = store_.remove(id);
  if (!removed) return error_reply(removed.error());
  if (!*removed) return not_found(id);
  audit("trigger.delete", id, {{"before", trigger_json(*current)}});
  spdlog::info("admin api: deleted trigger {}", id);
  ApiReply reply;
  reply.status = 204;
  return reply;
}

ApiReply TriggersApi::rotate(const ApiRequest& request) {
  auto current = load(request);
  if (!current) return error_reply(current.error());
  const std::int64_t id = current->spec.id;
  auto parsed = parse_rotate_request(request.body, unix_now_ms(), default_grace_ms_);
  if (!parsed) return error_reply(parsed.error());
  const std::string secret =
      parsed->secret ? *parsed->secret : generate_secret(current->spec.policy.hmac.scheme);
  if (auto ok = check_secret_for(current->spec, secret, "secret"); !ok) {
    return error_reply(ok.error());
  }
  db::StoredTrigger row = *current;
  // The old secret is sealed under the same key (its AAD), so it moves over still sealed.
  row.previous_secret_enc = current->secret_enc;
  row.previous_valid_until_unix_ms = current->secret_enc ? parsed->previous_valid_until_ms : 0;
  row.secret_enc = box_.seal(secret, row.spec.key);
  auto updated = store_.update(row, current->spec.version);
  if (!updated) return store_error(updated.error(), id);

  Json until = nullptr;
  if (row.previous_secret_enc) until = format_rfc3339_ms(row.previous_valid_until_unix_ms);
  audit("trigger.secret.rotate", id,
        {{"secret", parsed->secret ? "set" : "generated"}, {"previous_valid_until", until}});
  spdlog::info("admin api: rotated the secret of trigger {}", id);
  return json_reply(200, {{"secret", secret}, {"previous_valid_until", until}});
}

}  // namespace hookguard::admin
