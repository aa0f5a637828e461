#include "policy/cidr_set.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace hookguard::policy {
namespace {

constexpr std::string_view kCode = "invalid_address";

std::string quoted(std::string_view text) {
  // Echo at most a bounded, printable excerpt: the input may be hostile or huge.
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out += (c < 0x20 || c == 0x7f || c >= 0x80) ? '?' : static_cast<char>(c);
  }
  if (text.size() > 64) out += "...";
  return out + "\"";
}

bool has_space_or_control(std::string_view text) {
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f) return true;
  }
  return false;
}

// inet_pton's IPv4 leniency differs between libcs; "010.0.0.1" is octal 8.0.0.1 to some tools
// and decimal 10.0.0.1 to others, so an allowlist must refuse it whatever the libc does.
bool has_ambiguous_leading_zero(std::string_view text) {
  const auto last_colon = text.rfind(':');
  const auto tail = last_colon == std::string_view::npos ? text : text.substr(last_colon + 1);
  if (tail.find('.') == std::string_view::npos) return false;  // IPv6 hex groups are unambiguous
  bool at_start = true;
  for (std::size_t i = 0; i < tail.size(); ++i) {
    if (tail[i] == '.') {
      at_start = true;
      continue;
    }
    if (at_start && tail[i] == '0' && i + 1 < tail.size() && tail[i + 1] != '.') return true;
    at_start = false;
  }
  return false;
}

}  // namespace

Result<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty()) return fail(std::string(kCode), "empty address");
  if (text.size() > 64) return fail(std::string(kCode), "not an IP address: " + quoted(text));
  if (has_space_or_control(text)) {
    return fail(std::string(kCode), "whitespace or control character in address: " + quoted(text));
  }
  if (text.find('%') != std::string_view::npos) {
    return fail(std::string(kCode), "zone ids are not allowed: " + quoted(text));
  }
  if (has_ambiguous_leading_zero(text)) {
    return fail(std::string(kCode), "leading zero in IPv4 component: " + quoted(text));
  }
  const std::string zero_terminated(text);
  IpAddress ip;
  if (text.find(':') != std::string_view::npos) {
    in6_addr a6{};
    if (inet_pton(AF_INET6, zero_terminated.c_str(), &a6) != 1) {
      return fail(std::string(kCode), "not an IP address: " + quoted(text));
    }
    const auto* b = reinterpret_cast<const std::uint8_t*>(&a6);
    bool mapped = b[10] == 0xff && b[11] == 0xff;
    for (int i = 0; i < 10; ++i) mapped = mapped && b[i] == 0;
    if (mapped) {
      // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d (DESIGN §8).
      ip.v4_ = true;
      for (int i = 0; i < 4; ++i) ip.bytes_[i] = b[12 + i];
    } else {
      ip.v4_ = false;
      for (int i = 0; i < 16; ++i) ip.bytes_[i] = b[i];
    }
    return ip;
  }
  in_addr a4{};
  if (inet_pton(AF_INET, zero_terminated.c_str(), &a4) != 1) {
    return fail(std::string(kCode), "not an IP address: " + quoted(text));
  }
  const auto* b = reinterpret_cast<const std::uint8_t*>(&a4);
  ip.v4_ = true;
  for (int i = 0; i < 4; ++i) ip.bytes_[i] = b[i];
  return ip;
}

IpAddress IpAddress::v4(std::uint32_t host_order) {
  IpAddress ip;
  ip.v4_ = true;
  ip.bytes_[0] = static_cast<std::uint8_t>(host_order >> 24);
  ip.bytes_[1] = static_cast<std::uint8_t>(host_order >> 16);
  ip.bytes_[2] = static_cast<std::uint8_t>(host_order >> 8);
  ip.bytes_[3] = static_cast<std::uint8_t>(host_order);
  return ip;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (v4_) {
    in_addr a4{};
    std::copy_n(bytes_.begin(), 4, reinterpret_cast<std::uint8_t*>(&a4));
    inet_ntop(AF_INET, &a4, buf, sizeof buf);
  } else {
    in6_addr a6{};
    std::copy_n(bytes_.begin(), 16, reinterpret_cast<std::uint8_t*>(&a6));
    inet_ntop(AF_INET6, &a6, buf, sizeof buf);
  }
  return buf;
}

IpAddress IpAddress::masked(int prefix) const {
  const int width = v4_ ? 32 : 128;
  if (prefix < 0) prefix = 0;
  if (prefix > width) prefix = width;
  IpAddress out = *this;
  for (int i = 0; i < width / 8; ++i) {
    const int keep = prefix - i * 8;
    if (keep >= 8) continue;
    out.bytes_[i] = keep <= 0 ? 0 : static_cast<std::uint8_t>(out.bytes_[i] & (0xff << (8 - keep)));
  }
  return out;
}

Result<Cidr> Cidr::parse(std::string_view text) {
  const auto slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return tl::unexpected(ip.error());
  const int width = ip->is_v4() ? 32 : 128;
  if (slash == std::string_view::npos) return Cidr{*ip, width};

  // ::ffff:a.b.c.d/n counts n in IPv6 bits; it names the IPv4 network /(n - 96).
  const bool mapped = ip->is_v4() && text.substr(0, slash).find(':') != std::string_view::npos;
  const int written_width = mapped ? 128 : width;
  const int min_prefix = mapped ? 96 : 0;
  const auto digits = text.substr(slash + 1);
  int prefix = -1;
  const bool well_formed = !digits.empty() && digits.size() <= 3 &&
                           (digits.size() == 1 || digits[0] != '0') &&
                           digits.find_first_not_of("0123456789") == std::string_view::npos;
  if (well_formed) std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
  if (!well_formed || prefix < min_prefix || prefix > written_width) {
    const char* range =
        mapped ? "IPv4-mapped IPv6 (96-128): " : (ip->is_v4() ? "IPv4 (0-32): " : "IPv6 (0-128): ");
    return fail(std::string(kCode),
                std::string("prefix out of range for ") + range + quoted(digits));
  }
  if (mapped) prefix -= 96;
  const IpAddress network = ip->masked(prefix);
  if (network != *ip) {
    return fail(std::string(kCode), "host bits set; did you mean " + network.to_string() + "/" +
                                        std::to_string(prefix) + "?");
  }
  return Cidr{network, prefix};
}

bool Cidr::contains(const IpAddress& ip) const {
  return ip.is_v4() == network.is_v4() && ip.masked(prefix) == network;
}

std::string Cidr::to_string() const { return network.to_string() + "/" + std::to_string(prefix); }

Result<CidrSet> CidrSet::parse(const std::vector<std::string>& entries) {
  if (entries.size() > kMaxEntries) {
    return fail(std::string(kCode), "too many entries: " + std::to_string(entries.size()) +
                                        " (at most " + std::to_string(kMaxEntries) + ")");
  }
  CidrSet set;
  set.cidrs_.reserve(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto cidr = Cidr::parse(entries[i]);
    if (!cidr) {
      const std::string index = "[" + std::to_string(i) + "]";
      return fail(cidr.error().code, index + ": " + cidr.error().message, index);
    }
    set.cidrs_.push_back(*cidr);
  }
  return set;
}

bool CidrSet::contains(const IpAddress& ip) const {
  for (const auto& cidr : cidrs_) {
    if (cidr.contains(ip)) return true;
  }
  return false;
}

}  // namespace hookguard::policy
