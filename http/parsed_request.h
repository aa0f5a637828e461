// What a request Pistache has parsed says about its framing and its connection.
#pragma once

#include "http/request_framing.h"

namespace Pistache::Http {
class Request;
}  // namespace Pistache::Http

namespace hookguard::http {

/// The framing Pistache used for `request`: Transfer-Encoding: chunked, else Content-Length,
/// else no body.
BodyFraming body_framing(const Pistache::Http::Request& request);

/// True when the connection ends after this request's answer: "Connection: close", or HTTP/1.0
/// without "Connection: keep-alive".
bool closes_after(const Pistache::Http::Request& request);

}  // namespace hookguard::http
