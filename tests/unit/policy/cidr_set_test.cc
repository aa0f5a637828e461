#include "policy/cidr_set.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hookguard::policy {
namespace {

IpAddress ip(std::string_view text) {
  auto parsed = IpAddress::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(IpAddress{});
}

CidrSet set_of(const std::vector<std::string>& entries) {
  auto parsed = CidrSet::parse(entries);
  EXPECT_TRUE(parsed.has_value()) << (parsed ? "" : parsed.error().message);
  return parsed.value_or(CidrSet{});
}

TEST(IpAddress, ParsesIpv4AndIpv6) {
  EXPECT_TRUE(ip("192.0.2.1").is_v4());
  EXPECT_EQ(ip("192.0.2.1").to_string(), "192.0.2.1");
  EXPECT_FALSE(ip("2001:db8::1").is_v4());
  EXPECT_EQ(ip("2001:DB8:0::1").to_string(), "2001:db8::1");
  EXPECT_EQ(IpAddress::v4(0xC0000201), ip("192.0.2.1"));
}

TEST(IpAddress, NormalisesIpv4MappedIpv6ToIpv4) {
  const auto mapped = ip("::ffff:10.1.2.3");
  EXPECT_TRUE(mapped.is_v4());
  EXPECT_EQ(mapped, ip("10.1.2.3"));
  EXPECT_EQ(mapped.to_string(), "10.1.2.3");
}

TEST(IpAddress, RejectsMalformedInput) {
  for (std::string_view bad :
       {"", " ", "10.0.0.1 ", " 10.0.0.1", "10.0.0", "10.0.0.256", "1.2.3.4.5", "010.0.0.1",
        "10.01.0.1", "::ffff:010.1.2.3", "fe80::1%eth0", "[::1]", "::1:", "gggg::1", "0x0a.0.0.1",
        "10.0.0.1\n", "1.2.3.4:80", "10.0.0.1/8"}) {
    auto parsed = IpAddress::parse(bad);
    EXPECT_FALSE(parsed.has_value()) << '"' << bad << '"';
  }
}

TEST(IpAddress, AcceptsHexGroupsWithLeadingZeros) {
  EXPECT_EQ(ip("2001:0db8::0001"), ip("2001:db8::1"));
  EXPECT_EQ(ip("::0db8"), ip("::db8"));
}

TEST(IpAddress, ZoneIdErrorSaysSo) {
  auto parsed = IpAddress::parse("fe80::1%eth0");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_NE(parsed.error().message.find("zone"), std::string::npos);
}

TEST(IpAddress, MaskedClearsBitsAfterThePrefix) {
  EXPECT_EQ(ip("2001:db8:1:2:3:4:5:6").masked(64), ip("2001:db8:1:2::"));
  EXPECT_EQ(ip("10.1.2.3").masked(8), ip("10.0.0.0"));
  EXPECT_EQ(ip("10.1.2.3").masked(12), ip("10.0.0.0"));
  EXPECT_EQ(ip("10.31.2.3").masked(12), ip("10.16.0.0"));
  EXPECT_EQ(ip("10.1.2.3").masked(0), ip("0.0.0.0"));
  EXPECT_EQ(ip("10.1.2.3").masked(32), ip("10.1.2.3"));
  EXPECT_EQ(ip("10.1.2.3").masked(99), ip("10.1.2.3"));
}

TEST(Cidr, BareAddressIsAHostRoute) {
  auto v4 = Cidr::parse("192.0.2.7");
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->prefix, 32);
  auto v6 = Cidr::parse("2001:db8::7");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->prefix, 128);
  EXPECT_EQ(v6->to_string(), "2001:db8::7/128");
}

TEST(Cidr, RejectsHostBitsSetAndSuggestsTheNetwork) {
  auto parsed = Cidr::parse("10.0.0.1/8");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().message, "host bits set; did you mean 10.0.0.0/8?");
  auto v6 = Cidr::parse("2001:db8::1/32");
  ASSERT_FALSE(v6.has_value());
  EXPECT_EQ(v6.error().message, "host bits set; did you mean 2001:db8::/32?");
}

TEST(Cidr, RejectsPrefixLongerThan32ForIpv4) {
  EXPECT_FALSE(Cidr::parse("10.0.0.0/33").has_value());
  EXPECT_TRUE(Cidr::parse("10.0.0.0/32").has_value());
}

TEST(Cidr, RejectsPrefixLongerThan128ForIpv6) {
  EXPECT_FALSE(Cidr::parse("2001:db8::/129").has_value());
  EXPECT_TRUE(Cidr::parse("2001:db8::/128").has_value());
}

