// The speech-to-speech agent over a fake agent stream, tick by tick: how its stream ends (a call
// that is over still owes the agent what was queued, the result of the transfer that ended it:
// the stream is closed with a bounded grace, never cancelled under it; an agent dropped without
// on_end cancels); contract v1.1: playback_cleared with the exact mark and played ms, usage into
// the events and metrics, a G.711 leg's own codec both ways (exact bytes) with the delayed open,
// and the echo gate on the caller's audio.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numbers>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "support/fake_clients.hpp"
#include "support/test_audio.hpp"
#include "voxbridge/agent/tools.hpp"
#include "voxbridge/audio/g711.hpp"
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
    start_unopened();
    ASSERT_EQ(clients->agents().size(), 1u);
  }
  /// on_start only (with leg_codec the stream waits for the leg's first audio).
  void start_unopened() {
    factory.emplace(spec, kRate, 3, clients);
    agent = factory->create();
    agent->on_start(control, info);
    poster.run();
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

  void respond(agent::v1::AgentResponse r) {
    stream().respond(std::move(r));
    poster.run();
  }
  /// Agent audio: LINEAR16 samples, or bytes as they are (G.711).
  void agent_audio(const std::vector<std::int16_t>& pcm) {
    agent::v1::AgentResponse r;
    r.set_audio(pcm.data(), pcm.size() * 2);
    respond(std::move(r));
  }
  void agent_bytes(const std::string& bytes) {
    agent::v1::AgentResponse r;
    r.set_audio(bytes);
    respond(std::move(r));
  }
  void mark(std::uint64_t id) {
    agent::v1::AgentResponse r;
    r.mutable_mark()->set_id(id);
    respond(std::move(r));
  }
  void clear() {
    agent::v1::AgentResponse r;
    r.mutable_clear();
    respond(std::move(r));
  }
  /// The CallEvents sent from `from` on, as "mark_played 1", "playback_cleared 1 100", "dtmf 5".
  std::vector<std::string> events_sent(std::size_t from = 0) const {
    std::vector<std::string> out;
    const auto& sent = stream().sent();
    for (std::size_t i = from; i < sent.size(); ++i) {
      if (!sent[i].has_event()) continue;
      const auto& e = sent[i].event();
      if (e.kind_case() == agent::v1::CallEvent::kMarkPlayed) {
        out.push_back("mark_played " + std::to_string(e.mark_played()));
      } else if (e.has_playback_cleared()) {
        out.push_back("playback_cleared " + std::to_string(e.playback_cleared().mark_id()) + " " +
                      std::to_string(e.playback_cleared().played_ms()));
      } else if (!e.dtmf().empty()) {
        out.push_back("dtmf " + e.dtmf());
      }
    }
    return out;
  }
  void ticks(int n) {
    for (int i = 0; i < n; ++i) tick();
  }
  /// Samples the caller heard that were not silence.
  std::size_t heard_audio() const {
    std::size_t n = 0;
    for (const auto x : control.heard()) n += x != 0;
    return n;
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

// --- playback_cleared (v1.1) ---

/// `ms` of agent audio at kRate that never reads as silence.
std::vector<std::int16_t> agent_pcm(int ms) {
  return std::vector<std::int16_t>(static_cast<std::size_t>(kRate / 1000 * ms), 1000);
}

TEST_F(SpeechAgentTest, AClearBeforeAnythingPlayedReportsNoMarkAndNothingPlayed) {
  start();
  agent_audio(agent_pcm(300));
  mark(1);
  const std::size_t from = stream().sent().size();
  clear();
  EXPECT_EQ(events_sent(from), (std::vector<std::string>{"playback_cleared 0 0"}));
  EXPECT_EQ(control.queued_samples(), 0u);
  tick();  // the dropped mark follows
  EXPECT_EQ(events_sent(from), (std::vector<std::string>{"playback_cleared 0 0", "mark_played 1"}));
  EXPECT_EQ(heard_audio(), 0u);
}

TEST_F(SpeechAgentTest, AClearMidItemReportsItsMarkAndTheMsPlayedSince) {
  start();
  mark(1);
  agent_audio(agent_pcm(500));
  mark(2);
  ticks(5);  // 100 ms played
  const std::size_t from = stream().sent().size();
  clear();
  tick();
  EXPECT_EQ(events_sent(from),
            (std::vector<std::string>{"playback_cleared 1 100", "mark_played 2"}));
  EXPECT_EQ(heard_audio(), 100u * kRate / 1000);  // exactly what the agent was told
  EXPECT_EQ(events_sent(),
            (std::vector<std::string>{"mark_played 1", "playback_cleared 1 100", "mark_played 2"}));
}

TEST_F(SpeechAgentTest, AClearAfterAMarkWasReachedCountsFromThatMark) {
  start();
  agent_audio(agent_pcm(200));
  mark(2);
  agent_audio(agent_pcm(300));
  mark(3);
  agent_audio(agent_pcm(200));
  mark(4);
  ticks(15);  // 300 ms played: mark 2 (at 200 ms) reached 100 ms ago
  ASSERT_EQ(events_sent(), (std::vector<std::string>{"mark_played 2"}));
  clear();
  tick();
  EXPECT_EQ(events_sent(), (std::vector<std::string>{"mark_played 2", "playback_cleared 2 100",
                                                     "mark_played 3", "mark_played 4"}));
  EXPECT_EQ(heard_audio(), 300u * kRate / 1000);
  // The next reply: counted from the dropped marks' place, the cut.
  agent_audio(agent_pcm(200));
  ticks(4);
  clear();
  EXPECT_EQ(events_sent().back(), "playback_cleared 4 80");  // 4 frames played
}

TEST_F(SpeechAgentTest, AMarkReachedSinceTheLastTickIsReportedBeforeTheClear) {
  start();
  agent_audio(agent_pcm(200));
  mark(7);
  agent_audio(agent_pcm(200));
  ticks(10);  // the 10th frame reached mark 7; the agent's tick before it had not seen it
  ASSERT_TRUE(events_sent().empty());
  clear();
  EXPECT_EQ(events_sent(), (std::vector<std::string>{"mark_played 7", "playback_cleared 7 0"}));
}

// --- usage (v1.1) ---

agent::v1::AgentResponse usage_of(std::uint64_t in_tok, std::uint64_t out_tok, std::uint64_t in_ms,
                                  std::uint64_t out_ms) {
  agent::v1::AgentResponse r;
  auto* u = r.mutable_usage();
  u->set_input_tokens(in_tok);
  u->set_output_tokens(out_tok);
  u->set_input_audio_ms(in_ms);
  u->set_output_audio_ms(out_ms);
  return r;
}

TEST_F(SpeechAgentTest, UsageIsCountedAsItComesAndTheLatestIsWrittenOnceAtTheEnd) {
  metrics::AgentCounters counters;
  std::vector<events::Event> events;
  info.metrics = &counters;
  info.transcript = [&](events::Event e) { events.push_back(std::move(e)); };
  start();
  respond(usage_of(10, 20, 300, 400));
  EXPECT_EQ(counters.input_tokens.value(), 10u);
  EXPECT_EQ(counters.output_audio_ms.value(), 400u);
  respond(usage_of(15, 30, 600, 800));
  agent::v1::AgentResponse end;
  end.mutable_end()->set_reason("bye");
  *end.mutable_end()->mutable_usage() = usage_of(20, 45, 900, 1000).usage();
  respond(std::move(end));
  EXPECT_EQ(counters.input_tokens.value(), 20u);
  EXPECT_EQ(counters.output_tokens.value(), 45u);
  EXPECT_EQ(counters.input_audio_ms.value(), 900u);
  EXPECT_EQ(counters.output_audio_ms.value(), 1000u);
  for (const auto& e : events) EXPECT_NE(e.type(), events::Type::usage);
  agent->on_end("agent ended the call");
  ASSERT_FALSE(events.empty());
  const auto& e = events.back();
  ASSERT_EQ(e.type(), events::Type::usage);
  EXPECT_EQ(e.serialize(0ms), R"({"t_ms":0,"type":"usage","input_tokens":20,"output_tokens":45,)"
                              R"("input_audio_ms":900,"output_audio_ms":1000})");
  EXPECT_EQ(std::count_if(events.begin(), events.end(),
                          [](const events::Event& x) { return x.type() == events::Type::usage; }),
            1);
}

TEST_F(SpeechAgentTest, ACallWithoutUsageWritesNoUsageEvent) {
  metrics::AgentCounters counters;
  std::vector<events::Event> events;
  info.metrics = &counters;
  info.transcript = [&](events::Event e) { events.push_back(std::move(e)); };
  start();
  agent_audio(agent_pcm(100));
  ticks(5);
  agent->on_end("caller hung up");
  for (const auto& e : events) EXPECT_NE(e.type(), events::Type::usage);
  EXPECT_EQ(counters.input_tokens.value(), 0u);
}

// --- the leg's codec (v1.1) ---

/// 20 ms of a G.711 leg: every code but mu-law's negative zero, 0x7F (160 bytes).
std::string g711_frame(std::uint8_t first) {
  std::string b;
  for (int i = 0; b.size() < 160; ++i) {
    const auto c = static_cast<std::uint8_t>(first + i);
    if (c != 0x7F) b.push_back(static_cast<char>(c));
  }
  return b;
}

std::vector<std::int16_t> decode(const std::string& bytes, audio::G711Law law) {
  std::vector<std::int16_t> pcm(bytes.size());
  const std::span<const std::uint8_t> b{reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                        bytes.size()};
  if (law == audio::G711Law::ulaw) {
    audio::ulaw_decode(b, pcm);
  } else {
    audio::alaw_decode(b, pcm);
  }
  return pcm;
}

struct LegCodecTest : SpeechAgentTest {
  LegCodecTest() {
    spec.leg_codec = true;
    info.caller_number = "+15551234567";
    info.caller_name = "Ada";
    info.called_number = "5551000";
    info.variables["VB_LANGUAGE"] = "de-DE";
  }
  /// One 20 ms frame from the leg (`leg` at 8 kHz), then its internal-rate twin, then a tick.
  void leg_frame(const std::vector<std::int16_t>& leg) {
    agent->on_leg_audio(leg, 8000);
    poster.run();
    agent->on_audio(std::vector<std::int16_t>(leg.size() * 2, 0));
    agent->on_tick();
    control.tick();
    poster.run();
  }
  /// The audio messages sent, joined.
  std::string audio_sent() const {
    std::string out;
    for (const auto& m : stream().sent()) {
      if (m.request_case() == agent::v1::AgentRequest::kAudio) out += m.audio();
    }
    return out;
  }
};

TEST_F(LegCodecTest, AUlawLegOpensTheStreamWithMulawBothWaysAndSendsTheLegsOwnBytes) {
  start_unopened();
  agent->on_dtmf('5');  // before the stream: held for it
  agent->on_tick();
  EXPECT_TRUE(clients->agents().empty());
  const std::string a = g711_frame(0x00), b = g711_frame(0x80);
  control.set_caller_codec("ulaw");  // the leg's first audio shows it
  leg_frame(decode(a, audio::G711Law::ulaw));
  ASSERT_EQ(clients->agents().size(), 1u);
  const auto& cfg = stream().config();
  EXPECT_EQ(cfg.input_format().encoding(), common::v1::MULAW);
  EXPECT_EQ(cfg.input_format().sample_rate_hz(), 8000u);
  EXPECT_EQ(cfg.output_format().encoding(), common::v1::MULAW);
  EXPECT_EQ(cfg.output_format().sample_rate_hz(), 8000u);
  EXPECT_EQ(cfg.call().call_id(), "call-7");
  EXPECT_EQ(cfg.call().listener(), "main");
  EXPECT_EQ(cfg.call().caller_number(), "+15551234567");
  EXPECT_EQ(cfg.call().caller_name(), "Ada");
  EXPECT_EQ(cfg.call().called_number(), "5551000");
  EXPECT_EQ(cfg.call().metadata().at("VB_LANGUAGE"), "de-DE");
  leg_frame(decode(b, audio::G711Law::ulaw));
  // The digit right after the config, then exactly the leg's bytes (nothing from on_audio).
  ASSERT_FALSE(stream().sent().empty());
  EXPECT_EQ(stream().sent()[0].event().dtmf(), "5");
  EXPECT_EQ(audio_sent(), a + b);
  // The agent's mu-law comes back decoded and at the internal rate: 160 bytes, 20 ms.
  agent_bytes(a);
  EXPECT_EQ(control.accepted(), 320u);
}

TEST_F(LegCodecTest, AListenerThatSaysItsLegIsG711OpensAtOnce) {
  control.set_caller_codec("ulaw");  // codec = ulaw on the listener: known before any audio
  start_unopened();
  ASSERT_EQ(clients->agents().size(), 1u);
  EXPECT_EQ(stream().config().input_format().encoding(), common::v1::MULAW);
}

TEST_F(LegCodecTest, AnAlawLegGetsAlawBothWays) {
  control.set_caller_codec("alaw");
  start_unopened();
  std::string a = g711_frame(0x00);
  a[0] = 0x7F;  // A-law has no negative zero: every code comes back
  leg_frame(decode(a, audio::G711Law::alaw));
  ASSERT_EQ(clients->agents().size(), 1u);
  EXPECT_EQ(stream().config().input_format().encoding(), common::v1::ALAW);
  EXPECT_EQ(stream().config().output_format().encoding(), common::v1::ALAW);
  EXPECT_EQ(stream().config().output_format().sample_rate_hz(), 8000u);
  EXPECT_EQ(audio_sent(), a);
  agent_bytes(a + a);
  EXPECT_EQ(control.accepted(), 640u);
}

TEST_F(LegCodecTest, MulawsNegativeZeroComesBackAsPositiveZero) {
  control.set_caller_codec("ulaw");
  start_unopened();
  leg_frame(decode(std::string(160, '\x7F'), audio::G711Law::ulaw));
  EXPECT_EQ(audio_sent(), std::string(160, '\xFF'));
}

TEST_F(LegCodecTest, ASlinLegGetsLinear16AtTheConfiguredRates) {
  control.set_caller_codec("slin");
  spec.input_rate_hz = 24000;
  start_unopened();
  leg_frame(std::vector<std::int16_t>(160, 0));
  ASSERT_EQ(clients->agents().size(), 1u);
  EXPECT_EQ(stream().config().input_format().encoding(), common::v1::LINEAR16);
  EXPECT_EQ(stream().config().input_format().sample_rate_hz(), 24000u);
  EXPECT_EQ(stream().config().output_format().encoding(), common::v1::LINEAR16);
  EXPECT_EQ(stream().config().output_format().sample_rate_hz(), 16000u);
}

TEST_F(LegCodecTest, WithoutCallerAudioTheStreamOpensWithLinear16After100Ms) {
  start_unopened();
  agent->on_dtmf('1');
  agent->on_dtmf('#');
  for (int i = 0; i < 4; ++i) agent->on_tick();
  EXPECT_TRUE(clients->agents().empty());
  agent->on_tick();
  ASSERT_EQ(clients->agents().size(), 1u);
  EXPECT_EQ(stream().config().input_format().encoding(), common::v1::LINEAR16);
  EXPECT_EQ(stream().config().input_format().sample_rate_hz(), 16000u);
  EXPECT_EQ(events_sent(), (std::vector<std::string>{"dtmf 1", "dtmf #"}));
}

TEST_F(LegCodecTest, ACallOverBeforeItsStreamOpenedNeverOpensOne) {
  start_unopened();
  agent->on_dtmf('1');
  agent->on_end("caller hung up");
  EXPECT_TRUE(clients->agents().empty());
  agent.reset();
  EXPECT_TRUE(clients->agents().empty());
}

TEST_F(LegCodecTest, WithoutLegCodecAG711LegStillGetsLinear16FromTheStart) {
  spec.leg_codec = std::nullopt;  // the default for gRPC agents: off
  control.set_caller_codec("ulaw");
  start();
  EXPECT_EQ(stream().config().input_format().encoding(), common::v1::LINEAR16);
  EXPECT_EQ(stream().config().call().caller_number(), "+15551234567");
}

// --- the echo gate ---

/// The fake TTS's tone: 440 Hz at 6000, `ms` long.
std::vector<std::int16_t> tone(int ms, double level = 6000, int delay_ms = 0) {
  std::vector<std::int16_t> x(static_cast<std::size_t>(kRate / 1000 * delay_ms), 0);
  for (int i = 0; i < kRate / 1000 * ms; ++i) {
    x.push_back(static_cast<std::int16_t>(
        level * std::sin(2 * std::numbers::pi * 440.0 * i / static_cast<double>(kRate))));
  }
  return x;
}

struct EchoGateTest : SpeechAgentTest {
  /// Plays `caller` frame by frame at the internal rate; returns the LINEAR16 the agent got.
  std::vector<std::int16_t> hear(const std::vector<std::int16_t>& caller) {
    const std::size_t before = stream().sent().size();
    const std::size_t f = kRate / 50;
    for (std::size_t at = 0; at + f <= caller.size(); at += f) {
      agent->on_audio({caller.data() + at, f});
      agent->on_tick();
      control.tick();
      poster.run();
    }
    std::vector<std::int16_t> got;
    const auto& sent = stream().sent();
    for (std::size_t i = before; i < sent.size(); ++i) {
      if (sent[i].request_case() != agent::v1::AgentRequest::kAudio) continue;
      const std::string& b = sent[i].audio();
      const std::size_t at = got.size();
      got.resize(at + b.size() / 2);
      std::memcpy(got.data() + at, b.data(), b.size());
    }
    return got;
  }
};

int peak(std::span<const std::int16_t> x) {
  int p = 0;
  for (auto v : x) p = std::max(p, std::abs(static_cast<int>(v)));
  return p;
}

TEST_F(EchoGateTest, TheAgentsEchoReachesItAsSilenceOfTheSameLength) {
  start();
  agent_audio(tone(2000));
  // The line returns the agent's voice 12 dB down and 40 ms late (pipeline_test's echo).
  const auto echo = tone(1800, 1500, 40);
  const auto got = hear(echo);
  ASSERT_EQ(got.size(), echo.size() / 320 * 320);
  EXPECT_EQ(peak(echo), 1500);
  EXPECT_EQ(peak(got), 0);
}

TEST_F(EchoGateTest, ACallerLouderThanTheEchoPassesUnchanged) {
  start();
  agent_audio(tone(2000));
  const auto talker = testing::voice(kRate, 1.6, 12000);  // peaks near 4800
  const auto got = hear(talker);
  ASSERT_EQ(got.size(), talker.size());
  // Each 10 ms block is either the caller's own or silence: a block louder than half the
  // agent's 6000 always passes, and so do the 100 ms after one (the double-talk hangover); a
  // quiet block further from one (the very start of the voice) is silenced.
  std::size_t passed = 0, blocks = 0;
  long since_loud = 1000;
  for (std::size_t at = 0; at + 160 <= got.size(); at += 160, ++blocks) {
    const std::span<const std::int16_t> in{talker.data() + at, 160}, out{got.data() + at, 160};
    const int p = peak(in);
    since_loud = p > 3100 ? 0 : since_loud + 1;
    if (p > 3100 || (since_loud <= 10 && since_loud > 0)) {
      EXPECT_TRUE(std::equal(in.begin(), in.end(), out.begin())) << at;
    }
    if (p < 2900 && since_loud > 11) {
      EXPECT_EQ(peak(out), 0) << at;
    }
    passed += std::equal(in.begin(), in.end(), out.begin()) && p > 0;
  }
  EXPECT_EQ(peak({got.data(), 160}), 0);  // the voice starts quiet: gated
  EXPECT_GT(passed, blocks * 9 / 10);
}

TEST_F(EchoGateTest, OnceTheAgentIsQuietItsEchoWindowLaterEverythingPasses) {
  start();
  agent_audio(tone(100));
  const auto quiet = tone(600, 1500);
  const auto got = hear(quiet);
  ASSERT_EQ(got.size(), quiet.size());
  // The queue ran dry after 100 ms; the gate stays 200 ms more for the echo, then opens.
  EXPECT_EQ(peak({got.data(), 300u * kRate / 1000}), 0);
  EXPECT_TRUE(
      std::equal(got.begin() + 320 * kRate / 1000, got.end(), quiet.begin() + 320 * kRate / 1000));
}

TEST_F(EchoGateTest, EchoGateOffSendsTheEchoAsItCame) {
  spec.echo_gate = false;
  start();
  agent_audio(tone(2000));
  const auto echo = tone(1000, 1500, 40);
  const auto got = hear(echo);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), echo.begin()));
}

