// Serialises the gateway's answer as one HTTP/1.x response: status line, fields, body.
#pragma once

#include <string>
#include <string_view>

#include "policy/headers.h"

namespace hookguard::gateway::http1 {

/// The RFC 9110 reason phrase of `status`, or "" for a code without one (the status line then
/// ends in "NNN "; the phrase is optional, the space is not).
std::string_view reason_phrase(int status);

/// How the answer is framed for the request it answers.
struct Framing {
  bool http10 = false;  // answer "HTTP/1.0" (the request's version)
  bool close = false;   // "Connection: close" instead of "keep-alive"
  bool head = false;    // a HEAD request: Content-Length of the body, but no body
};

/// "HTTP/1.x NNN Reason", the fields, "Connection", "Content-Length" and the body, in one buffer
/// for one write. Fields that could not have come from a well-formed source (a name that is not
/// a token, a value with CR, LF or NUL) and the framing fields this function writes itself
/// (Connection, Content-Length, Transfer-Encoding) are skipped, so no field can split the
/// response. 1xx, 204 and 304 get neither Content-Length nor body. `status` outside 100-599 is
/// written as 502.
std::string write_response(Framing framing, int status, const policy::HeaderList& headers,
                           std::string_view body);

}  // namespace hookguard::gateway::http1
