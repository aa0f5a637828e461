// libFuzzer target: IpAddress::parse, Cidr::parse and CidrSet::parse on random text, with
// round-trip properties (what parses prints as text that parses back to the same value).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "policy/cidr_set.h"

using namespace hookguard::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto ip = IpAddress::parse(text)) {
    auto again = IpAddress::parse(ip->to_string());
    if (!again || !(*again == *ip)) std::abort();
    for (int prefix : {0, 1, 8, 31, 32, 64, 127, 128}) (void)ip->masked(prefix);
  }
  if (auto cidr = Cidr::parse(text)) {
    auto again = Cidr::parse(cidr->to_string());
    if (!again || !(again->network == cidr->network) || again->prefix != cidr->prefix) std::abort();
    if (!cidr->contains(cidr->network)) std::abort();
  }

  // Lines as the entries of a set; every parsed address is tested against it.
  std::vector<std::string> entries;
  std::size_t start = 0;
  while (start <= text.size() && entries.size() < 64) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    entries.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  if (auto set = CidrSet::parse(entries)) {
    for (const auto& e : entries) {
      if (auto ip = IpAddress::parse(e)) {
        if (!set->contains(*ip)) std::abort();  // a bare address is a host route of the set
      }
    }
  }
  return 0;
}