TEST_F(LegCodecTest, OnAUlawLegTheEchoGoesOutAsMulawSilence) {
  control.set_caller_codec("ulaw");
  start_unopened();
  leg_frame(std::vector<std::int16_t>(160, 0));  // opens the stream
  agent_audio(tone(1000));
  std::vector<std::int16_t> echo8(160);
  for (int f = 0; f < 20; ++f) {
    for (std::size_t i = 0; i < echo8.size(); ++i) {
      echo8[i] = static_cast<std::int16_t>(
          1500 * std::sin(2 * std::numbers::pi * 440.0 * static_cast<double>(f * 160 + i) / 8000));
    }
    leg_frame(echo8);
  }
  EXPECT_EQ(audio_sent(), std::string(21 * 160, '\xFF'));
}

/// The call's business tools as the agent sees them: records each run() and lets the test give
/// its result.
class FakeCallTools final : public agent::CallTools {
 public:
  std::vector<common::v1::ToolDefinition> defs;
  Filler fill;
  struct Run {
    common::v1::ToolCall call;
    std::function<void(const common::v1::ToolResult&)> done;
  };
  std::vector<Run> runs;
  bool stopped = false;

  const std::vector<common::v1::ToolDefinition>& definitions() const override { return defs; }
  void run(const common::v1::ToolCall& call,
           std::function<void(const common::v1::ToolResult&)> done) override {
    runs.push_back({call, std::move(done)});
  }
  Filler filler(const std::string& name) const override {
    return name == defs.at(0).name() ? fill : Filler{};
  }
  void stop() override { stopped = true; }
};

