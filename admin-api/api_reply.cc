#include "admin-api/api_reply.h"

#include <spdlog/spdlog.h>

#include <string_view>

namespace hookguard::admin {
namespace {

struct ErrorRow {
  std::string_view code;
  int status;
};

// Every client-visible error code; a code outside this table is a server fault (500).
constexpr ErrorRow kErrors[] = {
    {"invalid_request", 400},        {"unauthorized", 401}, {"not_found", 404},
    {"method_not_allowed", 405},     {"conflict", 409},     {"payload_too_large", 413},
    {"unsupported_media_type", 415},
};

}  // namespace

ApiReply json_reply(int status, nlohmann::ordered_json body) {
  ApiReply reply;
  reply.status = status;
  reply.json = std::move(body);
  return reply;
}

ApiReply error_reply(const Error& error) {
  for (const auto& row : kErrors) {
    if (row.code != error.code) continue;
    nlohmann::ordered_json body = {{"error", error.code}, {"message", error.message}};
    body["field"] =
        error.field.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(error.field);
    return json_reply(row.status, std::move(body));
  }
  // Database and internal messages can name tables, hosts or values: they stay in the log.
  spdlog::error("admin api: {}: {}", error.code, error.message);
  return json_reply(500, {{"error", "internal"}, {"message", "internal error"}});
}

ApiReply error_reply(std::string code, std::string message, std::string field) {
  return error_reply(Error{std::move(code), std::move(message), std::move(field)});
}

ApiReply unauthorized_reply() {
  ApiReply reply = json_reply(401, {{"error", "unauthorized"}});
  reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"hookguard-admin\"");
  return reply;
}

}  // namespace hookguard::admin
