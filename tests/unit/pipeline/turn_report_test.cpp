// TurnReport: the transcript events a pipeline call writes (exact fields) and the histograms
// and counters its turns feed (metrics::AgentCounters).
#include "voxbridge/pipeline/turn_report.hpp"
#include "voxbridge/events/call_event.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "voxbridge/metrics/metrics.hpp"

namespace voxbridge::pipeline {
namespace {

using namespace std::chrono_literals;
using Clock = TurnReport::Clock;
using Event = std::pair<std::string, std::string>;

std::uint64_t count(const metrics::Histogram& h) {
  metrics::Histogram::Snapshot s;
  s.merge(h);
  return s.count;
}

double sum(const metrics::Histogram& h) {
  metrics::Histogram::Snapshot s;
  s.merge(h);
  return s.sum_seconds;
}

struct TurnReportTest : ::testing::Test {
  TurnReportTest() {
    spec.asr.name = "report-asr";
    spec.llm.name = "report-llm";
    spec.tts.name = "report-tts";
    info.uuid = "00000000-0000-0000-0000-000000000021";
    info.metrics = &m;
    info.transcript = [this](events::Event e) {
      // The members after "type", as the event's line has them (t_ms 0).
      const std::string line = e.serialize(std::chrono::milliseconds(0));
      const std::string type(events::type_name(e.type()));
      const std::string head = "{\"t_ms\":0,\"type\":\"" + type + "\"";
      std::string fields = line.substr(head.size(), line.size() - head.size() - 1);
      if (!fields.empty() && fields[0] == ',') fields.erase(0, 1);
      events.emplace_back(std::string(type), std::move(fields));
    };
  }

  /// A turn whose phases took 300, 500, 200 and 100 ms.
  static TurnTimeline timeline(unsigned turn, Clock::time_point t0) {
    TurnTimeline t;
    t.turn = turn;
    t.speech_end = t0;
    t.asr_final = t0 + 300ms;
    t.llm_first_token = t0 + 800ms;
    t.tts_first_audio = t0 + 1000ms;
    t.first_frame = t0 + 1100ms;
    return t;
  }

