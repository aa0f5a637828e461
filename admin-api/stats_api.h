// The stats resource of the admin API: the columns of webhook_stats_detailed, all time or over a
// time window, read through webhook_stats() (rollups plus the log's tail).
#pragma once

#include "admin-api/api_reply.h"
#include "admin-api/pg_session.h"

namespace hookguard::admin {

/// Handlers for /api/v1/stats and /api/v1/triggers/{id}/stats (optional since/until).
class StatsApi {
 public:
  explicit StatsApi(PgSession& session) : session_(session) {}

  /// 200 {"items": [row per trigger]}.
  ApiReply all(const ApiRequest& request);
  /// 200 that trigger's row, or 404.
  ApiReply one(const ApiRequest& request);

 private:
  ApiReply query(const ApiRequest& request, std::optional<std::int64_t> trigger_id);
  PgSession& session_;
};

}  // namespace hookguard::admin
