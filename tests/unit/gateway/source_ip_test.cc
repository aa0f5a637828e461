#include "gateway/source_ip.h"

#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace hookguard::policy {
// Readable failures: gtest finds this through ADL.
void PrintTo(const IpAddress& ip, std::ostream* out) { *out << ip.to_string(); }
}  // namespace hookguard::policy

namespace hookguard::gateway {
namespace {

policy::IpAddress ip(const std::string& text) {
  auto parsed = policy::IpAddress::parse(text);
  EXPECT_TRUE(parsed) << text;
  return parsed ? *parsed : policy::IpAddress{};
}

policy::CidrSet cidrs(const std::vector<std::string>& entries) {
  auto set = policy::CidrSet::parse(entries);
  EXPECT_TRUE(set) << set.error().message;
  return set ? *set : policy::CidrSet{};
}

// Two load balancers in 10.0.0.0/24, an internal proxy tier in fd00::/8.
const policy::CidrSet& trusted() {
  static const policy::CidrSet kTrusted = cidrs({"10.0.0.0/24", "fd00::/8"});
  return kTrusted;
}

struct Case {
  std::string name;
  std::string peer;
  std::optional<std::string> xff;
  std::string expected;
};

TEST(SourceIp, ResolvesFromPeerAndTrustedForwardedFor) {
  const std::vector<Case> cases = {
      // An untrusted peer is the source, whatever it claims.
      {"untrusted peer without header", "198.51.100.7", std::nullopt, "198.51.100.7"},
      {"spoofed header from untrusted peer ignored", "198.51.100.7", "192.30.252.1",
       "198.51.100.7"},
      {"spoofed trusted-looking header ignored", "198.51.100.7", "10.0.0.1", "198.51.100.7"},
      {"untrusted IPv6 peer", "2001:db8::5", "192.30.252.1", "2001:db8::5"},
      // A trusted peer: the right-most untrusted entry.
      {"trusted peer without header", "10.0.0.2", std::nullopt, "10.0.0.2"},
      {"trusted peer with empty header", "10.0.0.2", "", "10.0.0.2"},
      {"trusted peer, one client", "10.0.0.2", "203.0.113.9", "203.0.113.9"},
      {"client-supplied left part is not believed", "10.0.0.2", "192.30.252.1, 203.0.113.9",
       "203.0.113.9"},
      {"chain of trusted proxies is skipped", "10.0.0.2",
       "1.1.1.1, 203.0.113.9, 10.0.0.7, 10.0.0.3", "203.0.113.9"},
      {"mixed IPv6 proxy tier", "fd00::1", "203.0.113.9, fd12::4, 10.0.0.9", "203.0.113.9"},
      {"IPv6 client", "10.0.0.2", "2001:db8:1::77", "2001:db8:1::77"},
      {"IPv4-mapped client entry becomes IPv4", "10.0.0.2", "::ffff:203.0.113.9", "203.0.113.9"},
      {"IPv4-mapped trusted entry is skipped", "10.0.0.2", "203.0.113.9, ::ffff:10.0.0.5",
       "203.0.113.9"},
      {"all entries trusted: left-most", "10.0.0.2", "10.0.0.5, 10.0.0.6", "10.0.0.5"},
      {"spaces and tabs trimmed", "10.0.0.2", " \t203.0.113.9\t ,  10.0.0.5 ", "203.0.113.9"},
      {"no spaces", "10.0.0.2", "192.0.2.1,203.0.113.9,10.0.0.5", "203.0.113.9"},
      {"several header fields joined", "10.0.0.2", "192.0.2.1, 203.0.113.9, 10.0.0.5",
       "203.0.113.9"},
      {"empty elements skipped", "10.0.0.2", "203.0.113.9, , 10.0.0.5,", "203.0.113.9"},
      {"only empty elements", "10.0.0.2", " , ,", "10.0.0.2"},
      // A malformed entry stops the walk at the last trusted hop, never further left.
      {"malformed right-most entry: the peer", "10.0.0.2", "203.0.113.9, garbage", "10.0.0.2"},
      {"malformed behind a trusted hop: that hop", "10.0.0.2", "203.0.113.9, nope, 10.0.0.5",
       "10.0.0.5"},
      {"malformed left of the client is irrelevant", "10.0.0.2", "nope, 203.0.113.9",
       "203.0.113.9"},
      {"port suffix is malformed", "10.0.0.2", "192.0.2.1, 203.0.113.9:4711", "10.0.0.2"},
      {"bracketed IPv6 is malformed", "10.0.0.2", "[2001:db8::1]", "10.0.0.2"},
      {"bracketed IPv6 with port is malformed", "10.0.0.2", "[2001:db8::1]:443", "10.0.0.2"},
      {"unknown is malformed", "10.0.0.2", "unknown", "10.0.0.2"},
      {"obfuscated identifier is malformed", "10.0.0.2", "_hidden, 10.0.0.5", "10.0.0.5"},
      {"hostname is malformed", "10.0.0.2", "example.com", "10.0.0.2"},
      {"zone id is malformed", "10.0.0.2", "fe80::1%eth0", "10.0.0.2"},
      {"leading-zero IPv4 is malformed", "10.0.0.2", "010.0.0.1", "10.0.0.2"},
      {"CIDR is malformed", "10.0.0.2", "203.0.113.0/24", "10.0.0.2"},
      {"quoted is malformed", "10.0.0.2", "\"203.0.113.9\"", "10.0.0.2"},
      {"NUL inside an entry", "10.0.0.2", std::string("203.0.113.9\0x", 13), "10.0.0.2"},
      // Peers as Pistache reports them on a dual-stack listener.
      {"IPv4-mapped trusted peer", "::ffff:10.0.0.2", "203.0.113.9", "203.0.113.9"},
      {"IPv4-mapped untrusted peer", "::ffff:198.51.100.7", "203.0.113.9", "198.51.100.7"},
  };
  for (const auto& c : cases) {
    const auto peer = parse_peer_address(c.peer);
    ASSERT_TRUE(peer) << c.name;
    const std::optional<std::string_view> xff =
        c.xff ? std::optional<std::string_view>(*c.xff) : std::nullopt;
    EXPECT_EQ(resolve_source_ip(*peer, xff, trusted()).to_string(), c.expected) << c.name;
  }
}

TEST(SourceIp, NoTrustedProxiesMeansThePeerAlways) {
  EXPECT_EQ(resolve_source_ip(ip("10.0.0.2"), "203.0.113.9", policy::CidrSet{}), ip("10.0.0.2"));
}

TEST(SourceIp, Ipv4RangeDoesNotTrustIpv6Peers) {
  const auto set = cidrs({"0.0.0.0/1", "128.0.0.0/1"});
  EXPECT_EQ(resolve_source_ip(ip("::1"), "203.0.113.9", set), ip("::1"));
}

std::string chain(std::size_t trusted_hops, const std::string& client) {
  std::string xff = client;
  for (std::size_t i = 0; i < trusted_hops; ++i) xff += ", 10.0.0." + std::to_string(i % 250 + 1);
  return xff;
}

// Verifies the work bound: 64 entries from the right.
TEST(SourceIp, ExaminesAtMost64Entries) {
  // The client is the 64th entry from the right: still found.
  EXPECT_EQ(resolve_source_ip(ip("10.0.0.2"), chain(63, "203.0.113.9"), trusted()),
            ip("203.0.113.9"));
  // The 65th: out of reach, so the left-most examined trusted hop is used.
  EXPECT_EQ(resolve_source_ip(ip("10.0.0.2"), chain(64, "203.0.113.9"), trusted()), ip("10.0.0.1"));
  // Empty elements count too, so padding cannot buy more work.
  std::string padded = "203.0.113.9";
  for (int i = 0; i < 100; ++i) padded += ",";
  EXPECT_EQ(resolve_source_ip(ip("10.0.0.2"), padded, trusted()), ip("10.0.0.2"));
}

// Verifies the work bound: 8 KiB from the right, never half an address.
TEST(SourceIp, ExaminesAtMost8KiB) {
  // A client-padded left part beyond 8 KiB does not matter when the client is near the right.
  const std::string padding(20000, 'x');
  EXPECT_EQ(resolve_source_ip(ip("10.0.0.2"), padding + ", 203.0.113.9, 10.0.0.5", trusted()),
            ip("203.0.113.9"));

  // An entry cut by the 8 KiB boundary is not read: "11.22.33.44" cut to "1.22.33.44" would be a
  // valid, wrong address. The walk stops at the last trusted hop instead.
  const std::string client = "11.22.33.44";
  const std::string right = ", 10.0.0.5";
  const std::size_t blanks = kMaxForwardedForBytes - (client.size() - 1) - 1 - right.size();
  const std::string xff = client + "," + std::string(blanks, ' ') + right;
  ASSERT_EQ(xff.size(), kMaxForwardedForBytes + 1);
  EXPECT_EQ(resolve_source_ip(ip("10.0.0.2"), xff, trusted()), ip("10.0.0.5"));

  // Exactly 8 KiB is examined whole.
  std::string exact = "203.0.113.9";
  exact += std::string(kMaxForwardedForBytes - exact.size(), ' ');
  ASSERT_EQ(exact.size(), kMaxForwardedForBytes);
  EXPECT_EQ(resolve_source_ip(ip("10.0.0.2"), exact, trusted()), ip("203.0.113.9"));
}

TEST(SourceIp, ParsesPeerAddressesAsPistacheReportsThem) {
  EXPECT_EQ(parse_peer_address("127.0.0.1"), ip("127.0.0.1"));
  EXPECT_EQ(parse_peer_address("::1"), ip("::1"));
  EXPECT_EQ(parse_peer_address("[::1]"), ip("::1"));
  const auto mapped = parse_peer_address("::ffff:127.0.0.1");
  ASSERT_TRUE(mapped);
  EXPECT_TRUE(mapped->is_v4());
  EXPECT_EQ(mapped->to_string(), "127.0.0.1");
  EXPECT_FALSE(parse_peer_address(""));
  EXPECT_FALSE(parse_peer_address("localhost"));
  EXPECT_FALSE(parse_peer_address("127.0.0.1:8080"));
  EXPECT_FALSE(parse_peer_address("[127.0.0.1"));
}

TEST(SourceIp, JoinsEveryForwardedForFieldInOrder) {
  policy::HeaderList headers{{"X-Forwarded-For", "192.0.2.1"},
                             {"Content-Type", "application/json"},
                             {"x-forwarded-for", "203.0.113.9, 10.0.0.5"}};
  EXPECT_EQ(joined_forwarded_for(headers),
            std::optional<std::string>("192.0.2.1, 203.0.113.9, 10.0.0.5"));
  EXPECT_EQ(joined_forwarded_for(policy::HeaderList{{"Host", "x"}}), std::nullopt);
}

}  // namespace
}  // namespace hookguard::gateway
