// The speech-to-speech agent over a fake agent stream, tick by tick: how its stream ends. A call
// that is over still owes the agent what was queued (the result of the transfer that ended it):
// the stream is closed with a bounded grace, never cancelled under it; an agent dropped without
// on_end cancels.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/fake_clients.hpp"
#include "voxbridge/events/call_event.hpp"
#include "voxbridge/pipeline/speech_agent.hpp"

namespace voxbridge::pipeline {
namespace {

using namespace std::chrono_literals;
using testing::FakeCallControl;
using testing::FakeProviderClients;
using testing::ManualPoster;

constexpr int kRate = 16000;

struct SpeechAgentTest : ::testing::Test {
  SpeechAgentTest() {
    spec.agent.name = "s2s-test";
    info.uuid = "call-7";
    info.listener = "main";
    info.transcript = [](events::Event) {};
  }

  void start() {
    factory.emplace(spec, kRate, 3, clients);
    agent = factory->create();
    agent->on_start(control, info);
    poster.run();
    ASSERT_EQ(clients->agents().size(), 1u);
  }

  testing::FakeAgentStream& stream() const { return *clients->agents().back(); }

  /// One 20 ms frame: the caller's silence in, the agent's tick, the playout frame out.
  void tick() {
    const std::vector<std::int16_t> frame(kRate / 50, 0);
    agent->on_audio(frame);
    agent->on_tick();
    control.tick();
    poster.run();
  }

  void agent_says(common::v1::Action a) {
    agent::v1::AgentResponse r;
    *r.mutable_action() = std::move(a);
    stream().respond(std::move(r));
    poster.run();
  }

  SpeechAgentSpec spec;
  agent::CallInfo info;
  ManualPoster poster;
  FakeCallControl control{poster};
  std::shared_ptr<FakeProviderClients> clients = std::make_shared<FakeProviderClients>();
  std::optional<SpeechAgentFactory> factory;
  std::unique_ptr<agent::Agent> agent;
};

common::v1::Action transfer_to(const std::string& target) {
  common::v1::Action a;
  a.mutable_transfer()->set_target(target);
  return a;
}

TEST_F(SpeechAgentTest, ATransferThatEndsTheCallStillReachesTheAgentBeforeItsStreamCloses) {
  std::string noted;
  info.note_transfer = [&](const std::string& target, const std::string&) {
    noted = target;
    return std::string();
  };
  start();
  agent_says(transfer_to("200"));
  tick();
  EXPECT_EQ(noted, "200");
  ASSERT_EQ(control.hangups().size(), 1u);
  EXPECT_EQ(control.hangups()[0].reason, "transfer to 200");
  // The result is the last thing queued for the agent.
  const auto& sent = stream().sent();
  ASSERT_FALSE(sent.empty());
  ASSERT_TRUE(sent.back().event().has_action_result());
  EXPECT_TRUE(sent.back().event().action_result().ok());
  EXPECT_EQ(sent.back().event().action_result().action().transfer().target(), "200");

  agent->on_end("transfer to 200");
  EXPECT_FALSE(stream().cancelled());
  EXPECT_TRUE(stream().finished());
  EXPECT_EQ(stream().grace(), std::optional<std::chrono::milliseconds>(1000ms));
  // The agent ending its side later reaches no one.
  stream().end();
  poster.run();
  agent.reset();
  EXPECT_FALSE(stream().cancelled());
}

TEST_F(SpeechAgentTest, ACallerWhoHangsUpClosesTheStreamWithTheSameGrace) {
  start();
  tick();
  const std::size_t before = stream().sent().size();
  agent->on_end("caller hung up");
  EXPECT_FALSE(stream().cancelled());
  EXPECT_EQ(stream().grace(), std::optional<std::chrono::milliseconds>(1000ms));
  agent.reset();
  EXPECT_FALSE(stream().cancelled());
  EXPECT_EQ(stream().sent().size(), before);
}

TEST_F(SpeechAgentTest, AnAgentDroppedWithoutOnEndCancelsItsStream) {
  start();
  tick();
  agent.reset();
  EXPECT_TRUE(stream().cancelled());
  EXPECT_EQ(stream().grace(), std::nullopt);
}

}  // namespace
}  // namespace voxbridge::pipeline
