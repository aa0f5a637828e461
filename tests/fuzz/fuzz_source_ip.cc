// libFuzzer target: the gateway's source-IP resolution with random peers and X-Forwarded-For.
// Property: the answer is the peer itself unless the peer is a trusted proxy.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "gateway/source_ip.h"
#include "policy/cidr_set.h"
#include "policy/headers.h"

using namespace hookguard;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const policy::CidrSet trusted =
      *policy::CidrSet::parse({"10.0.0.0/8", "127.0.0.1/32", "2001:db8::/32", "::1/128"});
  FuzzedDataProvider in(data, size);
  const std::string peer_text = in.ConsumeRandomLengthString(64);
  policy::HeaderList headers;
  const int fields = in.ConsumeIntegralInRange<int>(0, 4);
  for (int i = 0; i < fields; ++i) {
    headers.add(in.ConsumeBool() ? "X-Forwarded-For" : "x-forwarded-for",
                in.ConsumeRandomLengthString(4096));
  }
  const std::string raw_xff = in.ConsumeRemainingBytesAsString();
  if (!raw_xff.empty()) headers.add("X-Forwarded-For", raw_xff);

  auto joined = gateway::joined_forwarded_for(headers);
  auto peer = gateway::parse_peer_address(peer_text);
  // An unparseable peer text still exercises the walk: from a trusted or an untrusted peer.
  if (!peer) peer = policy::IpAddress::parse(size % 2 ? "10.1.2.3" : "192.0.2.1");
  const auto source = gateway::resolve_source_ip(*peer, joined, trusted);
  if (!trusted.contains(*peer) && !(source == *peer)) std::abort();
  (void)source.to_string();
  return 0;
}