struct SpeechAgentToolsTest : SpeechAgentTest {
  SpeechAgentToolsTest() {
    common::v1::ToolDefinition d;
    d.set_name("lookup");
    d.set_description("Looks up.");
    d.set_parameters_json(R"({"type":"object"})");
    tools->defs = {d};
    tools->fill.after = 100ms;
    tools->fill.audio = std::make_shared<const std::vector<std::int16_t>>(kRate * 2, 1000);
    info.tools = tools;
  }
  void model_calls(const std::string& id, const std::string& name = "lookup") {
    agent::v1::AgentResponse r;
    r.mutable_tool_call()->set_id(id);
    r.mutable_tool_call()->set_name(name);
    r.mutable_tool_call()->set_arguments_json("{}");
    respond(std::move(r));
  }
  static common::v1::ToolResult result(const std::string& id, bool ok, const std::string& out) {
    common::v1::ToolResult r;
    r.set_id(id);
    r.set_name("lookup");
    r.set_ok(ok);
    r.set_output(out);
    return r;
  }
  std::vector<common::v1::ToolResult> results_sent() const {
    std::vector<common::v1::ToolResult> out;
    for (const auto& m : stream().sent()) {
      if (m.has_event() && m.event().has_tool_result()) out.push_back(m.event().tool_result());
    }
    return out;
  }
  /// Samples of the filler (value 1000) the caller heard.
  std::size_t filler_heard() const {
    return static_cast<std::size_t>(
        std::count(control.heard().begin(), control.heard().end(), std::int16_t{1000}));
  }
  std::shared_ptr<FakeCallTools> tools = std::make_shared<FakeCallTools>();
};

