#include "http/parsed_request.h"

#include <pistache/http.h>

namespace hookguard::http {

BodyFraming body_framing(const Pistache::Http::Request& request) {
  using namespace Pistache::Http;
  BodyFraming framing;
  if (auto te = request.headers().tryGet<Header::TransferEncoding>()) {
    framing.chunked = te->encoding() == Header::Encoding::Chunked;
  } else if (auto cl = request.headers().tryGet<Header::ContentLength>()) {
    framing.content_length = cl->value();
  }
  return framing;
}

bool closes_after(const Pistache::Http::Request& request) {
  using namespace Pistache::Http;
  const bool http10 = request.version() == Version::Http10;
  const auto connection = request.headers().tryGet<Header::Connection>();
  if (!connection) return http10;
  return connection->control() == ConnectionControl::Close ||
         (http10 && connection->control() != ConnectionControl::KeepAlive);
}

}  // namespace hookguard::http
