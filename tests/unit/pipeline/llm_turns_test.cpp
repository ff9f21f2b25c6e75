// LlmTurns against fake provider clients: the request each turn sends (history, interrupted
// replies, the caller's words, events, turn number, session and call facts), the history's
// caps, the one retry of a turn that fails before any text, and cancellation.
#include "voxbridge/pipeline/llm_turns.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/fake_clients.hpp"
#include "voxbridge/metrics/metrics.hpp"

namespace voxbridge::pipeline {
namespace {

using namespace std::chrono_literals;
using providers::StreamStatus;
using testing::FakeProviderClients;
using testing::ManualPoster;

struct Msg {
  llm::v1::Role role;
  std::string text;
  bool interrupted;
  bool operator==(const Msg&) const = default;
};

std::vector<Msg> history_of(const llm::v1::TurnRequest& r) {
  std::vector<Msg> out;
  for (const auto& m : r.history()) out.push_back({m.role(), m.text(), m.interrupted()});
  return out;
}

struct LlmTurnsTest : ::testing::Test {
  LlmTurnsTest() {
    spec.llm.name = "llm-test";
    spec.llm.address = "127.0.0.1:1";
    spec.rpc_timeout = 7000ms;
    spec.retry_backoff = 200ms;  // 10 ticks
    call.set_call_id("call-1");
    call.set_listener("main");
    call.set_caller_number("+15550100");
    call.set_language("en-US");
  }

  void start() {
    turns.start(poster.poster(), "call-1",
                LlmTurns::Events{
                    [this](std::string_view d) { text += d; },
                    [this](const common::v1::Action& a) { actions.push_back(a); },
                    [this] { ++done; },
                    [this](std::string why) { failures.push_back(std::move(why)); },
                },
                &counters);
  }

  PipelineSpec spec;
  common::v1::CallInfo call;
  ManualPoster poster;
  std::shared_ptr<FakeProviderClients> clients = std::make_shared<FakeProviderClients>();
  metrics::ProviderCounters counters;
  LlmTurns turns{spec, clients, call};

