#include "admin-api/stats_api.h"

#include "admin-api/triggers_api.h"

namespace hookguard::admin {
namespace {

using Json = nlohmann::ordered_json;

// Every answer, windowed or not, comes from webhook_stats(since, until, trigger_id)
// (db/migrations/0003_analytics.sql): whole days and hours from the rollups, the partial hours
// at either end and the rows not rolled up yet from the log. So a window reaches as far back as
// the rollups do, also past the log's retention, and never scans the whole log. Counts are
// exact; percentiles come from the rollups' latency histograms (exact below 20 ms, within 5 %
// above), the same numbers the view webhook_stats_detailed shows.
// Parameters: $1 trigger id (NULL = all), $2 since and $3 until in µs since the epoch (NULL =
// open end).
constexpr const char* kStatsQuery =
    "SELECT trigger_id, trigger_name, webhook_key, total_requests, successful_requests,"
    " failed_requests, rate_limited_requests, signature_failures, ip_denied_requests,"
    " payload_too_large_requests, upstream_errors, avg_processing_time_ms,"
    " p50_processing_time_ms, p95_processing_time_ms, p99_processing_time_ms,"
    " (extract(epoch FROM last_request_at) * 1000)::bigint"
    " FROM webhook_stats("
    "COALESCE('epoch'::timestamptz + $2::bigint * interval '1 microsecond', '-infinity'),"
    " COALESCE('epoch'::timestamptz + $3::bigint * interval '1 microsecond', 'infinity'),"
    " $1::bigint)"
    " ORDER BY trigger_id";

Json stats_row(const pqxx::row& row) {
  static const char* const kNames[] = {"trigger_id",
                                       "trigger_name",
                                       "webhook_key",
                                       "total_requests",
                                       "successful_requests",
                                       "failed_requests",
                                       "rate_limited_requests",
                                       "signature_failures",
                                       "ip_denied_requests",
                                       "payload_too_large_requests",
                                       "upstream_errors",
                                       "avg_processing_time_ms",
                                       "p50_processing_time_ms",
                                       "p95_processing_time_ms",
                                       "p99_processing_time_ms",
                                       "last_request_at"};
  Json out = Json::object();
  for (int i = 0; i < 16; ++i) {
    const auto& f = row[i];
    if (i == 1 || i == 2) {
      out[kNames[i]] = f.as<std::string>();
    } else if (i >= 11 && i <= 14) {
      out[kNames[i]] = f.as<double>();
    } else if (i == 15) {
      out[kNames[i]] = f.is_null() ? Json(nullptr) : Json(format_rfc3339_ms(f.as<std::int64_t>()));
    } else {
      out[kNames[i]] = f.as<std::int64_t>();
    }
  }
  return out;
}

}  // namespace

ApiReply StatsApi::all(const ApiRequest& request) { return query(request, std::nullopt); }

ApiReply StatsApi::one(const ApiRequest& request) {
  auto id = parse_trigger_id(request.params.at("id"));
  if (!id) return error_reply(id.error());
  return query(request, *id);
}

ApiReply StatsApi::query(const ApiRequest& request, std::optional<std::int64_t> trigger_id) {
  if (auto ok = reject_unknown_params(request.query, {"since", "until"}); !ok) {
    return error_reply(ok.error());
  }
  std::optional<std::int64_t> since_us, until_us;
  if (auto text = param(request.query, "since")) {
    auto us = parse_rfc3339_us(*text, "since");
    if (!us) return error_reply(us.error());
    since_us = *us;
  }
  if (auto text = param(request.query, "until")) {
    auto us = parse_rfc3339_us(*text, "until");
    if (!us) return error_reply(us.error());
    until_us = *us;
  }
  if (since_us && until_us && *since_us > *until_us) {
    return error_reply("invalid_request", "until: earlier than since", "until");
  }
  const auto text = [](std::optional<std::int64_t> v) {
    return v ? std::optional<std::string>(std::to_string(*v)) : std::nullopt;
  };
  const std::optional<std::string> p1 = text(trigger_id), p2 = text(since_us), p3 = text(until_us);
  const std::vector<const char*> values{p1 ? p1->c_str() : nullptr, p2 ? p2->c_str() : nullptr,
                                        p3 ? p3->c_str() : nullptr};
  auto rows = session_.run<Json>("stats", [&](pqxx::work& tx) -> Result<Json> {
    Json items = Json::array();
    for (const auto& row :
         tx.exec_params(kStatsQuery, pqxx::prepare::make_dynamic_params(values))) {
      items.push_back(stats_row(row));
    }
    return items;
  });
  if (!rows) return error_reply(rows.error());
  if (!trigger_id) return json_reply(200, {{"items", std::move(*rows)}});
  if (rows->empty()) {
    return error_reply("not_found", "trigger " + std::to_string(*trigger_id) + " does not exist");
  }
  return json_reply(200, std::move((*rows)[0]));
}

}  // namespace hookguard::admin
