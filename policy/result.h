// Error values and Result<T>: how every fallible function in hookguard reports failure.
#pragma once

#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace hookguard {

/// A failure as a value: a stable machine code and a human message that names the culprit.
struct Error {
  std::string code;     // e.g. "invalid_config", "invalid_request", "db_unavailable"
  std::string message;  // e.g. "policy.ip_allowlist.cidrs[0]: not a CIDR: \"10.0.0/8\""
  std::string field;    // the offending field path, when there is one
};

/// The outcome of anything that can fail: a value or an Error.
template <class T>
using Result = tl::expected<T, Error>;

/// Builds the error side of a Result: `return fail("invalid_config", "...");`.
inline tl::unexpected<Error> fail(std::string code, std::string message, std::string field = {}) {
  return tl::unexpected<Error>(Error{std::move(code), std::move(message), std::move(field)});
}

/// `error` as seen from a containing field: "policy" turns "hmac.secret: required" (field
/// "hmac.secret") into "policy.hmac.secret: required" (field "policy.hmac.secret"), and an error
/// without a field into "policy: <message>" (field "policy").
inline Error with_prefix(Error error, const std::string& prefix) {
  if (error.field.empty()) {
    error.message = prefix + ": " + error.message;
    error.field = prefix;
  } else {
    error.message = prefix + "." + error.message;
    error.field = prefix + "." + error.field;
  }
  return error;
}

}  // namespace hookguard
