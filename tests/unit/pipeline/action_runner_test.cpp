// ActionRunner against a fake control path: the exact ActionRequest of each proto action, results
// that arrive only through the call's poster (never inside run()), what to do next (go on,
// transferred, give up at the third refused transfer), and without a control path: a transfer
// decided by note_transfer, everything else "not configured". Results after stop() or after the
// runner is gone are dropped.
#include "voxbridge/pipeline/action_runner.hpp"
#include "voxbridge/events/call_event.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/fake_clients.hpp"

namespace voxbridge::pipeline {
namespace {

using testing::ManualPoster;
using Next = ActionRunner::Next;
using Kind = agent::ActionRequest::Kind;

constexpr const char* kNotConfigured = "not configured: no Asterisk control path";
constexpr const char* kNoControlHow = "the socket closes after the reply, the dialplan continues";

using FakeActions = testing::FakeCallActions;

common::v1::Action transfer(const std::string& target, const std::string& context = "") {
  common::v1::Action a;
  a.mutable_transfer()->set_target(target);
  a.mutable_transfer()->set_context(context);
  return a;
}

common::v1::Action send_dtmf(const std::string& digits, std::uint32_t ms) {
  common::v1::Action a;
  a.mutable_send_dtmf()->set_digits(digits);
  a.mutable_send_dtmf()->set_duration_ms(ms);
  return a;
}

common::v1::Action set_variable(const std::string& name, const std::string& value) {
  common::v1::Action a;
  a.mutable_set_variable()->set_name(name);
  a.mutable_set_variable()->set_value(value);
  return a;
}

common::v1::Action originate(const std::string& number, const std::string& agent,
                             const std::map<std::string, std::string>& vars) {
  common::v1::Action a;
  a.mutable_originate()->set_number(number);
  a.mutable_originate()->set_agent(agent);
  for (const auto& [k, v] : vars) (*a.mutable_originate()->mutable_variables())[k] = v;
  return a;
}

struct Got {
  std::string action;  // ShortDebugString
  std::string error;
  Next next;
};

/// An `action` transcript event, by its members.
struct Recorded {
  std::string action;  // the kind, then its target if it has one: "transfer 2001@sales"
  std::string error;
  std::string how;
};

std::string member(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

struct ActionRunnerTest : ::testing::Test {
  ActionRunnerTest() {
    info.uuid = "call-7";
    info.transcript = [this](events::Event e) {
      ASSERT_EQ(e.type(), events::Type::action);
      const auto& m = e.members();
      std::string what = member(m, "action");
      if (!member(m, "target").empty()) what += " " + member(m, "target");
      if (!member(m, "context").empty()) what += "@" + member(m, "context");
      records.push_back({what, member(m, "error"), member(m, "how")});
      order.push_back("record");
    };
  }

  ActionRunner& make(ActionRunner::Options options = {}) {
    runner.emplace(info, poster.poster(), options, [this](const ActionRunner::Result& r) {
      results.push_back({r.action.ShortDebugString(), r.error, r.next});
      order.push_back("result");
    });
    return *runner;
  }

  /// The control path answers request `i` (from its own thread: only posted).
  void answer(std::size_t i, std::string error) {
    ASSERT_LT(i, actions->calls.size());
    actions->calls[i].done(std::move(error));
  }

  agent::CallInfo info;
  ManualPoster poster;
  std::shared_ptr<FakeActions> actions = std::make_shared<FakeActions>();
  std::optional<ActionRunner> runner;
  std::vector<Got> results;
  std::vector<Recorded> records;
  std::vector<std::string> order;
};

// --- with a control path ---

TEST_F(ActionRunnerTest, ATransferBecomesATransferRequest) {
  info.actions = actions;
  make().run(transfer("2001", "sales"));
  ASSERT_EQ(actions->calls.size(), 1u);
  const auto& r = actions->calls[0].request;
  EXPECT_EQ(r.kind, Kind::transfer);
  EXPECT_EQ(r.target, "2001");
  EXPECT_EQ(r.context, "sales");
  EXPECT_EQ(r.digits, "");
  EXPECT_EQ(r.digit_ms, 0);
  EXPECT_EQ(r.name, "");
  EXPECT_EQ(r.value, "");
  EXPECT_TRUE(r.variables.empty());
}

TEST_F(ActionRunnerTest, SendDtmfBecomesDigitsAndDuration) {
  info.actions = actions;
  make().run(send_dtmf("12w#", 180));
  ASSERT_EQ(actions->calls.size(), 1u);
  const auto& r = actions->calls[0].request;
  EXPECT_EQ(r.kind, Kind::send_dtmf);
  EXPECT_EQ(r.digits, "12w#");
  EXPECT_EQ(r.digit_ms, 180);
  EXPECT_EQ(r.target, "");
  EXPECT_EQ(r.context, "");
}

TEST_F(ActionRunnerTest, SetVariableBecomesNameAndValue) {
  info.actions = actions;
  make().run(set_variable("VB_OUTCOME", "booked"));
  ASSERT_EQ(actions->calls.size(), 1u);
  const auto& r = actions->calls[0].request;
  EXPECT_EQ(r.kind, Kind::set_variable);
  EXPECT_EQ(r.name, "VB_OUTCOME");
  EXPECT_EQ(r.value, "booked");
  EXPECT_EQ(r.target, "");
}

TEST_F(ActionRunnerTest, OriginateBecomesNumberAgentAndVariables) {
  info.actions = actions;
  make().run(originate("+15550142", "callback", {{"VB_REASON", "booking"}, {"X", "1"}}));
  ASSERT_EQ(actions->calls.size(), 1u);
  const auto& r = actions->calls[0].request;
  EXPECT_EQ(r.kind, Kind::originate);
  EXPECT_EQ(r.target, "+15550142");
  EXPECT_EQ(r.name, "callback");
  EXPECT_EQ(r.variables,
            (std::map<std::string, std::string>{{"VB_REASON", "booking"}, {"X", "1"}}));
  EXPECT_EQ(r.context, "");
  EXPECT_EQ(r.value, "");
}

TEST_F(ActionRunnerTest, TheResultArrivesOnlyThroughThePoster) {
  info.actions = actions;
  make().run(transfer("2001"));
  EXPECT_TRUE(results.empty());  // not inside run()
  EXPECT_TRUE(records.empty());
  EXPECT_EQ(poster.pending(), 0u);
  answer(0, "");                 // the control thread
  EXPECT_TRUE(results.empty());  // not on the control thread either
  EXPECT_EQ(poster.pending(), 1u);
  EXPECT_EQ(poster.run(), 1u);  // the call's thread
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].action, transfer("2001").ShortDebugString());
  EXPECT_EQ(results[0].error, "");
  EXPECT_EQ(results[0].next, Next::transferred);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].action, "transfer 2001");
  EXPECT_EQ(records[0].error, "");
  EXPECT_EQ(records[0].how, "");
  EXPECT_EQ(order, (std::vector<std::string>{"record", "result"}));
  EXPECT_EQ(runner->refused_transfers(), 0u);
}