TEST_F(SpeechAgentToolsTest, OffersTheCallsToolsAndSendsBackEachResultOnce) {
  start();
  ASSERT_EQ(stream().config().tools_size(), 1);
  EXPECT_EQ(stream().config().tools(0).name(), "lookup");
  EXPECT_EQ(stream().config().tools(0).parameters_json(), R"({"type":"object"})");
  model_calls("c1");
  ASSERT_EQ(tools->runs.size(), 1u);
  EXPECT_EQ(tools->runs[0].call.id(), "c1");
  EXPECT_TRUE(results_sent().empty());
  tools->runs[0].done(result("c1", true, R"({"a":1})"));
  const auto sent = results_sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].id(), "c1");
  EXPECT_TRUE(sent[0].ok());
  EXPECT_EQ(sent[0].output(), R"({"a":1})");
}

TEST_F(SpeechAgentToolsTest, ACallWithoutToolsRefusesAToolCallAtOnce) {
  info.tools = nullptr;
  start();
  EXPECT_EQ(stream().config().tools_size(), 0);
  model_calls("c1");
  const auto sent = results_sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].id(), "c1");
  EXPECT_FALSE(sent[0].ok());
  EXPECT_EQ(sent[0].output(), "no business tools are available on this call");
}

TEST_F(SpeechAgentToolsTest, TheFillerStartsAfterItsDelayAndStopsWithinItsLeadOfTheResult) {
  start();
  model_calls("c1");
  ticks(4);  // 80 ms: not yet
  EXPECT_EQ(filler_heard(), 0u);
  ticks(6);
  EXPECT_GT(filler_heard(), 0u);
  const std::size_t before = filler_heard();
  tools->runs[0].done(result("c1", true, "{}"));
  ticks(10);
  // What was queued of it (60 ms) plays out; nothing after.
  EXPECT_LE(filler_heard() - before, static_cast<std::size_t>(kRate * 60 / 1000));
  const std::size_t after = filler_heard();
  ticks(10);
  EXPECT_EQ(filler_heard(), after);
  EXPECT_LT(after, static_cast<std::size_t>(kRate * 2));  // cut, not the whole phrase
}

