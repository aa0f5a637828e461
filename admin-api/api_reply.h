// What an admin handler receives and answers, independent of Pistache, and the one error table.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "admin-api/api_values.h"
#include "policy/result.h"

namespace hookguard::admin {

/// One request, already routed and authenticated: path parameters, decoded query, raw body.
struct ApiRequest {
  std::map<std::string, std::string> params;  // {"id": "42"}
  QueryParams query;
  std::string body;
};

/// One answer: a status and a JSON body (null for 204), or a text body with its media type.
struct ApiReply {
  int status = 200;
  nlohmann::ordered_json json;
  std::optional<std::string> text;                           // sent instead of `json` when set
  std::string text_type;                                     // e.g. "application/yaml"
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
};

/// 200/201 with a JSON body.
ApiReply json_reply(int status, nlohmann::ordered_json body);

/// The error body of DESIGN §5: {"error", "message", "field"} with the status for `code`:
///   invalid_request 400, unauthorized 401, not_found 404, method_not_allowed 405,
///   conflict 409, payload_too_large 413, unsupported_media_type 415; anything else is an
///   internal error: 500 {"error":"internal"}, with the detail logged, never sent.
ApiReply error_reply(const Error& error);

/// Shorthand for error_reply(Error{code, message, field}).
ApiReply error_reply(std::string code, std::string message, std::string field = {});

/// The 401 answer: no detail, plus WWW-Authenticate.
ApiReply unauthorized_reply();

}  // namespace hookguard::admin
