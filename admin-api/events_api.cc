#include "admin-api/events_api.h"

#include <limits>
#include <vector>

#include "policy/cidr_set.h"
#include "policy/outcome.h"

namespace hookguard::admin {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kCursorTag = "e";

// Column list and JSON type of each: the row is read by index.
enum class Kind { kInt, kText, kBool, kTime };
struct Column {
  const char* sql;
  const char* name;
  Kind kind;
};
constexpr Column kColumns[] = {
    {"id", "id", Kind::kInt},
    {"(extract(epoch FROM created) * 1000000)::bigint", "created", Kind::kTime},
    {"trigger_id", "trigger_id", Kind::kInt},
    {"webhook_key", "webhook_key", Kind::kText},
    {"request_id::text", "request_id", Kind::kText},
    {"delivery_id", "delivery_id", Kind::kText},
    {"event_type", "event_type", Kind::kText},
    {"host(source_ip)", "source_ip", Kind::kText},
    {"host(peer_ip)", "peer_ip", Kind::kText},
    {"user_agent", "user_agent", Kind::kText},
    {"method", "method", Kind::kText},
    {"payload_size_bytes", "payload_size_bytes", Kind::kInt},
    {"outcome", "outcome", Kind::kText},
    {"status_code", "status_code", Kind::kInt},
    {"error_message", "error_message", Kind::kText},
    {"hmac_verified", "hmac_verified", Kind::kBool},
    {"rate_limited", "rate_limited", Kind::kBool},
    {"ip_allowed", "ip_allowed", Kind::kBool},
    {"monitor", "monitor", Kind::kBool},
    {"upstream_status", "upstream_status", Kind::kInt},
    {"upstream_ms", "upstream_ms", Kind::kInt},
    {"processing_time_ms", "processing_time_ms", Kind::kInt},
};

Json event_row(const pqxx::row& row) {
  Json out = Json::object();
  for (std::size_t i = 0; i < std::size(kColumns); ++i) {
    const auto& f = row[static_cast<int>(i)];
    const Column& c = kColumns[i];
    if (f.is_null()) {
      out[c.name] = nullptr;
      continue;
    }
    switch (c.kind) {
      case Kind::kInt:
        out[c.name] = f.as<std::int64_t>();
        break;
      case Kind::kText:
        out[c.name] = f.as<std::string>();
        break;
      case Kind::kBool:
        out[c.name] = f.as<bool>();
        break;
      case Kind::kTime: {
        const auto us = f.as<std::int64_t>();
        out[c.name] = format_rfc3339_ms(us >= 0 ? us / 1000 : (us - 999) / 1000);
        break;
      }
    }
  }
  return out;
}

}  // namespace

Result<EventQuery> parse_event_query(const QueryParams& query) {
  if (auto ok = reject_unknown_params(query, {"trigger_id", "outcome", "status_code", "source_ip",
                                              "since", "until", "limit", "cursor"});
      !ok) {
    return tl::unexpected(ok.error());
  }
  EventQuery out;
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  if (auto v = param(query, "trigger_id")) {
    auto id = parse_int(*v, 1, kMax, "trigger_id");
    if (!id) return tl::unexpected(id.error());
    out.trigger_id = *id;
  }
  if (auto v = param(query, "outcome")) {
    // Only names from the outcome table: a typo gets a 400, not an empty page.
    if (!policy::outcome_from_name(*v)) {
      return fail("invalid_request", "outcome: not a known outcome", "outcome");
    }
    out.outcome = *v;
  }
  if (auto v = param(query, "status_code")) {
    auto code = parse_int(*v, 0, 999, "status_code");
    if (!code) return tl::unexpected(code.error());
    out.status_code = *code;
  }
  if (auto v = param(query, "source_ip")) {
    auto cidr = policy::Cidr::parse(*v);
    if (!cidr) {
      return fail("invalid_request", "source_ip: expected an IP address or CIDR", "source_ip");
    }
    out.source_ip = cidr->to_string();
  }
  for (const char* name : {"since", "until"}) {
    if (auto v = param(query, name)) {
      auto us = parse_rfc3339_us(*v, name);
      if (!us) return tl::unexpected(us.error());
      (std::string_view(name) == "since" ? out.since_us : out.until_us) = *us;
    }
  }
  if (out.since_us && out.until_us && *out.since_us > *out.until_us) {
    return fail("invalid_request", "until: earlier than since", "until");
  }
  if (auto v = param(query, "limit")) {
    auto limit = parse_int(*v, 1, 1000, "limit");
    if (!limit) return tl::unexpected(limit.error());
    out.limit = *limit;
  }
  if (auto v = param(query, "cursor")) {
    auto cursor = decode_cursor(*v, kCursorTag);
    if (!cursor) return tl::unexpected(cursor.error());
    out.after = *cursor;
  }
  return out;
}

