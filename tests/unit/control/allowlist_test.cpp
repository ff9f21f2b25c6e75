#include "voxbridge/control/allowlist.hpp"

#include <gtest/gtest.h>

namespace voxbridge::control {
namespace {

TEST(DialPattern, LiteralsMatchExactly) {
  EXPECT_TRUE(match_dial_pattern("2001", "2001"));
  EXPECT_FALSE(match_dial_pattern("2001", "20011"));
  EXPECT_FALSE(match_dial_pattern("2001", "200"));
  EXPECT_TRUE(match_dial_pattern("operator", "operator"));
  EXPECT_FALSE(match_dial_pattern("2001", ""));
}

TEST(DialPattern, AsteriskClassesAndRanges) {
  EXPECT_TRUE(match_dial_pattern("_1XX", "100"));
  EXPECT_TRUE(match_dial_pattern("_1XX", "199"));
  EXPECT_FALSE(match_dial_pattern("_1XX", "200"));
  EXPECT_FALSE(match_dial_pattern("_1XX", "1000"));
  EXPECT_FALSE(match_dial_pattern("_1XX", "1a0"));
  EXPECT_TRUE(match_dial_pattern("_NXXNXXXXXX", "2125551234"));
  EXPECT_FALSE(match_dial_pattern("_NXXNXXXXXX", "1125551234"));  // N is 2-9
  EXPECT_TRUE(match_dial_pattern("_Z", "1"));
  EXPECT_FALSE(match_dial_pattern("_Z", "0"));
  EXPECT_TRUE(match_dial_pattern("_x", "7"));  // class letters in any case
  EXPECT_TRUE(match_dial_pattern("_[15-7]", "6"));
  EXPECT_FALSE(match_dial_pattern("_[15-7]", "4"));
  EXPECT_TRUE(match_dial_pattern("_+1NXXNXXXXXX", "+12125551234"));
  EXPECT_FALSE(match_dial_pattern("_+1NXXNXXXXXX", "12125551234"));
}

TEST(DialPattern, DotAndBang) {
  EXPECT_TRUE(match_dial_pattern("_9.", "9123"));
  EXPECT_FALSE(match_dial_pattern("_9.", "9"));  // '.' is one or more
  EXPECT_TRUE(match_dial_pattern("_9!", "9"));   // '!' zero or more
  EXPECT_FALSE(match_dial_pattern("_9.", "8123"));
}

TEST(DialPattern, SyntaxErrorsAreReportedAndNeverMatch) {
  EXPECT_EQ(check_dial_pattern("_1[2-"), "'[' without ']' in _1[2-");
  EXPECT_EQ(check_dial_pattern("_[]"), "empty [] in _[]");
  EXPECT_EQ(check_dial_pattern(""), "empty pattern");
  EXPECT_EQ(check_dial_pattern("_1XX"), "");
  EXPECT_FALSE(match_dial_pattern("_1[2-", "12"));
}

TEST(Allowlist, TransferNeedsAnAllowedContextAndTarget) {
  Allowlist a;
  a.contexts = {"from-internal", "voxbridge-transfer"};
  a.extensions = {"_2XXX", "operator"};
  a.numbers = {"_NXXNXXXXXX"};
  EXPECT_EQ(a.check_transfer("2001", "from-internal"), "");
  EXPECT_EQ(a.check_transfer("operator", "voxbridge-transfer"), "");
  EXPECT_EQ(a.check_transfer("2125551234", "from-internal"), "");
  EXPECT_EQ(a.check_transfer("2001", "from-trunk"),
            "context 'from-trunk' is not in allow_contexts");
  EXPECT_EQ(a.check_transfer("0044900123456", "from-internal"),
            "'0044900123456' matches neither allow_extensions nor allow_numbers");
  EXPECT_EQ(a.check_transfer("", "from-internal"), "no transfer target");
}

TEST(Allowlist, EmptyMeansNothingIsAllowed) {
  Allowlist a;
  EXPECT_NE(a.check_transfer("2001", "from-internal"), "");
  EXPECT_EQ(a.check_originate("2125551234"),
            "'2125551234' matches neither allow_numbers nor allow_extensions");
}

TEST(Allowlist, OriginateChecksNumbers) {
  Allowlist a;
  a.numbers = {"_NXXNXXXXXX"};
  EXPECT_EQ(a.check_originate("2125551234"), "");
  EXPECT_NE(a.check_originate("19005551234"), "");  // premium-rate prefix not allowed
}

}  // namespace
}  // namespace voxbridge::control
