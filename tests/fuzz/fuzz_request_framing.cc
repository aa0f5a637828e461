// libFuzzer target: where a request ends among the bytes of a connection (http/request_framing.h),
// which decides where the next pipelined request starts. Properties: an end lies inside the
// bytes read, after the head's empty line; a Content-Length request ends exactly that many bytes
// after it; a chunked one ends in the same place whatever follows it.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "http/request_framing.h"

using namespace hookguard;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  http::BodyFraming framing;
  framing.chunked = in.ConsumeBool();
  framing.content_length = in.ConsumeIntegralInRange<std::size_t>(0, 1 << 20);
  const std::size_t unread =
      in.ConsumeBool() ? in.ConsumeIntegralInRange<std::size_t>(0, 1 << 20) : 0;
  const std::string wire = in.ConsumeRemainingBytesAsString();
  const std::size_t total = wire.size() + unread;

  const auto length = http::request_length(wire, total, framing);
  if (!length) return 0;
  const std::size_t head_end = wire.find("\r\n\r\n");
  if (head_end == std::string::npos || *length < head_end + 4 || *length > total) std::abort();
  if (!framing.chunked) {
    if (*length != head_end + 4 + framing.content_length) std::abort();
    return 0;
  }
  if (unread != 0 || *length > wire.size()) std::abort();
  const std::string request = wire.substr(0, *length);
  if (http::request_length(request, request.size(), framing) != length) std::abort();
  return 0;
}
