#include "voxbridge/guard/guard.hpp"

#include <gtest/gtest.h>

namespace voxbridge::guard {
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
  Policy a;
  a.contexts = {"from-internal", "voxbridge-transfer"};
  a.extensions = {"_2XXX", "0"};
  a.numbers = {"_NXXNXXXXXX"};
  EXPECT_EQ(a.check_transfer("2001", "from-internal"), "");
  EXPECT_EQ(a.check_transfer("0", "voxbridge-transfer"), "");
  EXPECT_EQ(a.check_transfer("2125551234", "from-internal"), "");
  EXPECT_EQ(a.check_transfer("2001", "from-trunk"),
            "context 'from-trunk' is not in allow_contexts");
  EXPECT_EQ(a.check_transfer("0044900123456", "from-internal"),
            "'0044900123456' matches neither allow_extensions nor allow_numbers");
  EXPECT_EQ(a.check_transfer("", "from-internal"), "no transfer target");
}

TEST(Allowlist, EmptyMeansNothingIsAllowed) {
  Policy a;
  a.contexts.clear();
  a.extensions.clear();
  EXPECT_NE(a.check_transfer("2001", "from-internal"), "");
  EXPECT_EQ(a.check_originate("2125551234"),
            "'2125551234' matches neither allow_numbers nor allow_extensions");
}

TEST(Allowlist, OriginateChecksNumbers) {
  Policy a;
  a.numbers = {"_NXXNXXXXXX"};
  EXPECT_EQ(a.check_originate("2125551234"), "");
  EXPECT_NE(a.check_originate("19005551234"), "");  // premium-rate prefix not allowed
}

// --- the one rule: characters and lengths before any pattern -----------------------------------

TEST(Guard, TheGotoIfInjectionTargetIsNotANumber) {
  // Finding 1: GotoIf splits on '?' and ':', so this target would land in from-internal.
  const std::string target = R"(" = "x" & "a:from-internal,9011441234567)";
  EXPECT_NE(check_dial_string(target), "");
  Policy p;
  p.extensions = {"_X."};
  EXPECT_NE(p.check_transfer(target, "voxbridge-transfer"), "");
}

TEST(Guard, ADotPatternSeesDigitsOnly) {
  // Finding 2: "_1800." matched "1800@from-internal/n", pasted into originate_channel.
  Policy p;
  p.numbers = {"_1800."};
  p.extensions = {"_X!"};
  EXPECT_EQ(p.check_originate("18005550100"), "");
  for (const char* bad : {"1800@from-internal/n", "1800&Local/1@x", "1800,1", "1800\"x", "1800'",
                          "1800/n", "1800 ", "1800\r\nAction: Originate", "18+00", "+", ""}) {
    EXPECT_NE(p.check_originate(bad), "") << bad;
    EXPECT_NE(p.check_transfer(bad, "voxbridge-transfer"), "") << bad;
  }
  EXPECT_EQ(check_dial_string("+442071234567"), "");
  EXPECT_EQ(check_dial_string("*72#"), "");
  EXPECT_NE(check_dial_string(std::string(kMaxDialString + 1, '1')), "");
  EXPECT_EQ(check_dial_string(std::string(kMaxDialString, '1')), "");
}

TEST(Guard, ContextsAreNamesOnly) {
  EXPECT_EQ(check_context("from-internal"), "");
  EXPECT_EQ(check_context("voxbridge_transfer2"), "");
  EXPECT_NE(check_context("from-internal,100,1"), "");
  EXPECT_NE(check_context("a:b"), "");
  EXPECT_NE(check_context(""), "");
  EXPECT_NE(check_context(std::string(kMaxContext + 1, 'a')), "");
}

TEST(Guard, VariableValuesCannotSmuggleAnotherVariable) {
  // Finding 3: Originate's Variable: VB_AGENT=sales,CALLERID(num)=2025550100 spoofed caller ID.
  EXPECT_NE(check_variable_value("sales,CALLERID(num)=2025550100", true), "");
  EXPECT_NE(check_variable_value("a|b", true), "");
  EXPECT_EQ(check_variable_value("sales, lead", false), "");  // Setvar does not split
  for (const char* bad : {"a\rb", "a\nAction: Hangup", "a\x01"}) {
    EXPECT_NE(check_variable_value(bad, false), "") << bad;
  }
  EXPECT_NE(check_variable_value(std::string("a\0b", 3), false), "");
  EXPECT_NE(check_variable_value(std::string(kMaxVariableValue + 1, 'a'), false), "");
  EXPECT_EQ(check_variable_value(std::string(kMaxVariableValue, 'a'), true), "");
}

TEST(Guard, VariableNamesAreWordsThatStartWithALetter) {
  EXPECT_EQ(check_variable_name("VB_RESULT"), "");
  EXPECT_NE(check_variable_name("CALLERID(num)"), "");
  EXPECT_NE(check_variable_name("_VB_UUID"), "");  // '_' = inherited by the channels it dials
  EXPECT_NE(check_variable_name("__VB_UUID"), "");
  EXPECT_NE(check_variable_name("A B"), "");
  EXPECT_NE(check_variable_name(std::string(kMaxVariableName + 1, 'A')), "");
}

