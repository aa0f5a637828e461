// IP addresses and CIDR sets for IPv4 and IPv6 allowlists.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/result.h"

namespace hookguard::policy {

/// An IPv4 or IPv6 address. IPv4-mapped IPv6 (::ffff:a.b.c.d) is normalised to IPv4 on parse.
class IpAddress {
 public:
  /// Parses dotted IPv4 or textual IPv6 (no zone id, no brackets, no port).
  static Result<IpAddress> parse(std::string_view text);
  static IpAddress v4(std::uint32_t host_order);

  bool is_v4() const { return v4_; }
  /// 16 bytes; for IPv4 the first 4 hold the address.
  const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }
  std::string to_string() const;
  /// The address with every bit after `prefix` cleared (used for IPv6 /64 rate-limit buckets).
  IpAddress masked(int prefix) const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  bool v4_ = true;
  std::array<std::uint8_t, 16> bytes_{};
};

/// One network: address and prefix length.
struct Cidr {
  IpAddress network;
  int prefix = 0;

  /// Parses "a.b.c.d/n", "x::y/n" or a bare address (a host route). Host bits set below the
  /// prefix are an error: "10.0.0.1/8" is almost always a typo for a host or a different network.
  static Result<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& ip) const;
  std::string to_string() const;
};

/// A set of networks; an IPv4 address never matches an IPv6 network and vice versa
/// (0.0.0.0/0 does not admit ::1), but ::ffff:a.b.c.d is an IPv4 address.
class CidrSet {
 public:
  static constexpr std::size_t kMaxEntries = 1000;

  /// Parses every entry; the error names the first bad entry as `[i]: ...`.
  static Result<CidrSet> parse(const std::vector<std::string>& entries);

  bool contains(const IpAddress& ip) const;
  bool empty() const { return cidrs_.empty(); }
  const std::vector<Cidr>& cidrs() const { return cidrs_; }

 private:
  std::vector<Cidr> cidrs_;
};

}  // namespace hookguard::policy