TEST_F(ActionRunnerTest, OtherActionsGoOnWhateverTheirResult) {
  info.actions = actions;
  auto& r = make();
  r.run(send_dtmf("5", 0));
  r.run(set_variable("VB_A", "b"));
  r.run(originate("100", "", {}));
  r.run(send_dtmf("6", 0));
  ASSERT_EQ(actions->calls.size(), 4u);
  // Answers out of order, one of them refused: each one reports its own action.
  answer(2, "");
  answer(0, "refused: not allowed");
  answer(3, "failed: channel gone");
  answer(1, "");
  poster.run();
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0].action, originate("100", "", {}).ShortDebugString());
  EXPECT_EQ(results[0].error, "");
  EXPECT_EQ(results[1].action, send_dtmf("5", 0).ShortDebugString());
  EXPECT_EQ(results[1].error, "refused: not allowed");
  EXPECT_EQ(results[2].action, send_dtmf("6", 0).ShortDebugString());
  EXPECT_EQ(results[2].error, "failed: channel gone");
  EXPECT_EQ(results[3].action, set_variable("VB_A", "b").ShortDebugString());
  for (const auto& g : results) EXPECT_EQ(g.next, Next::go_on);
  EXPECT_EQ(records.size(), 4u);
  EXPECT_EQ(runner->refused_transfers(), 0u);  // only transfers count
}