  std::string text;
  std::vector<common::v1::Action> actions;
  int done = 0;
  std::vector<std::string> failures;
};

TEST_F(LlmTurnsTest, ATurnSendsTheCallerWordsTurnSessionCallFactsAndTheBoundedTarget) {
  start();
  turns.ask(1, "book a table");
  ASSERT_EQ(clients->llm().size(), 1u);
  const auto& t = clients->last_llm();
  EXPECT_EQ(t.target().name, "llm-test");
  EXPECT_EQ(t.target().address, "127.0.0.1:1");
  EXPECT_EQ(t.target().deadline, 7000ms);  // the provider sets none: rpc_timeout
  const auto& r = t.request();
  EXPECT_EQ(r.user_text(), "book a table");
  EXPECT_EQ(r.turn(), 1u);
  EXPECT_EQ(r.session_id(), "call-1");
  EXPECT_EQ(r.call().call_id(), "call-1");
  EXPECT_EQ(r.call().listener(), "main");
  EXPECT_EQ(r.call().caller_number(), "+15550100");
  EXPECT_EQ(r.history_size(), 0);  // the caller's words are the user_text, not history yet
  EXPECT_EQ(r.events_size(), 0);
  EXPECT_EQ(counters.streams.value(), 1u);
  // ...and join the history for the next turn.
  ASSERT_EQ(turns.history().messages().size(), 1u);
  EXPECT_EQ(turns.history().messages()[0].role(), llm::v1::USER);
  EXPECT_EQ(turns.history().messages()[0].text(), "book a table");
}

TEST_F(LlmTurnsTest, AProviderDeadlineIsKept) {
  spec.llm.deadline = 1500ms;
  start();
  turns.ask(1, "hi");
  EXPECT_EQ(clients->last_llm().target().deadline, 1500ms);
}

TEST_F(LlmTurnsTest, CallFactsLearnedAfterTheStartGoWithLaterTurns) {
  start();
  call.set_called_number("4000");
  (*call.mutable_metadata())["channel"] = "PJSIP/trunk-00000012";
  turns.ask(1, "hi");
  EXPECT_EQ(clients->last_llm().request().call().called_number(), "4000");
  EXPECT_EQ(clients->last_llm().request().call().metadata().at("channel"), "PJSIP/trunk-00000012");
}

TEST_F(LlmTurnsTest, TheHistoryHoldsTheConversationThenTheInterruptedRepliesAsHeard) {
  start();
  turns.said("Hello, how can I help you?");
  turns.ask(1, "what are your hours");
  clients->last_llm().close();
  poster.run();
  turns.said("We open at nine. We close at five.");
  turns.interrupted("We open at nine. We close at five.", "We open at nine.");
  turns.ask(2, "and on sunday");
  EXPECT_EQ(history_of(clients->last_llm().request()),
            (std::vector<Msg>{
                {llm::v1::ASSISTANT, "Hello, how can I help you?", false},
                {llm::v1::USER, "what are your hours", false},
                {llm::v1::ASSISTANT, "We open at nine.", true},
            }));
  EXPECT_EQ(clients->last_llm().request().user_text(), "and on sunday");
  EXPECT_EQ(clients->last_llm().request().turn(), 2u);
}

TEST_F(LlmTurnsTest, EventsGoWithTheNextTurnOnly) {
  start();
  llm::v1::Event e;
  e.mutable_dtmf()->set_digits("12#");
  turns.add_event(e);
  llm::v1::Event n;
  n.mutable_no_input()->set_count(1);
  turns.add_event(n);
  EXPECT_TRUE(turns.has_events());
  turns.ask(3, "");
  EXPECT_FALSE(turns.has_events());
  const auto& r = clients->last_llm().request();
  EXPECT_EQ(r.user_text(), "");
  ASSERT_EQ(r.events_size(), 2);
  EXPECT_EQ(r.events(0).dtmf().digits(), "12#");
  EXPECT_EQ(r.events(1).no_input().count(), 1u);
  EXPECT_TRUE(turns.history().messages().empty());  // no words: nothing joins the history

  clients->last_llm().close();
  poster.run();
  turns.ask(4, "thanks");
  EXPECT_EQ(clients->last_llm().request().events_size(), 0);
}

TEST_F(LlmTurnsTest, TheHistoryIsCappedAndTheInterruptedRepliesToTheLastEight) {
  start();
  for (int i = 0; i < 45; ++i) turns.said("reply " + std::to_string(i));
  for (int i = 0; i < 10; ++i) {
    turns.interrupted("reply x", "heard " + std::to_string(i));
  }
  turns.ask(1, "hi");
  const auto h = history_of(clients->last_llm().request());
  ASSERT_EQ(h.size(), kMaxHistoryMessages + kMaxInterruptedMessages);
  EXPECT_EQ(h.front(), (Msg{llm::v1::ASSISTANT, "reply 5", false}));  // the oldest went
  EXPECT_EQ(h[kMaxHistoryMessages - 1], (Msg{llm::v1::ASSISTANT, "reply 44", false}));
  EXPECT_EQ(h[kMaxHistoryMessages], (Msg{llm::v1::ASSISTANT, "heard 2", true}));
  EXPECT_EQ(h.back(), (Msg{llm::v1::ASSISTANT, "heard 9", true}));
}

TEST_F(LlmTurnsTest, AnInterruptedReplyReplacesTheFullReplyInTheHistory) {
  start();
  turns.said("One. Two. Three.");
  turns.interrupted("One. Two. Three.", "One.");
  EXPECT_TRUE(turns.history().messages().empty());
  turns.said("Other.");
  turns.interrupted("Not the last one.", "");  // not the newest message: it stays
  ASSERT_EQ(turns.history().messages().size(), 1u);
  EXPECT_EQ(turns.history().messages()[0].text(), "Other.");
}

TEST_F(LlmTurnsTest, TextActionsAndTheEndAreDeliveredThroughThePoster) {
  start();
  turns.ask(1, "transfer me to sales");
  auto& t = clients->last_llm();
  t.text("Sure, ");
  t.text("");  // nothing to say: not delivered
  t.text("one moment.");
  common::v1::Action a;
  a.mutable_transfer()->set_target("200");
  t.action(a);
  t.end_of_turn();
  t.close();
  EXPECT_EQ(text, "");  // nothing inside the provider's call
  EXPECT_EQ(done, 0);
  poster.run();
  EXPECT_EQ(text, "Sure, one moment.");
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].transfer().target(), "200");
  EXPECT_EQ(done, 1);
  EXPECT_TRUE(failures.empty());
  EXPECT_EQ(counters.errors.value(), 0u);
}

