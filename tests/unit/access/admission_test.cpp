#include "voxbridge/access/admission.hpp"

#include <gtest/gtest.h>

#include <utility>

namespace voxbridge::access {
namespace {

namespace ip = boost::asio::ip;
using Refusal = Admission::Refusal;

TEST(Admission, ATicketHoldsItsCallAndPeerSlotUntilDestroyed) {
  PeerLimits limits;
  limits.max_calls = 1;
  Admission admission({limits});
  const auto peer = ip::make_address("127.0.0.1");
  Refusal why = Refusal::none;
  {
    AdmissionTicket first = admission.admit(0, peer, CidrSet::loopback(), 10, why);
    EXPECT_TRUE(first);
    EXPECT_EQ(why, Refusal::none);
    EXPECT_EQ(admission.active(), 1);
    AdmissionTicket second = admission.admit(0, peer, CidrSet::loopback(), 10, why);
    EXPECT_FALSE(second);
    EXPECT_EQ(why, Refusal::peer_limit);
    EXPECT_EQ(admission.active(), 1);
    AdmissionTicket moved = std::move(first);
    EXPECT_FALSE(first);  // NOLINT(bugprone-use-after-move): a moved-from ticket holds nothing
    EXPECT_EQ(admission.active(), 1);
  }
  EXPECT_EQ(admission.active(), 0);
  AdmissionTicket again = admission.admit(0, peer, CidrSet::loopback(), 10, why);
  EXPECT_TRUE(again);  // the peer's slot came back with the call's
}

TEST(Admission, RefusesOutsideTheAllowListAndBeyondMaxCalls) {
  Admission admission({PeerLimits{}});
  Refusal why = Refusal::none;
  EXPECT_FALSE(admission.admit(0, ip::make_address("192.0.2.1"), CidrSet::loopback(), 10, why));
  EXPECT_EQ(why, Refusal::not_allowed);
  const auto peer = ip::make_address("127.0.0.1");
  AdmissionTicket one = admission.admit(0, peer, CidrSet::loopback(), 1, why);
  EXPECT_TRUE(one);
  EXPECT_FALSE(admission.admit(0, peer, CidrSet::loopback(), 1, why));
  EXPECT_EQ(why, Refusal::max_calls);
  EXPECT_EQ(admission.active(), 1);
}

}  // namespace
}  // namespace voxbridge::access