TEST_F(ActionRunnerTest, TheThirdRefusedOrFailedTransferGivesUp) {
  info.actions = actions;
  auto& r = make();
  const std::vector<std::string> errors = {"refused: 900 not allowed", "failed: no such extension",
                                           "refused: 901 not allowed"};
  for (std::size_t i = 0; i < errors.size(); ++i) {
    r.run(transfer("90" + std::to_string(i)));
    answer(i, errors[i]);
    poster.run();
    ASSERT_EQ(results.size(), i + 1);
    EXPECT_EQ(results[i].error, errors[i]);
    EXPECT_EQ(results[i].next,
              i + 1 < ActionRunner::kMaxRefusedTransfers ? Next::go_on : Next::give_up);
    EXPECT_EQ(r.refused_transfers(), i + 1);
  }
  EXPECT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].error, "refused: 901 not allowed");
}

TEST_F(ActionRunnerTest, ATransferThatWentDoesNotCountAsRefused) {
  info.actions = actions;
  auto& r = make();
  r.run(transfer("1"));
  r.run(transfer("2"));
  r.run(transfer("3"));
  answer(0, "refused: x");
  answer(1, "");
  answer(2, "refused: y");
  poster.run();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].next, Next::go_on);
  EXPECT_EQ(results[1].next, Next::transferred);
  EXPECT_EQ(results[2].next, Next::go_on);
  EXPECT_EQ(r.refused_transfers(), 2u);
}

TEST_F(ActionRunnerTest, AResultAfterStopIsDropped) {
  info.actions = actions;
  auto& r = make();
  r.run(transfer("2001"));
  answer(0, "");  // posted before the stop
  r.stop();
  r.run(send_dtmf("1", 0));  // nothing runs after stop
  EXPECT_EQ(actions->calls.size(), 1u);
  EXPECT_EQ(poster.run(), 1u);
  EXPECT_TRUE(results.empty());
  EXPECT_TRUE(records.empty());
}

TEST_F(ActionRunnerTest, AResultAfterTheRunnerIsGoneIsDropped) {
  info.actions = actions;
  make().run(set_variable("VB_A", "1"));
  make().run(set_variable("VB_A", "2"));  // a new runner: the first one is destroyed
  answer(0, "");
  runner.reset();
  answer(1, "");
  EXPECT_EQ(poster.run(), 2u);
  EXPECT_TRUE(results.empty());
  EXPECT_TRUE(records.empty());
}

TEST_F(ActionRunnerTest, HangupIsNotTheRunnersButStillGetsAnAnswer) {
  // The owner hangs up itself; a hangup that reaches the runner anyway goes nowhere.
  info.actions = actions;
  common::v1::Action a;
  a.mutable_hangup()->set_reason("done");
  make().run(a);
  EXPECT_TRUE(actions->calls.empty());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].error, kNotConfigured);
  EXPECT_EQ(results[0].next, Next::go_on);
}

// --- without a control path ---

TEST_F(ActionRunnerTest, WithoutControlAnAllowedTransferIsNotedAndTheCallHangsUp) {
  std::vector<std::pair<std::string, std::string>> asked;
  info.note_transfer = [&](const std::string& target, const std::string& context) {
    asked.emplace_back(target, context);
    return std::string();
  };
  make().run(transfer("2001", "sales"));
  // Decided at once, inside run().
  EXPECT_EQ(asked, (std::vector<std::pair<std::string, std::string>>{{"2001", "sales"}}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].error, "");
  EXPECT_EQ(results[0].next, Next::hang_up);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].action, "transfer 2001@sales");
  EXPECT_EQ(records[0].error, "");
  EXPECT_EQ(records[0].how, kNoControlHow);
  EXPECT_EQ(poster.pending(), 0u);
  EXPECT_EQ(runner->refused_transfers(), 0u);
}

