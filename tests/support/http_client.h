// A small blocking HTTP/1.1 client for tests (libcurl easy), and a raw-socket sender.
#pragma once

#include <string>
#include <vector>

#include "policy/headers.h"

namespace hookguard::testing {

/// One answer as the test saw it.
struct HttpResponse {
  int status = 0;  // 0: no HTTP answer (connection error or timeout)
  policy::HeaderList headers;
  std::string body;
  std::string error;  // libcurl's message when status == 0
};

/// Sends one request. `url` is absolute; `headers` are sent as given ("Name: value").
/// `local_address` binds the client socket (e.g. "::1" or "127.0.0.2") when not empty.
HttpResponse http_request(const std::string& method, const std::string& url,
                          const policy::HeaderList& headers = {}, const std::string& body = "",
                          long timeout_ms = 10000);

/// Writes `raw` bytes to host:port and returns whatever comes back until the server closes or
/// `timeout_ms` passes: for protocol-abuse tests that libcurl would refuse to send.
std::string raw_exchange(const std::string& host, int port, const std::string& raw,
                         int timeout_ms = 3000);

/// The "error" code of an answer's JSON body (DESIGN §2), or "<not json: ...>".
std::string error_of(const HttpResponse& response);
/// The answer's X-Request-Id, or "".
std::string request_id_of(const HttpResponse& response);

/// One value of a Prometheus text exposition ("name value" lines), or -1 when absent.
double metric(const std::string& text, const std::string& name);

}  // namespace hookguard::testing