TEST(Guard, DtmfIsCappedAndChecked) {
  EXPECT_EQ(check_dtmf("w42#*AD"), "");
  EXPECT_NE(check_dtmf(std::string(kMaxDtmf + 1, '1')), "");
  EXPECT_NE(check_dtmf("1,2"), "");
  EXPECT_NE(check_dtmf(""), "");
}

TEST(Guard, AnAgentSetsOnlyListedUnreservedVariables) {
  Policy p;
  p.variables = {"VB_RESULT", "CRM_*", "VB_*"};
  EXPECT_EQ(p.check_agent_variable("VB_RESULT", "sales lead"), "");
  EXPECT_EQ(p.check_agent_variable("CRM_TICKET", "123"), "");
  EXPECT_EQ(p.check_agent_variable("OTHER", "1"), "'OTHER' is not in allow_variables");
  // What voxbridge and its dialplan rely on stays out of reach even under "VB_*".
  for (const char* reserved :
       {"VB_TRANSFER", "VB_UUID", "VB_AGENT", "VB_LANGUAGE", "VB_OUTBOUND", "VB_REQUESTED_BY"}) {
    EXPECT_EQ(p.check_agent_variable(reserved, "1"),
              "'" + std::string(reserved) + "' is reserved for voxbridge")
        << reserved;
  }
  p.uuid_variable = "MY_UUID";
  p.variables.push_back("MY_UUID");
  EXPECT_EQ(p.check_agent_variable("MY_UUID", "x"), "'MY_UUID' is reserved for voxbridge");
  EXPECT_NE(p.check_agent_variable("VB_RESULT", "a\nb"), "");
  Policy none;
  EXPECT_EQ(none.check_agent_variable("VB_RESULT", "x"), "'VB_RESULT' is not in allow_variables");
}

TEST(Guard, OriginateVariablesAreCheckedWhoeverAsks) {
  Policy p;
  p.variables = {"VB_REASON"};
  EXPECT_EQ(p.check_originate_variables({{"VB_REASON", "callback"}}, true), "");
  EXPECT_EQ(p.check_originate_variables({{"VB_CAMPAIGN", "renewals"}}, false), "");
  EXPECT_EQ(p.check_originate_variables({{"VB_CAMPAIGN", "renewals"}}, true),
            "'VB_CAMPAIGN' is not in allow_variables");
  EXPECT_NE(p.check_originate_variables({{"VB_REASON", "a,CALLERID(num)=2025550100"}}, true), "");
  EXPECT_NE(p.check_originate_variables({{"CALLERID(num)", "1"}}, false), "");
  EXPECT_EQ(p.check_originate_variables({{"VB_UUID", "x"}}, false),
            "'VB_UUID' is reserved for voxbridge");
  std::map<std::string, std::string> many;
  for (std::size_t i = 0; i <= kMaxOriginateVariables; ++i) many["V" + std::to_string(i)] = "1";
  EXPECT_NE(p.check_originate_variables(many, false), "");
}

TEST(Guard, CallerIdAndAgentNames) {
  EXPECT_EQ(check_caller_id("\"Sales\" <2125551234>"), "");
  EXPECT_NE(check_caller_id("x\r\nAction: Originate"), "");
  EXPECT_EQ(check_agent_name("receptionist"), "");
  EXPECT_NE(check_agent_name("sales,CALLERID(num)=1"), "");
}

TEST(Guard, MusicOnHoldClasses) {
  EXPECT_EQ(check_moh_class(""), "");  // the channel's default class
  EXPECT_EQ(check_moh_class("hold-music_2"), "");
  EXPECT_EQ(check_moh_class(std::string(79, 'a')), "");
  EXPECT_NE(check_moh_class(std::string(80, 'a')), "");
  EXPECT_EQ(check_moh_class("default&mohClass=x"),
            "'default&mohClass=x' is not a music-on-hold class (A-Z a-z 0-9 _ -)");
  EXPECT_NE(check_moh_class("a/../b"), "");
}

TEST(Guard, APolicyThatListsAReservedNameIsRefused) {
  Policy p;
  EXPECT_EQ(p.validate(), "");
  p.variables = {"VB_TRANSFER"};
  EXPECT_EQ(p.validate(), "allow_variables: 'VB_TRANSFER' is reserved for voxbridge");
  p.variables = {"VB_*"};
  EXPECT_EQ(p.validate(), "");
  p.contexts = {"from-internal,1"};
  EXPECT_NE(p.validate(), "");
}

TEST(Guard, TheDefaultPolicyIsWhatTheReceptionistNeeds) {
  const Policy p;
  EXPECT_EQ(p.check_transfer("100", "voxbridge-transfer"), "");
  EXPECT_EQ(p.check_transfer("200", "voxbridge-transfer"), "");
  EXPECT_NE(p.check_transfer("300", "voxbridge-transfer"), "");
  EXPECT_NE(p.check_transfer("100", "from-internal"), "");
  EXPECT_NE(p.check_originate("2125551234"), "");  // no outside number by default
}

}  // namespace
}  // namespace voxbridge::guard