  PipelineSpec spec;
  metrics::AgentCounters m;
  agent::CallInfo info;
  std::vector<Event> events;
};

TEST_F(TurnReportTest, TheProvidersCountersAreTheirSlotsOnThisThread) {
  TurnReport r(spec, info);
  auto& slots = metrics::provider_slots();
  EXPECT_EQ(r.asr(), &m.providers[slots.slot("report-asr")]);
  EXPECT_EQ(r.llm(), &m.providers[slots.slot("report-llm")]);
  EXPECT_EQ(r.tts(), &m.providers[slots.slot("report-tts")]);
  EXPECT_NE(r.asr(), r.llm());

  agent::CallInfo uncounted = info;
  uncounted.metrics = nullptr;
  TurnReport none(spec, uncounted);
  EXPECT_EQ(none.asr(), nullptr);
  EXPECT_EQ(none.llm(), nullptr);
  EXPECT_EQ(none.tts(), nullptr);
}

TEST_F(TurnReportTest, FinalTranscriptsAreUserEventsAndInterimOnesInterimEvents) {
  TurnReport r(spec, info);
  r.heard("book a", false);
  r.heard("book a table", true);
  r.heard("", false);  // nothing said: nothing written
  r.heard("", true);
  r.heard("say \"hi\"\nthen", true);
  EXPECT_EQ(events, (std::vector<Event>{
                        {"interim", R"("text":"book a")"},
                        {"user", R"("text":"book a table")"},
                        {"user", R"("text":"say \"hi\"\nthen")"},
                    }));
}

TEST_F(TurnReportTest, ASpokenReplyIsAnAgentEventWithItsVoiceToVoiceLatency) {
  TurnReport r(spec, info);
  const auto t0 = Clock::now();
  r.spoken(timeline(2, t0), "book a table", "For how many?");
  EXPECT_EQ(events, (std::vector<Event>{
                        {"agent", R"("turn":2,"text":"For how many?","latency_ms":1100)"},
                    }));
}

TEST_F(TurnReportTest, AReplyWithoutCallerSpeechHasNullLatencyAndAnEmptyOneNoEvent) {
  TurnReport r(spec, info);
  TurnTimeline greeting;
  greeting.turn = 0;
  greeting.first_frame = Clock::now();
  r.spoken(greeting, "", "Hello, how can I help you?");
  TurnTimeline silent;
  silent.turn = 1;
  r.spoken(silent, "", "");
  EXPECT_EQ(events,
            (std::vector<Event>{
                {"agent", R"("turn":0,"text":"Hello, how can I help you?","latency_ms":null)"},
            }));
  EXPECT_EQ(m.turns.value(), 2u);  // both turns are counted
}

TEST_F(TurnReportTest, ASpokenTurnFeedsEachPhaseItsHistogramAndItsProvider) {
  TurnReport r(spec, info);
  r.spoken(timeline(1, Clock::now()), "hi", "Hello.");
  EXPECT_EQ(m.turns.value(), 1u);
  EXPECT_EQ(count(m.asr_final), 1u);
  EXPECT_DOUBLE_EQ(sum(m.asr_final), 0.3);
  EXPECT_EQ(count(m.llm_first_token), 1u);
  EXPECT_DOUBLE_EQ(sum(m.llm_first_token), 0.5);
  EXPECT_EQ(count(m.tts_first_audio), 1u);
  EXPECT_DOUBLE_EQ(sum(m.tts_first_audio), 0.2);
  EXPECT_EQ(count(m.first_frame), 1u);
  EXPECT_DOUBLE_EQ(sum(m.first_frame), 0.1);
  EXPECT_EQ(count(m.voice_to_voice), 1u);
  EXPECT_DOUBLE_EQ(sum(m.voice_to_voice), 1.1);
  EXPECT_DOUBLE_EQ(sum(r.asr()->latency), 0.3);
  EXPECT_DOUBLE_EQ(sum(r.llm()->latency), 0.5);
  EXPECT_DOUBLE_EQ(sum(r.tts()->latency), 0.2);
  EXPECT_EQ(count(m.barge_in), 0u);
  EXPECT_EQ(m.barge_ins.value(), 0u);
}

TEST_F(TurnReportTest, PhasesThatDidNotHappenAreNotCounted) {
  TurnReport r(spec, info);
  const auto t0 = Clock::now();
  TurnTimeline t;  // the LLM answered with an action only: no audio
  t.turn = 3;
  t.speech_end = t0;
  t.asr_final = t0 + 250ms;
  t.llm_first_token = t0 + 400ms;
  r.spoken(t, "transfer me", "");
  EXPECT_EQ(m.turns.value(), 1u);
  EXPECT_EQ(count(m.asr_final), 1u);
  EXPECT_EQ(count(m.llm_first_token), 1u);
  EXPECT_EQ(count(m.tts_first_audio), 0u);
  EXPECT_EQ(count(m.first_frame), 0u);
  EXPECT_EQ(count(m.voice_to_voice), 0u);
  EXPECT_TRUE(events.empty());
}

TEST_F(TurnReportTest, ABargeInIsCountedTimedAndWrittenWithWhatWasHeard) {
  TurnReport r(spec, info);
  const auto t0 = Clock::now() - 2s;
  TurnTimeline t = timeline(4, t0);
  t.interrupted = true;
  const auto overlap = Clock::now() - 400ms;
  r.interrupted(t, 1500, "First sentence here.", "First sentence here. Second \"one\".", overlap);
  EXPECT_EQ(events, (std::vector<Event>{
                        {"barge_in", R"("turn":4,"heard_ms":1500,"heard":"First sentence here.",)"
                                     R"("reply":"First sentence here. Second \"one\".")"},
                    }));
  EXPECT_EQ(m.barge_ins.value(), 1u);
  ASSERT_EQ(count(m.barge_in), 1u);
  EXPECT_GE(sum(m.barge_in), 0.4);  // overlap start -> now
  EXPECT_LT(sum(m.barge_in), 5.0);
  // The interrupted turn's phases are counted like any other.
  EXPECT_EQ(m.turns.value(), 1u);
  EXPECT_EQ(count(m.voice_to_voice), 1u);
}

TEST_F(TurnReportTest, ABargeInByWordsHasNoOverlapToTime) {
  TurnReport r(spec, info);
  r.interrupted(timeline(5, Clock::now()), 0, "", "Let me check.", Clock::time_point{});
  EXPECT_EQ(events, (std::vector<Event>{
                        {"barge_in", R"("turn":5,"heard_ms":0,"heard":"","reply":"Let me check.")"},
                    }));
  EXPECT_EQ(m.barge_ins.value(), 1u);
  EXPECT_EQ(count(m.barge_in), 0u);
}

TEST_F(TurnReportTest, TheCallsFirstAgentAudioIsCountedOnce) {
  TurnReport r(spec, info);
  r.first_frame(Clock::now() + 500ms);
  r.first_frame(Clock::now() + 5s);
  ASSERT_EQ(count(m.first_agent_audio), 1u);
  EXPECT_GE(sum(m.first_agent_audio), 0.5);
  EXPECT_LT(sum(m.first_agent_audio), 1.5);
}

TEST_F(TurnReportTest, AFallbackIsCounted) {
  TurnReport r(spec, info);
  r.fell_back();
  EXPECT_EQ(m.fallbacks.value(), 1u);
  EXPECT_TRUE(events.empty());
}

TEST_F(TurnReportTest, NothingIsWrittenOrCountedWithoutTranscriptOrMetrics) {
  agent::CallInfo bare;
  bare.uuid = info.uuid;
  TurnReport r(spec, bare);
  r.heard("hello", true);
  r.spoken(timeline(1, Clock::now()), "hello", "Hi.");
  r.interrupted(timeline(2, Clock::now()), 20, "", "Hi.", Clock::now());
  r.first_frame(Clock::now());
  r.fell_back();
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(m.turns.value(), 0u);
}

}  // namespace
}  // namespace voxbridge::pipeline
