#include "admin-api/audit_log.h"

#include <map>

namespace hookguard::admin {
namespace {

using Json = nlohmann::ordered_json;

void flatten(const Json& value, const std::string& path, std::map<std::string, Json>& out) {
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      flatten(item, path.empty() ? key : path + "." + key, out);
    }
    return;
  }
  out[path] = value;
}

}  // namespace

Result<void> AuditLog::record(const std::string& action, std::optional<std::int64_t> trigger_id,
                              const nlohmann::ordered_json& diff) {
  const std::string diff_text = diff.dump(-1, ' ', false, Json::error_handler_t::replace);
  return session_.run<void>("audit " + action, [&](pqxx::work& tx) -> Result<void> {
    if (trigger_id) {
      tx.exec_params(
          "INSERT INTO admin_audit_log (actor, action, trigger_id, diff)"
          " VALUES ($1, $2, $3, $4::jsonb)",
          actor_, action, *trigger_id, diff_text);
    } else {
      tx.exec_params("INSERT INTO admin_audit_log (actor, action, diff) VALUES ($1, $2, $3::jsonb)",
                     actor_, action, diff_text);
    }
    return {};
  });
}

nlohmann::ordered_json trigger_diff(const nlohmann::ordered_json& before,
                                    const nlohmann::ordered_json& after) {
  std::map<std::string, Json> a, b;
  flatten(before, "", a);
  flatten(after, "", b);
  Json out = Json::object();
  auto skip = [](const std::string& path) {
    return path == "version" || path == "created" || path == "updated";
  };
  for (const auto& [path, value] : b) {
    if (skip(path)) continue;
    auto it = a.find(path);
    const Json from = it == a.end() ? Json(nullptr) : it->second;
    if (from != value) out[path] = {{"from", from}, {"to", value}};
  }
  for (const auto& [path, value] : a) {
    if (!skip(path) && !b.contains(path)) out[path] = {{"from", value}, {"to", nullptr}};
  }
  return out;
}

}  // namespace hookguard::admin