TEST_F(ActionRunnerTest, WithoutControlARefusedTransferSaysWhyAndCounts) {
  info.note_transfer = [](const std::string& target, const std::string&) {
    return "target " + target + " is not in the allowlist";
  };
  auto& r = make();
  r.run(transfer("900"));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].error, "denied: target 900 is not in the allowlist");
  EXPECT_EQ(results[0].next, Next::go_on);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].error, "denied: target 900 is not in the allowlist");
  EXPECT_EQ(records[0].how, "");
  r.run(transfer("901"));
  r.run(transfer("902"));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[1].next, Next::go_on);
  EXPECT_EQ(results[2].next, Next::give_up);
  EXPECT_EQ(r.refused_transfers(), 3u);
}

TEST_F(ActionRunnerTest, WithoutControlOrPolicyEveryTransferIsRefused) {
  make().run(transfer("2001"));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].error, "denied: no transfer policy for this call");
  EXPECT_EQ(results[0].next, Next::go_on);
  EXPECT_EQ(runner->refused_transfers(), 1u);
}

TEST_F(ActionRunnerTest, WithoutControlOtherActionsAreNotConfigured) {
  auto& r = make();
  r.run(send_dtmf("1", 0));
  r.run(set_variable("VB_A", "b"));
  r.run(originate("100", "a", {}));
  ASSERT_EQ(results.size(), 3u);
  ASSERT_EQ(records.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].error, kNotConfigured);
    EXPECT_EQ(results[i].next, Next::go_on);
    EXPECT_EQ(records[i].error, kNotConfigured);
    EXPECT_EQ(records[i].how, "");
  }
  EXPECT_EQ(results[1].action, set_variable("VB_A", "b").ShortDebugString());
}

TEST_F(ActionRunnerTest, WithoutTransferWithoutControlATransferIsNotConfiguredAndNeverCounts) {
  bool asked = false;
  info.note_transfer = [&](const std::string&, const std::string&) {
    asked = true;
    return std::string();
  };
  auto& r = make(ActionRunner::Options{false});
  for (int i = 0; i < 5; ++i) r.run(transfer("2001"));
  EXPECT_FALSE(asked);
  ASSERT_EQ(results.size(), 5u);
  for (const auto& g : results) {
    EXPECT_EQ(g.error, kNotConfigured);
    EXPECT_EQ(g.next, Next::go_on);  // never give_up: "not configured" is not a refusal
  }
  EXPECT_EQ(r.refused_transfers(), 0u);
}

TEST_F(ActionRunnerTest, WithoutControlNothingRunsAfterStop) {
  auto& r = make();
  r.stop();
  r.run(transfer("2001"));
  r.run(send_dtmf("1", 0));
  EXPECT_TRUE(results.empty());
  EXPECT_TRUE(records.empty());
}

TEST(ActionRunnerDescribe, SaysWhatEachActionDoes) {
  EXPECT_EQ(ActionRunner::describe(transfer("2001", "sales")), "transfer to 2001");
  EXPECT_EQ(ActionRunner::describe(send_dtmf("12#", 100)), "send DTMF 12#");
  EXPECT_EQ(ActionRunner::describe(set_variable("VB_OUTCOME", "x")), "set VB_OUTCOME");
  EXPECT_EQ(ActionRunner::describe(originate("+15550142", "a", {})), "call +15550142");
  common::v1::Action h;
  h.mutable_hangup()->set_reason("bye");
  EXPECT_EQ(ActionRunner::describe(h), "hang up");
  EXPECT_EQ(ActionRunner::describe(common::v1::Action()), "unknown action");
}

}  // namespace
}  // namespace voxbridge::pipeline
