// Parsing and formatting of the admin API's scalar values: query strings, RFC 3339 times, cursors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/result.h"

namespace hookguard::admin {

/// Decoded query parameters in arrival order (Pistache keeps one value per name).
using QueryParams = std::vector<std::pair<std::string, std::string>>;

/// Decodes %XX escapes; '+' stays '+' (so "+02:00" offsets survive unescaped). nullopt on a
/// malformed escape or a decoded NUL.
std::optional<std::string> percent_decode(std::string_view text);

/// 400 naming the first parameter not in `allowed`.
Result<void> reject_unknown_params(const QueryParams& query,
                                   std::initializer_list<std::string_view> allowed);

/// The value of `name`, if given.
std::optional<std::string> param(const QueryParams& query, std::string_view name);

/// A decimal integer within [min, max]; errors name `field`.
Result<std::int64_t> parse_int(std::string_view text, std::int64_t min, std::int64_t max,
                               const std::string& field);

/// RFC 3339 date-time ("2024-05-01T12:00:00Z", "…T12:00:00.123+02:00") → Unix microseconds.
Result<std::int64_t> parse_rfc3339_us(std::string_view text, const std::string& field);

/// Unix milliseconds → "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::string format_rfc3339_ms(std::int64_t unix_ms);

/// Opaque page cursors: base64url of "<tag>:<a>:<b>" (no padding).
std::string encode_cursor(std::string_view tag, std::int64_t a, std::int64_t b);
/// Decodes a cursor made by encode_cursor with the same tag; any other text is an error for
/// `field` ("cursor").
Result<std::pair<std::int64_t, std::int64_t>> decode_cursor(std::string_view text,
                                                            std::string_view tag,
                                                            const std::string& field = "cursor");

/// Unix milliseconds now (system clock).
std::int64_t unix_now_ms();

}  // namespace hookguard::admin