TEST(Cidr, RejectsMalformedPrefixes) {
  for (std::string_view bad :
       {"10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/08", "10.0.0.0/8 ", "10.0.0.0/ 8",
        "10.0.0.0/8/8", "10.0.0.0/1000", "/8", "10.0.0.0/x", "fe80::%eth0/64"}) {
    EXPECT_FALSE(Cidr::parse(bad).has_value()) << '"' << bad << '"';
  }
}

TEST(Cidr, ZeroPrefixIsTheWholeFamily) {
  auto any4 = Cidr::parse("0.0.0.0/0");
  ASSERT_TRUE(any4.has_value());
  EXPECT_TRUE(any4->contains(ip("203.0.113.9")));
  EXPECT_FALSE(any4->contains(ip("::1")));
  auto any6 = Cidr::parse("::/0");
  ASSERT_TRUE(any6.has_value());
  EXPECT_TRUE(any6->contains(ip("::1")));
  EXPECT_FALSE(any6->contains(ip("203.0.113.9")));
}

TEST(CidrSet, MatchesIpv4AndIpv6Members) {
  const auto set = set_of({"192.30.252.0/22", "2001:db8::/32", "198.51.100.7"});
  EXPECT_TRUE(set.contains(ip("192.30.252.1")));
  EXPECT_TRUE(set.contains(ip("192.30.255.255")));
  EXPECT_FALSE(set.contains(ip("192.31.0.0")));
  EXPECT_TRUE(set.contains(ip("2001:db8:ffff::1")));
  EXPECT_FALSE(set.contains(ip("2001:db9::1")));
  EXPECT_TRUE(set.contains(ip("198.51.100.7")));
  EXPECT_FALSE(set.contains(ip("198.51.100.8")));
}

TEST(CidrSet, AnyIpv4DoesNotAdmitIpv6Loopback) {
  const auto set = set_of({"0.0.0.0/0"});
  EXPECT_FALSE(set.contains(ip("::1")));
  EXPECT_TRUE(set.contains(ip("127.0.0.1")));
}

// Verifies a dual-stack listener's view of an IPv4 peer still matches its IPv4 rule (DESIGN §8).
TEST(CidrSet, Ipv4MappedPeerMatchesItsIpv4Rule) {
  const auto set = set_of({"10.0.0.0/8"});
  EXPECT_TRUE(set.contains(ip("::ffff:10.1.2.3")));
  EXPECT_FALSE(set.contains(ip("::ffff:11.1.2.3")));
}

// Verifies a rule written in mapped form counts its prefix in IPv6 bits (/104 = IPv4 /8).
TEST(Cidr, Ipv4MappedRuleBecomesTheEquivalentIpv4Network) {
  auto parsed = Cidr::parse("::ffff:10.0.0.0/104");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->to_string(), "10.0.0.0/8");
  EXPECT_TRUE(parsed->contains(ip("10.9.9.9")));
  EXPECT_FALSE(Cidr::parse("::ffff:10.0.0.0/8").has_value());
  auto bare = Cidr::parse("::ffff:10.0.0.1");
  ASSERT_TRUE(bare.has_value());
  EXPECT_EQ(bare->to_string(), "10.0.0.1/32");
}

TEST(CidrSet, ErrorNamesTheFirstBadEntry) {
  auto parsed = CidrSet::parse({"10.0.0.0/8", "2001:db8::/32", "10.0.0.1/8", "junk"});
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().field, "[2]");
  EXPECT_EQ(parsed.error().message, "[2]: host bits set; did you mean 10.0.0.0/8?");
}

TEST(CidrSet, RejectsEmptyAndWhitespaceEntries) {
  for (const std::string bad : {"", " ", "\t10.0.0.0/8", "10.0.0.0/8 "}) {
    auto parsed = CidrSet::parse({bad});
    ASSERT_FALSE(parsed.has_value()) << '"' << bad << '"';
    EXPECT_TRUE(parsed.error().message.starts_with("[0]: ")) << parsed.error().message;
  }
}

TEST(CidrSet, RejectsMoreThanTheMaximumEntries) {
  std::vector<std::string> entries(CidrSet::kMaxEntries + 1, "10.0.0.0/8");
  EXPECT_FALSE(CidrSet::parse(entries).has_value());
  entries.pop_back();
  EXPECT_TRUE(CidrSet::parse(entries).has_value());
}

TEST(CidrSet, EmptySetContainsNothing) {
  const auto set = set_of({});
  EXPECT_TRUE(set.empty());
  EXPECT_FALSE(set.contains(ip("10.0.0.1")));
}

}  // namespace
}  // namespace hookguard::policy