ApiReply EventsApi::list(const ApiRequest& request) {
  auto q = parse_event_query(request.query);
  if (!q) return error_reply(q.error());

  // Every value travels as a parameter; only fixed fragments are concatenated.
  std::vector<std::string> values;
  std::string where;
  auto add = [&](const std::string& fragment, std::string value) {
    values.push_back(std::move(value));
    const std::string n = "$" + std::to_string(values.size());
    std::string clause = fragment;
    for (auto pos = clause.find('?'); pos != std::string::npos; pos = clause.find('?')) {
      clause.replace(pos, 1, n);
    }
    where += (where.empty() ? " WHERE " : " AND ") + clause;
  };
  constexpr const char* kTime = "('epoch'::timestamptz + ?::bigint * interval '1 microsecond')";
  if (q->trigger_id) add("trigger_id = ?::bigint", std::to_string(*q->trigger_id));
  if (q->outcome) add("outcome = ?", *q->outcome);
  if (q->status_code) add("status_code = ?::integer", std::to_string(*q->status_code));
  if (q->source_ip) add("source_ip <<= ?::cidr", *q->source_ip);
  if (q->since_us) add(std::string("created >= ") + kTime, std::to_string(*q->since_us));
  if (q->until_us) add(std::string("created < ") + kTime, std::to_string(*q->until_us));
  if (q->after) {
    values.push_back(std::to_string(q->after->first));
    const std::string created = "$" + std::to_string(values.size());
    values.push_back(std::to_string(q->after->second));
    const std::string id = "$" + std::to_string(values.size());
    where += std::string(where.empty() ? " WHERE " : " AND ") +
             "(created, id) < ('epoch'::timestamptz + " + created +
             "::bigint * interval '1 microsecond', " + id + "::bigint)";
  }
  std::string sql = "SELECT ";
  for (std::size_t i = 0; i < std::size(kColumns); ++i) {
    if (i > 0) sql += ", ";
    sql += kColumns[i].sql;
  }
  // One row more than the page tells whether a next page exists.
  sql += " FROM webhook_event_log" + where + " ORDER BY created DESC, id DESC LIMIT " +
         std::to_string(q->limit + 1);

  std::vector<const char*> pointers;
  for (const auto& v : values) pointers.push_back(v.c_str());
  struct Page {
    Json items = Json::array();
    Json next = nullptr;
  };
  auto page = session_.run<Page>("events", [&](pqxx::work& tx) -> Result<Page> {
    Page out;
    const auto rows = tx.exec_params(sql, pqxx::prepare::make_dynamic_params(pointers));
    for (const auto& row : rows) {
      if (static_cast<std::int64_t>(out.items.size()) == q->limit) {
        const auto& last = rows[static_cast<int>(q->limit) - 1];
        out.next =
            encode_cursor(kCursorTag, last[1].as<std::int64_t>(), last[0].as<std::int64_t>());
        break;
      }
      out.items.push_back(event_row(row));
    }
    return out;
  });
  if (!page) return error_reply(page.error());
  return json_reply(200,
                    {{"items", std::move(page->items)}, {"next_cursor", std::move(page->next)}});
}

}  // namespace hookguard::admin
