#include "voxbridge/control/ami_codec.hpp"

#include <gtest/gtest.h>

namespace voxbridge::control {
namespace {

TEST(AmiCodec, EncodesAnActionWithCrlfLinesAndAnEmptyLine) {
  const auto bytes = encode_action("Redirect", "vb-7",
                                   {{"Channel", "PJSIP/trunk-00000012"},
                                    {"Context", "sales"},
                                    {"Exten", "2001"},
                                    {"Priority", "1"}});
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes,
            "Action: Redirect\r\nActionID: vb-7\r\nChannel: PJSIP/trunk-00000012\r\n"
            "Context: sales\r\nExten: 2001\r\nPriority: 1\r\n\r\n");
}

TEST(AmiCodec, RepeatsKeysInOrder) {
  const auto bytes = encode_action("Originate", "1", {{"Variable", "A=1"}, {"Variable", "B=2"}});
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, "Action: Originate\r\nActionID: 1\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n");
}

TEST(AmiCodec, RefusesLineBreaksThatWouldInjectHeaders) {
  std::string why;
  EXPECT_FALSE(encode_action("Redirect", "1", {{"Exten", "100\r\nAction: Originate"}}, &why));
  EXPECT_EQ(why, "the value of Exten holds a line break");
  EXPECT_FALSE(encode_action("Setvar", "1", {{"Value", "a\nb"}}, &why));
  EXPECT_FALSE(encode_action("Setvar", "1", {{"Na:me", "x"}}, &why));
  EXPECT_EQ(why, "bad field name 'Na:me'");
  EXPECT_FALSE(encode_action("Ping\r\n", "1", {}, &why));
}

TEST(AmiParser, ReadsTheBannerThenMessagesSplitAnywhere) {
  const std::string wire =
      "Asterisk Call Manager/13.0.0\r\n"
      "Response: Success\r\nActionID: vb-1\r\nMessage: Authentication accepted\r\n\r\n"
      "Event: VarSet\r\nPrivilege: dialplan,all\r\nChannel: Local/1@agent-00000000;1\r\n"
      "Uniqueid: 1700000000.1\r\nVariable: VB_UUID\r\n"
      "Value: 8a2d9c62-2bd7-4a5e-9d3e-2f3b1c0d9e71\r\n\r\n";
  // Every split point gives the same result.
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    AmiParser p;
    p.expect_banner();
    std::vector<AmiMessage> out;
    ASSERT_TRUE(p.feed(std::string_view(wire).substr(0, cut), out));
    ASSERT_TRUE(p.feed(std::string_view(wire).substr(cut), out));
    ASSERT_EQ(out.size(), 2u) << "cut at " << cut;
    EXPECT_EQ(p.banner(), "Asterisk Call Manager/13.0.0");
    EXPECT_TRUE(out[0].is_response());
    EXPECT_EQ(out[0].action_id(), "vb-1");
    EXPECT_EQ(out[0].get("message"), "Authentication accepted");  // keys ignore case
    EXPECT_EQ(out[1].event(), "VarSet");
    EXPECT_EQ(out[1].get("Value"), "8a2d9c62-2bd7-4a5e-9d3e-2f3b1c0d9e71");
    EXPECT_EQ(out[1].get("Channel"), "Local/1@agent-00000000;1");
  }
}

TEST(AmiParser, KeepsRepeatedKeysAndValuesWithColons) {
  AmiParser p;
  std::vector<AmiMessage> out;
  ASSERT_TRUE(p.feed("Event: X\nChanVariable: A=1\nChanVariable: B=2\nTime: 10:20:30\n\n", out));
  ASSERT_EQ(out.size(), 1u);
  const auto all = out[0].get_all("ChanVariable");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], "A=1");
  EXPECT_EQ(all[1], "B=2");
  EXPECT_EQ(out[0].get("Time"), "10:20:30");
  EXPECT_EQ(out[0].get("Missing"), "");
}

TEST(AmiParser, RejectsAnythingButAnAsteriskBanner) {
  AmiParser p;
  p.expect_banner();
  std::vector<AmiMessage> out;
  EXPECT_FALSE(p.feed("HTTP/1.1 400 Bad Request\r\n", out));
  EXPECT_EQ(p.error(), "not an Asterisk manager (banner 'HTTP/1.1 400 Bad Request')");
}

TEST(AmiParser, LimitsLineLengthAndFieldCount) {
  AmiParser p(AmiParser::Limits{64, 4});
  std::vector<AmiMessage> out;
  EXPECT_FALSE(p.feed(std::string(65, 'x'), out));
  EXPECT_EQ(p.error(), "line longer than 64 bytes");
  EXPECT_FALSE(p.feed("\r\n", out));  // stays failed

  AmiParser q(AmiParser::Limits{64, 4});
  EXPECT_FALSE(q.feed("A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n", out));
  EXPECT_EQ(q.error(), "message of more than 4 lines");
  EXPECT_TRUE(out.empty());
}

TEST(AmiCodec, Md5KeyIsHexOfChallengeAndSecret) {
  // md5("123456789" "secret"), computed independently with md5sum.
  EXPECT_EQ(ami_md5_key("123456789", "secret"), "7ccde16e862dfe7681297713e9e9cadb");
  EXPECT_EQ(ami_md5_key("", ""), "d41d8cd98f00b204e9800998ecf8427e");
}

}  // namespace
}  // namespace voxbridge::control
