// The events resource of the admin API: webhook_event_log rows, filtered, newest first, paged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "admin-api/api_reply.h"
#include "admin-api/pg_session.h"

namespace hookguard::admin {

/// The filters and page of GET /api/v1/events, validated.
struct EventQuery {
  std::optional<std::int64_t> trigger_id;
  std::optional<std::string> outcome;  // a known outcome name
  std::optional<std::int64_t> status_code;
  std::optional<std::string> source_ip;  // a CIDR or bare address (matched with <<=)
  std::optional<std::int64_t> since_us, until_us;
  std::int64_t limit = 100;
  std::optional<std::pair<std::int64_t, std::int64_t>> after;  // (created µs, id) of last row
};

/// Parses the query string; errors are 400 naming the parameter.
Result<EventQuery> parse_event_query(const QueryParams& query);

/// Handler for /api/v1/events.
class EventsApi {
 public:
  explicit EventsApi(PgSession& session) : session_(session) {}
  ApiReply list(const ApiRequest& request);

 private:
  PgSession& session_;
};

}  // namespace hookguard::admin
