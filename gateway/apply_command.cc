#include "gateway/apply_command.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "policy/compiled_trigger.h"
#include "policy/encoding.h"
#include "policy/trigger_policy.h"

namespace hookguard::gateway {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitInvalid = 2;

constexpr const char* kInvalid = "invalid_request";

std::string entry_path(std::size_t i) { return "triggers[" + std::to_string(i) + "]"; }

tl::unexpected<Error> invalid(const std::string& field, const std::string& reason,
                              const char* code = kInvalid) {
  return fail(code, field + ": " + reason, field);
}

Result<std::string> open_secret(const policy::SecretBox& box, const std::string& sealed,
                                const db::StoredTrigger& row, const std::string& field) {
  auto opened = box.open(sealed, row.spec.key);
  if (!opened) {
    return invalid(field, "the stored secret does not open with this master key",
                   "secret_unreadable");
  }
  return opened;
}

// Plans one entry of the file against its stored row (nullptr when new).
Result<PlannedChange> plan_entry(const policy::TriggerInput& input,
                                 const db::StoredTrigger* current, const std::string& prefix,
                                 const SecretResolver& secrets) {
  std::optional<std::string> given;
  std::string secret_field = "policy.hmac.secret";
  if (input.secret) {
    given = *input.secret;
  } else if (input.secret_env) {
    secret_field = "policy.hmac.secret_env";
    given = secrets.env ? secrets.env(*input.secret_env) : std::nullopt;
    if (!given) {
      return invalid(prefix + "." + secret_field,
                     "environment variable " + *input.secret_env + " is not set");
    }
  }
  if (given) {
    if (auto ok = policy::validate_secret(*given, secret_field); !ok) {
      return tl::unexpected(with_prefix(ok.error(), prefix));
    }
  }

  policy::TriggerSpec spec = input.spec;
  const bool key_given = input.present.contains("key");
  if (current != nullptr) {
    spec.id = current->spec.id;
    spec.version = current->spec.version;
    if (!key_given) spec.key = current->spec.key;
  } else {
    spec.id = 0;
    spec.version = 0;
    if (!key_given) spec.key = policy::generate_trigger_key();
  }
  if (auto ok = policy::validate(spec); !ok) return tl::unexpected(with_prefix(ok.error(), prefix));

  PlannedChange change;
  if (current != nullptr) {
    change.row = *current;
    change.expected_version = current->spec.version;
  }
  change.row.spec = spec;
  bool changed = current == nullptr || spec != current->spec;

  const bool key_changed = current != nullptr && current->spec.key != spec.key;
  const bool has_stored_secret = current != nullptr && current->secret_enc.has_value();
  std::optional<std::string> stored_secret;
  if (has_stored_secret && (given || key_changed)) {
    auto opened =
        open_secret(secrets.box, *current->secret_enc, *current, prefix + ".policy.hmac.secret");
    if (!opened) return tl::unexpected(opened.error());
    stored_secret = std::move(*opened);
  }
  if (given) {
    if (stored_secret != given) changed = true;
    // Unchanged but under a new key it must be sealed again: the key is its AAD.
    if (stored_secret != given || key_changed) change.secret = given;
  } else if (key_changed && stored_secret) {
    change.secret = stored_secret;
  } else if (spec.policy.hmac.enabled && !has_stored_secret) {
    change.secret = policy::generate_secret(spec.policy.hmac.scheme);
    change.secret_generated = true;
    changed = true;
  }
  if (key_changed && current->previous_secret_enc) {
    auto opened = open_secret(secrets.box, *current->previous_secret_enc, *current,
                              prefix + ".policy.hmac.previous_secret");
    if (!opened) return tl::unexpected(opened.error());
    change.previous_secret = std::move(*opened);
  }

  // The same check the gateway runs when it loads the trigger, so apply never stores one that
  // the gateway would then refuse (e.g. a standard-webhooks secret that is not base64).
  if (spec.policy.hmac.enabled && change.secret) {
    policy::TriggerSecrets compiled_secrets{*change.secret, change.previous_secret, 0};
    if (auto compiled = policy::CompiledTrigger::compile(spec, std::move(compiled_secrets));
        !compiled) {
      Error error = compiled.error();
      if (error.field == "policy.hmac.secret" && secret_field != error.field) {
        error.message.replace(0, error.field.size(), secret_field);
        error.field = secret_field;
      }
      return tl::unexpected(with_prefix(std::move(error), prefix));
    }
  }

  change.summary = PlannedAction{spec.name, spec.id, spec.key,
                                 current == nullptr ? "create"
                                 : changed          ? "update"
                                                    : "unchanged"};
  if (change.summary.action == "unchanged") {
    change.secret.reset();
    change.previous_secret.reset();
  }
  return change;
}

// --- output ---------------------------------------------------------------------------------

void print_table(const std::vector<PlannedAction>& actions, std::ostream& out) {
  std::size_t name_width = 4;
  for (const auto& a : actions) name_width = std::max(name_width, a.name.size());
  auto pad = [](std::string text, std::size_t width) {
    if (text.size() < width) text.append(width - text.size(), ' ');
    return text;
  };
  out << pad("ACTION", 11) << pad("NAME", name_width + 2) << pad("ID", 8) << "KEY\n";
  for (const auto& a : actions) {
    out << pad(a.action, 11) << pad(a.name, name_width + 2)
        << pad(a.id == 0 ? "-" : std::to_string(a.id), 8) << a.key << "\n";
  }
}

std::string summary_line(const std::vector<PlannedAction>& actions) {
  std::map<std::string, int> counts;
  for (const auto& a : actions) ++counts[a.action];
  return std::to_string(counts["create"]) + " to create, " + std::to_string(counts["update"]) +
         " to update, " + std::to_string(counts["unchanged"]) + " unchanged, " +
         std::to_string(counts["delete"]) + " to delete";
}

void print_json(const std::vector<PlannedAction>& actions, std::ostream& out) {
  auto list = nlohmann::ordered_json::array();
  for (const auto& a : actions) {
    nlohmann::ordered_json item;
    item["name"] = a.name;
    item["id"] = a.id == 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(a.id);
    item["key"] = a.key;
    item["action"] = a.action;
    list.push_back(std::move(item));
  }
  out << list.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

Result<std::string> read_file(const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(kInvalid, "cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail(kInvalid, "cannot read " + path);
  return text.str();
}

// Executes one change; fills in the id of a create.
Result<void> execute(db::TriggerStore& store, const policy::SecretBox& box, PlannedChange& change) {
  const auto& action = change.summary.action;
  if (action == "unchanged") return {};
  if (action == "delete") {
    auto removed = store.remove(change.row.spec.id);
    if (!removed) return tl::unexpected(removed.error());
    return {};
  }
  db::StoredTrigger row = change.row;
  if (change.secret) row.secret_enc = box.seal(*change.secret, row.spec.key);
  if (change.previous_secret) {
    row.previous_secret_enc = box.seal(*change.previous_secret, row.spec.key);
  }
  if (action == "create") {
    auto inserted = store.insert(row);
    if (!inserted) return tl::unexpected(inserted.error());
    change.summary.id = inserted->spec.id;
    return {};
  }
  auto updated = store.update(row, change.expected_version);
  if (!updated) {
    if (updated.error().code == "conflict") {
      return fail("conflict", change.summary.name + ": changed by someone else meanwhile");
    }
    return tl::unexpected(updated.error());
  }
  return {};
}

// Deletes first (they may free a key a create reuses), then updates, then creates.
int execution_rank(const std::string& action) {
  if (action == "delete") return 0;
  if (action == "update") return 1;
  return 2;
}

}  // namespace

std::optional<std::string> process_env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

Result<Plan> plan_apply(const std::vector<db::StoredTrigger>& existing,
                        const std::vector<policy::TriggerInput>& desired, bool prune,
                        const SecretResolver& secrets) {
  std::map<std::string, const db::StoredTrigger*> by_name;
  std::map<std::string, const db::StoredTrigger*> by_key;
  for (const auto& row : existing) {
    by_name.emplace(row.spec.name, &row);
    by_key.emplace(row.spec.key, &row);
  }
  std::set<std::string> desired_names;
  for (const auto& input : desired) {
    if (!desired_names.insert(input.spec.name).second) {
      return fail(kInvalid, "duplicate trigger name in file: " + input.spec.name);
    }
  }

  Plan plan;
  std::map<std::string, std::string> planned_keys;  // key → name, within this plan
  for (std::size_t i = 0; i < desired.size(); ++i) {
    const auto prefix = entry_path(i);
    const auto found = by_name.find(desired[i].spec.name);
    const db::StoredTrigger* current = found == by_name.end() ? nullptr : found->second;
    auto change = plan_entry(desired[i], current, prefix, secrets);
    if (!change) return tl::unexpected(change.error());

    const auto& key = change->row.spec.key;
    if (auto [it, fresh] = planned_keys.emplace(key, desired[i].spec.name); !fresh) {
      return invalid(prefix + ".key", "also used by " + it->second + " in this file");
    }
    // A key held by another trigger frees up only if this run deletes that trigger.
    if (auto holder = by_key.find(key); holder != by_key.end()) {
      const auto& holder_name = holder->second->spec.name;
      const bool freed = prune && !desired_names.contains(holder_name);
      if (holder_name != desired[i].spec.name && !freed) {
        return invalid(prefix + ".key", "already used by trigger " + holder_name);
      }
    }
    plan.changes.push_back(std::move(*change));
  }

  if (prune) {
    for (const auto& row : existing) {
      if (desired_names.contains(row.spec.name)) continue;
      PlannedChange change;
      change.summary = PlannedAction{row.spec.name, row.spec.id, row.spec.key, "delete"};
      change.row = row;
      change.expected_version = row.spec.version;
      plan.changes.push_back(std::move(change));
    }
  }
  return plan;
}

int run_apply(const ApplyOptions& options, const std::string& dsn, const policy::SecretBox& box,
              std::ostream& out, std::ostream& err) {
  const std::string tag = "hookguard apply: ";
  auto text = read_file(options.file);
  if (!text) {
    err << tag << text.error().message << "\n";
    return kExitInvalid;
  }
  auto desired = policy::triggers_from_yaml(*text);
  if (!desired) {
    err << tag << options.file << ": " << desired.error().message << "\n";
    return kExitInvalid;
  }

  // libpqxx throws; the store is expected to turn that into values, but a stray exception must
  // still end as exit code 1, not as std::terminate.
  try {
    db::TriggerStore store(dsn);
    auto existing = store.list_all();
    if (!existing) {
      err << tag << existing.error().message << "\n";
      return kExitRuntime;
    }
    auto plan = plan_apply(*existing, *desired, options.prune, SecretResolver{box, process_env});
    if (!plan) {
      err << tag << options.file << ": " << plan.error().message << "\n";
      return plan.error().code == kInvalid ? kExitInvalid : kExitRuntime;
    }

    auto& changes = plan->changes;
    if (!options.dry_run) {
      // TriggerStore commits each call on its own: there is no transaction spanning the plan.
      // A failure leaves the earlier changes applied; a re-run converges, because rows are
      // matched by name and what is already done plans as "unchanged".
      std::vector<std::size_t> order(changes.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return execution_rank(changes[a].summary.action) <
               execution_rank(changes[b].summary.action);
      });
      std::vector<PlannedAction> done;
      for (std::size_t index : order) {
        auto& change = changes[index];
        if (auto ok = execute(store, box, change); !ok) {
          err << tag << change.summary.action << " " << change.summary.name
              << " failed: " << ok.error().message << "\n";
          err << tag << done.size()
              << " change(s) were applied before the failure and stay applied (each is "
                 "committed on its own); re-run apply to finish\n";
          if (!done.empty()) print_table(done, err);
          return kExitRuntime;
        }
        if (change.summary.action != "unchanged") done.push_back(change.summary);
      }
    }

    std::vector<PlannedAction> actions;
    for (const auto& change : changes) {
      actions.push_back(change.summary);
      if (change.secret_generated) {
        err << tag << "note: " << (options.dry_run ? "would generate" : "generated")
            << " an HMAC secret for " << change.summary.name
            << " (stored encrypted, never printed): set one with secret_env, or rotate it "
               "through the admin API to learn it\n";
      }
    }
    if (options.json_output) {
      print_json(actions, out);
    } else {
      print_table(actions, out);
      out << (options.dry_run ? "Plan: " : "Applied: ") << summary_line(actions)
          << (options.dry_run ? " (dry run: nothing written)" : "") << "\n";
    }
    return kExitOk;
  } catch (const std::exception& e) {
    err << tag << "database error: " << e.what() << "\n";
    return kExitRuntime;
  }
}

int run_export(const std::string& dsn, std::ostream& out, std::ostream& err) {
  try {
    db::TriggerStore store(dsn);
    auto rows = store.list_all();
    if (!rows) {
      err << "hookguard export: " << rows.error().message << "\n";
      return kExitRuntime;
    }
    std::vector<policy::TriggerSpec> specs;
    specs.reserve(rows->size());
    for (const auto& row : *rows) specs.push_back(row.spec);
    // Sorted by name so that two exports of the same state diff cleanly.
    std::sort(specs.begin(), specs.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    out << policy::triggers_to_yaml(specs);
    return kExitOk;
  } catch (const std::exception& e) {
    err << "hookguard export: database error: " << e.what() << "\n";
    return kExitRuntime;
  }
}

}  // namespace hookguard::gateway
