#include "voxbridge/control/ami_actions.hpp"

#include <gtest/gtest.h>

namespace voxbridge::control {
namespace {

std::string wire(const ami_actions::Action& a) {
  return *encode_action(a.name, "vb-1", a.fields);
}

TEST(AmiActions, EachActionHasAsterisksFields) {
  EXPECT_EQ(wire(ami_actions::redirect("PJSIP/a-1", "sales", "100")),
            "Action: Redirect\r\nActionID: vb-1\r\nChannel: PJSIP/a-1\r\nContext: sales\r\n"
            "Exten: 100\r\nPriority: 1\r\n\r\n");
  EXPECT_EQ(wire(ami_actions::blind_transfer("PJSIP/a-1", "from-internal", "2001")),
            "Action: BlindTransfer\r\nActionID: vb-1\r\nChannel: PJSIP/a-1\r\n"
            "Context: from-internal\r\nExten: 2001\r\n\r\n");
  EXPECT_EQ(wire(ami_actions::hangup("PJSIP/a-1")),
            "Action: Hangup\r\nActionID: vb-1\r\nChannel: PJSIP/a-1\r\nCause: 16\r\n\r\n");
  EXPECT_EQ(wire(ami_actions::play_dtmf("PJSIP/a-1", '#', 250)),
            "Action: PlayDTMF\r\nActionID: vb-1\r\nChannel: PJSIP/a-1\r\nDigit: #\r\n"
            "Duration: 250\r\nReceive: false\r\n\r\n");
  EXPECT_EQ(wire(ami_actions::setvar("PJSIP/a-1", "VB_RESULT", "sales")),
            "Action: Setvar\r\nActionID: vb-1\r\nChannel: PJSIP/a-1\r\nVariable: VB_RESULT\r\n"
            "Value: sales\r\n\r\n");
  EXPECT_EQ(wire(ami_actions::getvar("PJSIP/a-1", "CALLERID(num)")),
            "Action: Getvar\r\nActionID: vb-1\r\nChannel: PJSIP/a-1\r\n"
            "Variable: CALLERID(num)\r\n\r\n");
  EXPECT_EQ(wire(ami_actions::originate("PJSIP/2125551234@trunk", "voxbridge-outbound", "s", 30000,
                                        "\"Acme\" <5551000>",
                                        {{"VB_AGENT", "bot"}, {"VB_CAMPAIGN", "renewals"}})),
            "Action: Originate\r\nActionID: vb-1\r\nChannel: PJSIP/2125551234@trunk\r\n"
            "Context: voxbridge-outbound\r\nExten: s\r\nPriority: 1\r\nAsync: true\r\n"
            "Timeout: 30000\r\nCallerID: \"Acme\" <5551000>\r\nVariable: VB_AGENT=bot\r\n"
            "Variable: VB_CAMPAIGN=renewals\r\n\r\n");
}

}  // namespace
}  // namespace voxbridge::control