TEST_F(LlmTurnsTest, ATurnThatFailsBeforeAnyTextIsRetriedOnceAfterTheBackoff) {
  start();
  turns.ask(1, "hello");
  const llm::v1::TurnRequest first = clients->last_llm().request();
  clients->last_llm().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  EXPECT_TRUE(failures.empty());
  EXPECT_EQ(counters.errors.value(), 1u);
  for (int i = 0; i < 9; ++i) turns.tick();
  EXPECT_EQ(clients->llm().size(), 1u);  // 180 ms: still waiting
  turns.tick();
  ASSERT_EQ(clients->llm().size(), 2u);  // 200 ms
  EXPECT_EQ(clients->last_llm().request().SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(counters.streams.value(), 2u);
  // The retry's answer is the turn's.
  clients->last_llm().text("Hi there.");
  clients->last_llm().close();
  poster.run();
  EXPECT_EQ(text, "Hi there.");
  EXPECT_EQ(done, 1);
  EXPECT_TRUE(failures.empty());
}

TEST_F(LlmTurnsTest, ASecondFailureFailsTheTurn) {
  start();
  turns.ask(1, "hello");
  clients->last_llm().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  for (int i = 0; i < 10; ++i) turns.tick();
  ASSERT_EQ(clients->llm().size(), 2u);
  clients->last_llm().close({StreamStatus::kDeadlineExceeded, "too slow"});
  poster.run();
  EXPECT_EQ(failures, (std::vector<std::string>{"LLM failed: too slow"}));
  EXPECT_EQ(done, 0);
  EXPECT_EQ(counters.errors.value(), 2u);
  for (int i = 0; i < 50; ++i) turns.tick();
  EXPECT_EQ(clients->llm().size(), 2u);
}

TEST_F(LlmTurnsTest, AFailureAfterTextIsNotRetried) {
  start();
  turns.ask(1, "hello");
  clients->last_llm().text("Let me");
  clients->last_llm().close({StreamStatus::kInternal, "broke"});
  poster.run();
  EXPECT_EQ(text, "Let me");
  EXPECT_EQ(failures, (std::vector<std::string>{"LLM failed: broke"}));
  for (int i = 0; i < 50; ++i) turns.tick();
  EXPECT_EQ(clients->llm().size(), 1u);
}

TEST_F(LlmTurnsTest, EachTurnGetsItsOwnRetry) {
  start();
  turns.ask(1, "hello");
  clients->last_llm().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  for (int i = 0; i < 10; ++i) turns.tick();
  clients->last_llm().close();
  poster.run();
  EXPECT_EQ(done, 1);
  turns.ask(2, "again");
  clients->last_llm().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  EXPECT_TRUE(failures.empty());
  for (int i = 0; i < 10; ++i) turns.tick();
  EXPECT_EQ(clients->llm().size(), 4u);
}

TEST_F(LlmTurnsTest, CancelDropsLateEventsAndThePendingRetry) {
  start();
  turns.ask(1, "hello");
  auto& t = clients->last_llm();
  t.text("late words");  // already on its way to the call's thread
  turns.cancel();
  EXPECT_TRUE(t.cancelled());
  poster.run();
  EXPECT_EQ(text, "");
  EXPECT_EQ(done, 0);
  EXPECT_TRUE(failures.empty());
  EXPECT_EQ(counters.errors.value(), 0u);  // cancelled is no error

  turns.ask(2, "again");
  clients->last_llm().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  turns.cancel();
  for (int i = 0; i < 50; ++i) turns.tick();
  EXPECT_EQ(clients->llm().size(), 2u);
  EXPECT_TRUE(failures.empty());
}

TEST_F(LlmTurnsTest, ANewTurnCancelsTheOneInProgress) {
  start();
  turns.ask(1, "hello");
  auto& first = clients->last_llm();
  first.text("Old answer.");
  turns.ask(2, "no wait");
  EXPECT_TRUE(first.cancelled());
  clients->last_llm().text("New answer.");
  clients->last_llm().close();
  poster.run();
  EXPECT_EQ(text, "New answer.");
  EXPECT_EQ(done, 1);
}

TEST_F(LlmTurnsTest, AfterStopNothingIsDelivered) {
  start();
  turns.ask(1, "hello");
  auto& t = clients->last_llm();
  t.text("words");
  turns.stop();
  EXPECT_TRUE(t.cancelled());
  poster.run();
  EXPECT_EQ(text, "");
  EXPECT_EQ(done, 0);
  EXPECT_TRUE(failures.empty());
}

TEST_F(LlmTurnsTest, ATurnThatCannotBeSetUpFails) {
  start();
  clients->fail_next_open("cannot read CA file");
  turns.ask(1, "hello");
  poster.run();
  EXPECT_EQ(failures, (std::vector<std::string>{"LLM: cannot read CA file"}));
}

TEST_F(LlmTurnsTest, ToolCallsAreOfferedBoundedAndTheirIdsUniqueInTheCall) {
  start();
  common::v1::ToolDefinition d;
  d.set_name("order_status");
  turns.offer({d});
  turns.ask(1, "where is my order");
  ASSERT_EQ(clients->last_llm().request().tools_size(), 1);
  auto model_call = [&](const std::string& id, const std::string& name) {
    llm::v1::TurnResponse r;
    r.mutable_tool_call()->set_id(id);
    r.mutable_tool_call()->set_name(name);
    r.mutable_tool_call()->set_arguments_json("{}");
    clients->last_llm().respond(r);
  };
  model_call("", "order_status");  // no id: one of ours
  model_call("dup", "order_status");
  model_call("dup", "order_status");                  // a repeated id: one of ours
  model_call("x", std::string(65, 'n'));              // a name too long: dropped
  model_call(std::string(129, 'i'), "order_status");  // an id too long: one of ours
  for (int i = 0; i < 10; ++i) model_call("c" + std::to_string(i), "order_status");  // over the cap
  clients->last_llm().close();
  poster.run();
  std::vector<std::string> ids;
  for (const auto& c : turns.tool_calls()) ids.push_back(c.id());
  EXPECT_EQ(ids, (std::vector<std::string>{"vb_call_1", "dup", "vb_call_2", "vb_call_3", "c0", "c1",
                                           "c2", "c3"}));
  EXPECT_EQ(done, 1);
  // The round joins the history with the results, and the follow-up asks for the rest.
  std::vector<common::v1::ToolResult> results;
  for (const auto& c : turns.tool_calls()) {
    common::v1::ToolResult r;
    r.set_id(c.id());
    r.set_ok(true);
    r.set_output("fine");
    results.push_back(r);
  }
  results.pop_back();  // one without a result: answered with an error, never left open
  turns.interrupted("An earlier reply.", "An earlier");
  turns.continue_with(1, "Checking.", results);
  ASSERT_EQ(clients->llm().size(), 2u);
  const auto& r = clients->last_llm().request();
  EXPECT_EQ(r.turn(), 1u);
  EXPECT_EQ(r.user_text(), "");
  // The interrupted reply before the round: the history ends with the calls and answers.
  ASSERT_EQ(r.history_size(), 1 + 1 + 1 + 8);
  EXPECT_TRUE(r.history(1).interrupted());
  EXPECT_EQ(r.history(2).text(), "Checking.");
  EXPECT_EQ(r.history(2).tool_calls_size(), 8);
  EXPECT_EQ(r.history(3).text(), "fine");
  EXPECT_EQ(r.history(10).tool_call_id(), "c3");
  EXPECT_EQ(r.history(10).text(), "error: no result");
}

}  // namespace
}  // namespace voxbridge::pipeline
