#include "gateway/source_ip.h"

namespace hookguard::gateway {
namespace {

// Optional whitespace around list elements (RFC 9110 §5.6.1: OWS = SP / HTAB).
std::string_view trim_ows(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

}  // namespace

policy::IpAddress resolve_source_ip(const policy::IpAddress& peer,
                                    std::optional<std::string_view> x_forwarded_for,
                                    const policy::CidrSet& trusted_proxies) {
  // An untrusted peer can write anything into the header: only the TCP address is a fact.
  if (!trusted_proxies.contains(peer) || !x_forwarded_for) return peer;

  std::string_view list = *x_forwarded_for;
  // Only the right end matters (each trusted hop appends); a client can pad the left at will.
  const bool truncated = list.size() > kMaxForwardedForBytes;
  if (truncated) list = list.substr(list.size() - kMaxForwardedForBytes);

  policy::IpAddress last_trusted = peer;
  std::size_t end = list.size();
  for (std::size_t examined = 0; examined < kMaxForwardedForEntries; ++examined) {
    const auto comma = end == 0 ? std::string_view::npos : list.rfind(',', end - 1);
    const bool left_most = comma == std::string_view::npos;
    const std::size_t start = left_most ? 0 : comma + 1;
    const std::string_view element = list.substr(start, end - start);
    // The cut may have split the left-most element: never read half an address.
    if (left_most && truncated) return last_trusted;

    const std::string_view entry = trim_ows(element);
    if (!entry.empty()) {
      const auto ip = policy::IpAddress::parse(entry);
      if (!ip) return last_trusted;  // an unparsable hop ends what we can verify
      if (!trusted_proxies.contains(*ip)) return *ip;
      last_trusted = *ip;
    }
    if (left_most) return last_trusted;
    end = comma;
  }
  return last_trusted;
}

Result<policy::IpAddress> parse_peer_address(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  return policy::IpAddress::parse(text);
}

std::optional<std::string> joined_forwarded_for(const policy::HeaderList& headers) {
  std::optional<std::string> joined;
  for (const auto& [name, value] : headers.fields()) {
    if (!policy::header_name_equals(name, "X-Forwarded-For")) continue;
    if (joined) {
      joined->append(", ").append(value);
    } else {
      joined = value;
    }
  }
  return joined;
}

}  // namespace hookguard::gateway