TEST_F(SpeechAgentToolsTest, TheAgentsAudioEndsTheFillerAndNoneOfItIsDropped) {
  start();
  model_calls("c1");
  ticks(10);
  ASSERT_GT(filler_heard(), 0u);
  agent_audio(std::vector<std::int16_t>(kRate / 5, 2000));  // 200 ms
  ticks(20);
  EXPECT_EQ(std::count(control.heard().begin(), control.heard().end(), std::int16_t{2000}),
            kRate / 5);
  const std::size_t after = filler_heard();
  tools->runs[0].done(result("c1", true, "{}"));
  ticks(10);
  EXPECT_EQ(filler_heard(), after);
}

TEST_F(SpeechAgentToolsTest, NoFillerWhileTheAgentSpeaksOrWithoutAudioOrWhenQuick) {
  tools->fill.after = 0ms;  // never
  start();
  model_calls("c1");
  ticks(20);
  EXPECT_EQ(filler_heard(), 0u);
  tools->runs[0].done(result("c1", true, "{}"));
  tools->fill.after = 100ms;
  model_calls("c2");
  ticks(2);
  tools->runs[1].done(result("c2", true, "{}"));  // back before the filler's time
  ticks(20);
  EXPECT_EQ(filler_heard(), 0u);
  EXPECT_EQ(results_sent().size(), 2u);
}

TEST_F(SpeechAgentToolsTest, TheCallsEndStopsTheToolsAndALateResultIsDropped) {
  start();
  model_calls("c1");
  agent->on_end("caller hung up");
  EXPECT_TRUE(tools->stopped);
  tools->runs[0].done(result("c1", true, "{}"));  // a handle that still delivered
  EXPECT_TRUE(results_sent().empty());
}

}  // namespace
}  // namespace voxbridge::pipeline
