// One row of webhook_event_log, as the gateway builds it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace hookguard::db {

/// One `webhook_event_log` row. Strings are sanitised (valid UTF-8, no NUL) before COPY.
struct AuditRow {
  std::int64_t created_unix_us = 0;  // the request's arrival time
  std::optional<std::int64_t> trigger_id;
  std::string webhook_key;  // as requested (truncated to 128 bytes)
  std::string request_id;   // uuid, unique per request: makes replays idempotent
  std::optional<std::string> delivery_id;
  std::optional<std::string> event_type;
  std::optional<std::string> source_ip;  // textual inet
  std::optional<std::string> peer_ip;
  std::optional<std::string> user_agent;
  std::string method;
  std::int64_t payload_size_bytes = 0;
  std::string outcome;
  int status_code = 0;
  std::optional<std::string> error_message;
  std::optional<bool> hmac_verified;
  bool rate_limited = false;
  std::optional<bool> ip_allowed;
  bool monitor = false;  // mode: monitor let a failing request through
  std::optional<int> upstream_status;
  std::optional<int> upstream_ms;
  int processing_time_ms = 0;
};

}  // namespace hookguard::db
