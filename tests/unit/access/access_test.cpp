#include "voxbridge/access/access.hpp"

#include <gtest/gtest.h>

namespace voxbridge::access {
namespace {

using namespace std::chrono_literals;
namespace ip = boost::asio::ip;

ip::address a(const char* s) {
  return ip::make_address(s);
}

TEST(Access, CidrMatchesByPrefix) {
  std::string err;
  auto c = parse_cidr("172.16.0.0/12", err);
  ASSERT_TRUE(c) << err;
  EXPECT_TRUE(c->contains(a("172.16.0.1")));
  EXPECT_TRUE(c->contains(a("172.31.255.255")));
  EXPECT_FALSE(c->contains(a("172.32.0.0")));
  EXPECT_FALSE(c->contains(a("172.15.255.255")));
  EXPECT_FALSE(c->contains(a("::1")));
  // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d.
  EXPECT_TRUE(c->contains(a("::ffff:172.20.1.2")));
  auto odd = parse_cidr("10.1.2.3/31", err);
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains(a("10.1.2.2")));
  EXPECT_FALSE(odd->contains(a("10.1.2.4")));
  auto host = parse_cidr("2001:db8::5", err);
  ASSERT_TRUE(host);
  EXPECT_EQ(host->prefix, 128u);
  EXPECT_TRUE(host->contains(a("2001:db8::5")));
  EXPECT_FALSE(host->contains(a("2001:db8::6")));
}

TEST(Access, MalformedNetworksAreRefusedWithTheReason) {
  std::string err;
  EXPECT_FALSE(parse_cidr("10.0.0.0/33", err));
  EXPECT_NE(err.find("prefix must be 0..32"), std::string::npos) << err;
  EXPECT_FALSE(parse_cidr("10.0.0/8", err));
  EXPECT_NE(err.find("not an address"), std::string::npos) << err;
  EXPECT_FALSE(parse_cidr("10.0.0.0/x", err));
  EXPECT_THROW(CidrSet::parse("10.0.0.0/8, bogus"), std::invalid_argument);
}

TEST(Access, DefaultsAreLoopbackAndPrivateRanges) {
  const CidrSet s = CidrSet::private_networks();
  for (const char* ok :
       {"127.0.0.1", "::1", "10.9.8.7", "172.16.5.4", "192.168.1.1", "fd12::1", "fe80::1"}) {
    EXPECT_TRUE(s.contains(a(ok))) << ok;
  }
  for (const char* no : {"8.8.8.8", "172.32.0.1", "2001:4860::8888", "100.64.0.1"}) {
    EXPECT_FALSE(s.contains(a(no))) << no;
  }
  EXPECT_TRUE(CidrSet::parse("any").contains(a("8.8.8.8")));
  EXPECT_TRUE(CidrSet::parse("any").contains(a("2001:4860::8888")));
  EXPECT_FALSE(CidrSet::parse("").contains(a("127.0.0.1")));
  EXPECT_EQ(CidrSet::parse("10.0.0.0/8 192.168.1.7").text(), "10.0.0.0/8, 192.168.1.7/32");
}

TEST(Access, RateLimitIsATokenBucketPerPeer) {
  PeerTable t({.rate_per_second = 2, .burst = 3, .max_calls = 0});
  const auto t0 = PeerTable::Clock::time_point{} + 1h;
  const auto p = a("10.0.0.1");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(t.admit(p, t0), Verdict::admit) << i;
  EXPECT_EQ(t.admit(p, t0), Verdict::rate_limited);
  EXPECT_EQ(t.admit(a("10.0.0.2"), t0), Verdict::admit);     // another peer has its own bucket
  EXPECT_EQ(t.admit(p, t0 + 400ms), Verdict::rate_limited);  // 0.8 of a token so far
  EXPECT_EQ(t.admit(p, t0 + 600ms), Verdict::admit);         // 1.2
  EXPECT_EQ(t.admit(p, t0 + 600ms), Verdict::rate_limited);
  EXPECT_EQ(t.admit(p, t0 + 10s), Verdict::admit);  // refilled, capped at the burst
  EXPECT_EQ(t.admit(p, t0 + 10s), Verdict::admit);
  EXPECT_EQ(t.admit(p, t0 + 10s), Verdict::admit);
  EXPECT_EQ(t.admit(p, t0 + 10s), Verdict::rate_limited);
}

TEST(Access, ConcurrentCallsPerPeerAreCappedAndReleased) {
  PeerTable t({.rate_per_second = 0, .burst = 20, .max_calls = 2});
  const auto p = a("192.168.0.9");
  EXPECT_EQ(t.admit(p), Verdict::admit);
  EXPECT_EQ(t.admit(a("::ffff:192.168.0.9")), Verdict::admit);  // the same peer
  EXPECT_EQ(t.admit(p), Verdict::too_many_calls);
  t.release(p);
  EXPECT_EQ(t.admit(p), Verdict::admit);
  EXPECT_STREQ(verdict_name(Verdict::too_many_calls), "peer_limit");
}

TEST(Access, ForgottenPeersDoNotAccumulate) {
  PeerTable t({.rate_per_second = 100, .burst = 1, .max_calls = 0});
  const auto t0 = PeerTable::Clock::time_point{} + 1h;
  for (int i = 0; i < 1000; ++i) {
    const std::string ip = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250);
    t.release(a(ip.c_str()));
    EXPECT_EQ(t.admit(a(ip.c_str()), t0), Verdict::admit);
    t.release(a(ip.c_str()));
  }
  EXPECT_EQ(t.admit(a("10.9.9.9"), t0 + 1min), Verdict::admit);  // prunes the refilled ones
  EXPECT_LE(t.peers(), 1u);
}

}  // namespace
}  // namespace voxbridge::access
