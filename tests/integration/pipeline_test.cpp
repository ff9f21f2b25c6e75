// Whole calls through the conversation pipeline: the server on port 0 with a pipeline agent,
// the scripted fake providers on a real gRPC server, and the call simulator as Asterisk
// (slin16 channel mode). Real sockets and real time; the fakes make every outcome exact:
// each TTS word is 200 ms of a 440 Hz tone, the ASR hears "hello world" after 10 voiced frames
// and 10 silent ones, the LLM answers from a script.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <future>
#include <numbers>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/fake_providers.hpp"
#include "support/running_server.hpp"
#include "support/test_audio.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/audio/wav.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/pipeline/pipeline.hpp"
#include "voxbridge/server/server.hpp"
#include "voxbridge/sim/sim_call.hpp"

namespace voxbridge {
namespace {

using namespace std::chrono_literals;
using testing::append;
using testing::silence;
using testing::voice;
constexpr int kRate = 16000;
constexpr double kToneRms = 6000 / 1.4142;  // the fake TTS's 440 Hz tone

struct Fakes {
  testing::FakeRecognizer asr;
  testing::FakeDialogue llm;
  testing::FakeSynthesizer tts;
  std::unique_ptr<testing::FakeProviderServer> server;
  void start() {
    server = std::make_unique<testing::FakeProviderServer>(
        std::vector<grpc::Service*>{&asr, &llm, &tts});
  }
};

/// The test server's configuration: one listener on port 0 whose agent is `name` of `type`.
config::Config one_agent_config(const std::string& name, agent::AgentSpec::Type type) {
  config::Config c = config::default_config();
  c.listeners[0].port = 0;
  c.listeners[0].agent = name;
  c.general.threads = 2;
  c.general.log_level = "warning";
  agent::AgentSpec a;
  a.name = name;
  a.type = type;
  c.agents.push_back(a);
  return c;
}

config::Config pipeline_config(const std::string& address, pipeline::PipelineSpec p) {
  config::Config c = one_agent_config("bot", agent::AgentSpec::Type::pipeline);
  const providers::ProviderTarget t{"fake", address, false, "",
                                    0ms,    {},      "",    ""};  // rpc_timeout applies
  p.asr = p.llm = p.tts = t;
  c.pipelines["bot"] = p;
  return c;
}

using testing::RunningServer;

/// The caller's side: 0.3 s of silence, `voice_s` of voice (the fake ASR hears "hello world"),
/// then `tail_s` of silence.
std::vector<std::int16_t> caller_says(double voice_s, double tail_s) {
  std::vector<std::int16_t> audio = silence(kRate, 0.3);
  append(audio, voice(kRate, voice_s));
  append(audio, silence(kRate, tail_s));
  return audio;
}

sim::CallPlan plan_with(unsigned short port, std::vector<std::int16_t> audio) {
  sim::CallPlan p;
  p.port = port;
  p.format = *sim::LegFormat::parse("slin16");
  p.audio = std::move(audio);
  p.tail = 200ms;
  p.max_duration = 30s;
  return p;
}

// Caller audio starts 10 ms after the UUID and reply audio 20 ms after it: both timelines are
// within a frame of each other, so the times below are seconds from the UUID.

TEST(Pipeline, GreetsThenAnswersWhatTheCallerSaid) {
  Fakes f;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "Hello there";  // 2 words: 0.4 s
  RunningServer s(pipeline_config(f.server->address(), spec));
  std::vector<std::int16_t> audio = silence(kRate, 1.0);
  append(audio, voice(kRate, 0.8));
  append(audio, silence(kRate, 2.5));
  const auto r = sim::place_call(plan_with(s.port, audio));
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_EQ(r.reply_kind, audiosocket::Kind::slin16);
  EXPECT_FALSE(r.server_sent_hangup);

  EXPECT_EQ(f.tts.texts(), (std::vector<std::string>{"Hello there", "You said hello world."}));
  const auto reqs = f.llm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].user_text(), "hello world");
  EXPECT_EQ(reqs[0].turn(), 1u);
  EXPECT_EQ(reqs[0].call().call_id().size(), 36u);
  ASSERT_EQ(reqs[0].history_size(), 1);
  EXPECT_EQ(reqs[0].history(0).role(), llm::v1::ASSISTANT);
  EXPECT_EQ(reqs[0].history(0).text(), "Hello there");

  // What the caller heard: the greeting (0.4 s of tone) at once, quiet while speaking, then the
  // reply (4 words, 0.8 s) shortly after the caller stopped at 1.8 s: the fake ASR's 10 silent
  // frames (0.2 s) plus voxbridge's own delay.
  const auto& heard = r.received;
  EXPECT_GT(testing::rms(heard, kRate, 0.05, 0.4), 0.9 * kToneRms);
  EXPECT_LT(testing::rms(heard, kRate, 0.5, 1.8), 50.0);
  const double reply_onset = testing::onset_after(heard, kRate, 1.8, kToneRms / 2);
  ASSERT_GT(reply_onset, 0.0);
  EXPECT_LT(reply_onset, 0.2 + 0.15);  // voxbridge adds < 150 ms here (fakes answer at once)
  const double reply_len = testing::offset_after(heard, kRate, 1.8 + reply_onset, kToneRms / 2);
  EXPECT_NEAR(reply_len, 0.8, 0.05);
}

/// The index of the first returned frame that carries the fake TTS's tone (20 ms frames of a
/// slin16 call), or arrival_ms.size() if none does.
std::size_t first_tone_frame(const sim::CallResult& r) {
  const std::size_t per = kRate / 50;
  for (std::size_t i = 0; i < r.arrival_ms.size() && (i + 1) * per <= r.received.size(); ++i) {
    if (testing::rms(r.received, kRate, static_cast<double>(i) / 50,
                     static_cast<double>(i + 1) / 50) > kToneRms / 2) {
      return i;
    }
  }
  return r.arrival_ms.size();
}

/// The index of the last returned frame that carries the fake TTS's tone, or 0 if none does.
std::size_t last_tone_frame(const sim::CallResult& r) {
  const std::size_t per = kRate / 50;
  std::size_t last = 0;
  for (std::size_t i = 0; i < r.arrival_ms.size() && (i + 1) * per <= r.received.size(); ++i) {
    if (testing::rms(r.received, kRate, static_cast<double>(i) / 50,
                     static_cast<double>(i + 1) / 50) > kToneRms / 2) {
      last = i;
    }
  }
  return last;
}

TEST(Pipeline, TheTimelinesFirstFrameIsWhenTheCallerGetsIt) {
  // The turn timeline's first_frame (and so voice-to-voice and first_agent_audio) is the tick
  // that sends the reply's first frame, not the moment its audio was queued: up to a frame
  // earlier, which the metrics would not show.
  Fakes f;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "Hello there";
  RunningServer s(pipeline_config(f.server->address(), spec));
  const auto r = sim::place_call(plan_with(s.port, silence(kRate, 1.0)));
  ASSERT_TRUE(r.connected) << r.error;
  // The first returned frame of the greeting's tone, as the caller got it.
  const std::size_t first = first_tone_frame(r);
  ASSERT_LT(first, r.arrival_ms.size());
  const double heard_ms = r.arrival_ms[first];
  const std::string m = s.server.metrics_text();
  const std::string key = "voxbridge_first_agent_audio_seconds_sum ";
  const auto at = m.find(key);
  ASSERT_NE(at, std::string::npos);
  const double server_ms = std::stod(m.substr(at + key.size())) * 1000;
  // The caller reads the frame a moment after the tick stamped it (more on a loaded machine);
  // a stamp taken when the audio was queued comes up to 20 ms before the tick.
  EXPECT_LE(server_ms, heard_ms + 0.5);
  EXPECT_GT(server_ms, heard_ms - 6.0);
}

TEST(Pipeline, TheAgentsFirstFrameLeavesWhenItsAudioArrivesAndTheCadenceFollowsIt) {
  // A talkspurt after silence starts when its audio arrives, not on the call's next 20 ms
  // tick: the greeting's audio comes 41 ms + a hop (a few ms; more under ASan) after the UUID,
  // just after the tick at 40 ms. Its first frame comes sooner after the last silence frame
  // than a period, and the call's frames then keep 20 ms apart from it: nothing is sent twice
  // or skipped.
  // The premise (the audio arrives between two ticks) is wall-clock timing: on a machine busy
  // with other tests (ASan, ctest -j2) the hop can pass the next tick, and then there is
  // nothing to move. Up to three calls are placed; the checks apply to the first whose
  // talkspurt moved, or to the last one. Without the mechanism no call's talkspurt moves.
  Fakes f;
  f.tts.first_audio_delay_ms = 41;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "Hello there";
  RunningServer s(pipeline_config(f.server->address(), spec));
  sim::CallResult r;
  std::size_t first = 0;
  double first_gap = 0;
  double lead = 0;
  double before = 0;
  const auto offset = [&](std::size_t i) {
    return r.arrival_ms[i] - 20.0 * static_cast<double>(i + 1);
  };
  const auto low = [&](std::size_t from, std::size_t to) {
    double m = offset(from);
    for (std::size_t i = from + 1; i <= to; ++i) m = std::min(m, offset(i));
    return m;
  };
  for (int attempt = 0; attempt < 3; ++attempt) {
    r = sim::place_call(plan_with(s.port, silence(kRate, 1.5)));
    ASSERT_TRUE(r.connected) << r.error;
    first = first_tone_frame(r);
    ASSERT_GE(first, 2u) << "the greeting came before any silence";
    ASSERT_LT(first + 10, r.arrival_ms.size());
    // Frame n of the silence went at n x 20 ms; the greeting's audio is ready at 41 ms + a
    // hop: its frame leaves then, instead of on the tick at 60 ms (the checks allow a 15 ms
    // hop).
    first_gap = r.arrival_ms[first] - r.arrival_ms[first - 1];
    before = low(first >= 3 ? first - 3 : 0, first - 1);
    lead = before - low(first, first + 3);
    if (first_gap < 17.0 && lead > 3.0) break;
  }
  EXPECT_LT(first_gap, 17.0) << "the greeting's first frame waited for the next tick";
  for (std::size_t i = first + 1; i < first + 10; ++i) {
    const double gap = r.arrival_ms[i] - r.arrival_ms[i - 1];
    EXPECT_NEAR(gap, 20.0, 5.0) << "frame " << i;
  }
  // Once the greeting is over, the silence frames put the call back on its timeline (frame n
  // at n x 20 ms from the UUID) 1 ms per frame: the call never runs ahead of real time, and
  // no gap is a long one a receiver's jitter buffer would grow for. A tick late under load
  // only makes its own frame late (the next keeps the schedule), so each position is the
  // lowest offset of a few frames.
  const std::size_t last = r.arrival_ms.size() - 2;  // (the last one may come with the hangup)
  const std::size_t greeting_end = last_tone_frame(r);
  ASSERT_GT(last, greeting_end + 25) << "too little silence after the greeting to come back";
  EXPECT_GT(lead, 3.0) << "the talkspurt did not move ahead";
  // The first silent frame after the greeting keeps the talkspurt's timeline; from the next
  // one on, the lead comes back 1 ms a frame: four frames on, about 4 ms of it is back (it all
  // came back in that one gap before), and by the end all of it is.
  const double back_early =
      low(greeting_end + 2, greeting_end + 5) - low(greeting_end - 3, greeting_end + 1);
  EXPECT_LT(back_early, std::max(lead / 2, 1.5)) << "the lead came back in one long gap";
  EXPECT_NEAR(low(last - 3, last), before, 3.0) << "the timeline did not come back";
}

TEST(Pipeline, SilenceReachesTheRecognizerWithoutWaitingForAFullChunk) {
  // 200 ms per ASR message while the caller speaks, but the silence after it goes out frame
  // by frame: the fake recognizer's endpoint (10 silent frames) is not held up to a chunk
  // later, so the reply starts as soon after the speech as with 20 ms messages.
  Fakes f;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "";
  spec.asr_chunk = 200ms;
  RunningServer s(pipeline_config(f.server->address(), spec));
  std::vector<std::int16_t> audio = silence(kRate, 0.3);
  append(audio, voice(kRate, 0.64));  // ends at 0.94 s: the endpoint falls early in a chunk
  append(audio, silence(kRate, 1.5));
  const auto r = sim::place_call(plan_with(s.port, audio));
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_EQ(f.llm.requests().size(), 1u);
  const double onset = testing::onset_after(r.received, kRate, 0.94, kToneRms / 2);
  ASSERT_GT(onset, 0.0);
  // Measured: 0.12 s (the fake hears silence as the voice fades out, before 0.94 s); with the
  // silence held for the chunk it was 0.22 s.
  EXPECT_LT(onset, 0.17);
}

TEST(Pipeline, OpusAndMulawToTheRecognizerWorkLikeLinear16) {
  struct Case {
    pipeline::AsrEncoding encoding;
    int rate;
    common::v1::AudioEncoding expected;
  };
  for (const Case c : {Case{pipeline::AsrEncoding::opus, 16000, common::v1::OPUS},
                       Case{pipeline::AsrEncoding::mulaw, 8000, common::v1::MULAW}}) {
    Fakes f;
    f.start();
    pipeline::PipelineSpec spec;
    spec.greeting = "";
    spec.asr_encoding = c.encoding;
    spec.asr_rate_hz = c.rate;
    spec.asr_chunk = 40ms;
    RunningServer s(pipeline_config(f.server->address(), spec));
    const auto audio = caller_says(0.8, 1.5);
    const auto r = sim::place_call(plan_with(s.port, audio));
    ASSERT_TRUE(r.connected) << r.error;
    EXPECT_EQ(f.asr.encoding.load(), c.expected);
    const auto reqs = f.llm.requests();
    ASSERT_EQ(reqs.size(), 1u);
    // The fake decoded what it got (Opus packets, or 320 mu-law bytes per 40 ms message at
    // 8 kHz) and heard the caller.
    EXPECT_EQ(reqs[0].user_text(), "hello world");
  }
}

TEST(Pipeline, BargeInFlushesTheReplyAndTellsTheLlmWhatWasHeard) {
  Fakes f;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "one two three four five six seven eight nine ten";  // 2 s
  spec.barge_in_after = 300ms;
  RunningServer s(pipeline_config(f.server->address(), spec));
  std::vector<std::int16_t> audio = silence(kRate, 0.6);
  append(audio, voice(kRate, 1.0, 12000));
  append(audio, silence(kRate, 2.0));
  const auto r = sim::place_call(plan_with(s.port, audio));
  ASSERT_TRUE(r.connected) << r.error;
  // The greeting plays, then stops once the caller has spoken for barge_in_ms: speech starts at
  // 0.6 s, the VAD confirms it within ~0.15 s, barge-in 0.3 s after that, flushed in one tick.
  EXPECT_GT(testing::rms(r.received, kRate, 0.05, 0.6), 0.9 * kToneRms);
  const double stop = testing::offset_after(r.received, kRate, 0.6, kToneRms / 2);
  ASSERT_GT(stop, 0.0);
  EXPECT_GT(stop, 0.25);  // not before barge_in_ms of speech
  EXPECT_LT(stop, 0.3 + 0.2 + 0.06);
  // The caller's words still made a turn, which knows it interrupted the greeting.
  const auto reqs = f.llm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].user_text(), "hello world");
  ASSERT_GE(reqs[0].events_size(), 1);
  EXPECT_TRUE(reqs[0].events(0).has_barge_in());
  ASSERT_EQ(reqs[0].history_size(), 1);
  EXPECT_TRUE(reqs[0].history(0).interrupted());
}

TEST(Pipeline, BargeInCancelsTheReplyStillBeingSynthesized) {
  Fakes f;
  f.tts.pace_ms = 10;  // 20 ms of audio every 10 ms: a 4 s greeting takes 2 s to synthesize
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting =
      "one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
      "fifteen sixteen seventeen eighteen nineteen twenty";
  RunningServer s(pipeline_config(f.server->address(), spec));
  std::vector<std::int16_t> audio = silence(kRate, 0.5);
  append(audio, voice(kRate, 0.8, 12000));
  append(audio, silence(kRate, 1.5));
  const auto r = sim::place_call(plan_with(s.port, audio));
  ASSERT_TRUE(r.connected) << r.error;
  // The caller interrupted about 1 s in, while the TTS stream was still producing the greeting:
  // voxbridge cancelled it (the fake saw the cancellation) and played nothing more of it.
  EXPECT_EQ(f.tts.cancelled.load(), 1);
  const double stop = testing::offset_after(r.received, kRate, 0.1, kToneRms / 2);
  EXPECT_LT(stop + 0.1, 1.3);
  EXPECT_EQ(f.tts.texts().size(), 2u);  // the greeting, then the reply to the caller's words
}

TEST(Pipeline, ALongReplyIsPacedByBackpressureNotDropped) {
  // A 12 s greeting that the fake synthesizes as fast as it can (48 kHz: 1.1 MB). voxbridge
  // reads TTS only while the playout queue has room, so gRPC flow control holds the provider
  // back (1.5 s into the call it has written well under the whole reply), and every second of
  // the reply is played: nothing dropped, nothing cut.
  Fakes f;
  f.start();
  pipeline::PipelineSpec spec;
  spec.tts_rate_hz = 48000;
  spec.barge_in = false;
  spec.greeting = "word";
  for (int i = 1; i < 60; ++i) spec.greeting += " word";
  RunningServer s(pipeline_config(f.server->address(), spec));
  auto call = std::async(std::launch::async,
                         [&] { return sim::place_call(plan_with(s.port, silence(kRate, 12.5))); });
  std::this_thread::sleep_for(1500ms);
  const int written_early = f.tts.audio_written.load();
  const auto r = call.get();
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_GT(written_early, 50);
  // Of 600 messages: 2.7 s window + 1 s queue + 1.5 s played is about 260 when the call starts
  // on time; under ASan on a loaded 2-core machine the call's start (the reference) comes late
  // and 450 was reached once. Without backpressure all 600 are written within the first second.
  EXPECT_LT(written_early, 520);
  EXPECT_EQ(f.tts.audio_written.load(), 600);
  EXPECT_NEAR(testing::offset_after(r.received, kRate, 0.0, kToneRms / 2), 12.0, 0.05);
  EXPECT_GT(testing::rms(r.received, kRate, 6.0, 11.9), 0.9 * kToneRms);
}

TEST(Pipeline, AnEndlessReplyIsSpokenInBoundedPiecesAndCutAtTheReplyLimit) {
  // A model that writes 10,000 bytes without a sentence end (one delta): TTS gets pieces of at
  // most kMaxSentenceBytes as they come, and no more than kMaxReplyBytes in all.
  Fakes f;
  f.llm.default_reply = std::string(10000, 'x');
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "";
  RunningServer s(pipeline_config(f.server->address(), spec));
  const auto r = sim::place_call(plan_with(s.port, caller_says(0.8, 1.0)));
  ASSERT_TRUE(r.connected) << r.error;
  const auto texts = f.tts.texts();
  std::size_t total = 0;
  for (const auto& t : texts) {
    EXPECT_LE(t.size(), pipeline::kMaxSentenceBytes);
    total += t.size();
  }
  EXPECT_EQ(total, pipeline::kMaxReplyBytes);
  EXPECT_EQ(texts.size(), pipeline::kMaxReplyBytes / pipeline::kMaxSentenceBytes + 1);
}

TEST(Pipeline, LineNoiseAndHumDoNotInterruptOrStartTurns) {
  // The "test noise files": white noise at -30 dBFS and 50 Hz hum at -20 dBFS over the whole
  // call, while the agent speaks a 2 s greeting and after it.
  for (const bool use_hum : {false, true}) {
    Fakes f;
    f.start();
    pipeline::PipelineSpec spec;
    spec.greeting = "one two three four five six seven eight nine ten";
    RunningServer s(pipeline_config(f.server->address(), spec));
    const auto noise =
        use_hum ? testing::hum(kRate, 3.0, 3000) : testing::white_noise(kRate, 3.0, 1000);
    const auto r = sim::place_call(plan_with(s.port, noise));
    ASSERT_TRUE(r.connected) << r.error;
    EXPECT_GT(testing::rms(r.received, kRate, 0.05, 2.0), 0.9 * kToneRms) << use_hum;
    EXPECT_EQ(f.llm.requests().size(), 0u) << use_hum;
  }
}

TEST(Pipeline, TheAgentsOwnEchoDoesNotInterruptIt) {
  // A line that returns the agent's voice 12 dB down and 40 ms late (what the caller's side
  // sends back while nobody speaks there).
  Fakes f;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "one two three four five six seven eight nine ten";
  RunningServer s(pipeline_config(f.server->address(), spec));
  std::vector<std::int16_t> echo = silence(kRate, 0.05);
  for (int i = 0; i < kRate * 2; ++i) {
    echo.push_back(static_cast<std::int16_t>(
        1500 * std::sin(2 * std::numbers::pi * 440.0 * i / static_cast<double>(kRate))));
  }
  append(echo, silence(kRate, 0.5));
  const auto r = sim::place_call(plan_with(s.port, echo));
  ASSERT_TRUE(r.connected) << r.error;
  const double stop = testing::offset_after(r.received, kRate, 0.1, kToneRms / 2);
  EXPECT_NEAR(stop + 0.1, 2.02, 0.06);  // the greeting played to its end
}

TEST(Pipeline, DtmfGoesToTheLlmAsAnEvent) {
  Fakes f;
  f.llm.default_reply = "Pressed.";
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "";
  RunningServer s(pipeline_config(f.server->address(), spec));
  auto plan = plan_with(s.port, silence(kRate, 1.5));
  plan.dtmf = {{300ms, '1'}};
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  const auto reqs = f.llm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].user_text(), "");
  ASSERT_EQ(reqs[0].events_size(), 1);
  EXPECT_EQ(reqs[0].events(0).dtmf().digits(), "1");
  EXPECT_EQ(f.tts.texts(), (std::vector<std::string>{"Pressed."}));
}

TEST(Pipeline, ADigitPressedWhileTheAgentSpeaksIsAnsweredWhenTheReplyEnds) {
  // Greeting: 5 words = 1.0 s of audio; the digit comes at 0.3 s, during it. Its turn starts
  // as soon as the greeting has been spoken (before, it waited for the no-input prompt).
  Fakes f;
  f.llm.default_reply = "Pressed.";
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "one two three four five";
  RunningServer s(pipeline_config(f.server->address(), spec));
  auto plan = plan_with(s.port, silence(kRate, 4.0));
  plan.dtmf = {{300ms, '7'}};
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  const auto reqs = f.llm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  ASSERT_EQ(reqs[0].events_size(), 1);
  EXPECT_EQ(reqs[0].events(0).dtmf().digits(), "7");
  EXPECT_EQ(f.tts.texts(), (std::vector<std::string>{"one two three four five", "Pressed."}));
  // "Pressed." (0.2 s of tone) follows the greeting (1.0 s) at once or within a few frames,
  // not at the no-input prompt 8 s later: 1.2 s of tone in all, over by 2.3 s.
  double loud_s = 0, last_loud_s = 0;
  for (double t = 0; t + 0.02 <= static_cast<double>(r.received.size()) / kRate; t += 0.02) {
    if (testing::rms(r.received, kRate, t, t + 0.02) > kToneRms / 2) {
      loud_s += 0.02;
      last_loud_s = t + 0.02;
    }
  }
  EXPECT_NEAR(loud_s, 1.2, 0.06);
  EXPECT_LT(last_loud_s, 2.3);
}

TEST(Pipeline, CollectedDigitsEndAtTheTerminator) {
  Fakes f;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "";
  spec.dtmf = pipeline::DtmfMode::collect;
  RunningServer s(pipeline_config(f.server->address(), spec));
  auto plan = plan_with(s.port, silence(kRate, 1.5));
  plan.dtmf = {{200ms, '4'}, {400ms, '2'}, {600ms, '#'}};
  sim::place_call(plan);
  const auto reqs = f.llm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  ASSERT_EQ(reqs[0].events_size(), 1);
  EXPECT_EQ(reqs[0].events(0).dtmf().digits(), "42");
}

TEST(Pipeline, AnAsrStreamBrokenMidUtteranceIsRetriedWithTheWholeUtterance) {
  // The recognizer needs 30 voiced frames for its final; the caller speaks for 40. The first
  // stream breaks 30 frames in (its pre-roll and the first voiced frames heard): the retry must
  // hear the utterance from its start, exactly what an unbroken stream hears, and the LLM gets
  // the words once.
  Fakes f;
  f.asr.voice_level = 150;  // every 20 ms of the test voice counts (its level swings)
  f.asr.voiced_frames = 30;
  f.asr.fail_after_frames = 30;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "";
  RunningServer s(pipeline_config(f.server->address(), spec));
  const auto audio = caller_says(0.8, 2.5);

  sim::place_call(plan_with(s.port, audio));  // unbroken: what a whole stream hears
  const auto whole = f.asr.voiced_per_stream();
  ASSERT_GE(whole.size(), 1u);  // (then one that hears the endpointing silence)
  ASSERT_GE(whole[0], 39);
  ASSERT_EQ(f.llm.requests().size(), 1u);

  f.asr.failing_streams = 1;
  sim::place_call(plan_with(s.port, audio));
  const auto heard = f.asr.voiced_per_stream();
  ASSERT_GE(heard.size(), whole.size() + 2);
  const int broken = heard[whole.size()], retry = heard[whole.size() + 1];
  EXPECT_GT(broken, 0);         // the broken stream had heard the start of the speech
  EXPECT_LT(broken, whole[0]);  // and not all of it
  EXPECT_EQ(retry, whole[0]);   // the retry: all of it, from its start
  const auto reqs = f.llm.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].user_text(), "hello world");
  const std::string m = s.server.metrics_text();
  EXPECT_NE(m.find("voxbridge_provider_errors_total{provider=\"fake\"} 1\n"), std::string::npos)
      << m;
  EXPECT_EQ(m.find("voxbridge_fallbacks_total 1"), std::string::npos) << m;
}

TEST(Pipeline, WithoutReplayABrokenStreamHearsOnlyWhatFollowsTheBreak) {
  // asr_replay = 0: the same break loses the words before it; the retry hears only the rest
  // (too few voiced frames for a final) and no turn starts. The test above is the difference.
  Fakes f;
  f.asr.voice_level = 150;
  f.asr.voiced_frames = 30;
  f.asr.fail_after_frames = 30;
  f.asr.failing_streams = 1;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "";
  spec.asr_replay = 0ms;
  RunningServer s(pipeline_config(f.server->address(), spec));
  sim::place_call(plan_with(s.port, caller_says(0.8, 2.5)));
  const auto heard = f.asr.voiced_per_stream();
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_GT(heard[0], 0);
  EXPECT_GT(heard[1], 0);
  EXPECT_LT(heard[1], 30);
  EXPECT_TRUE(f.llm.requests().empty());
}

TEST(Pipeline, ARouteChoosesHowItsCallsTakeDigits) {
  // One agent (digits as events), two listeners; the route for the "menu" listener collects
  // digits up to '#' instead. The same keypresses reach the LLM as "42" on one and "4" at once
  // on the other.
  Fakes f;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "";
  config::Config c = pipeline_config(f.server->address(), spec);
  c.listeners.push_back(c.listeners[0]);
  c.listeners[1].name = "menu";
  config::RouteConfig r;
  r.name = "menu";
  r.listeners = {"menu"};
  r.agent = "bot";
  r.dtmf = pipeline::DtmfMode::collect;
  c.routes.push_back(r);
  RunningServer s(c);
  const auto ports = s.server.ports();
  ASSERT_EQ(ports.size(), 2u);

  auto plan = plan_with(ports[1], silence(kRate, 1.5));
  plan.dtmf = {{200ms, '4'}, {400ms, '2'}, {600ms, '#'}};
  sim::place_call(plan);
  auto reqs = f.llm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  ASSERT_EQ(reqs[0].events_size(), 1);
  EXPECT_EQ(reqs[0].events(0).dtmf().digits(), "42");

  plan.port = ports[0];
  sim::place_call(plan);
  reqs = f.llm.requests();
  ASSERT_GE(reqs.size(), 2u);
  ASSERT_GE(reqs[1].events_size(), 1);
  EXPECT_EQ(reqs[1].events(0).dtmf().digits(), "4");
}

TEST(Pipeline, HangupActionSpeaksTheFinalWordsThenHangsUp) {
  Fakes f;
  f.llm.replies["hello"] = "Thanks for calling, bye.[hangup]";
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "";
  RunningServer s(pipeline_config(f.server->address(), spec));
  const auto audio = caller_says(0.6, 5.0);
  auto plan = plan_with(s.port, audio);
  plan.hangup_at_end = false;
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_EQ(f.tts.texts(), (std::vector<std::string>{"Thanks for calling, bye."}));
  // 4 words (0.8 s) were played in full before the hangup.
  const double onset = testing::onset_after(r.received, kRate, 0.9, kToneRms / 2);
  ASSERT_GT(onset, 0.0);
  EXPECT_NEAR(testing::offset_after(r.received, kRate, 0.9 + onset, kToneRms / 2), 0.8, 0.05);
}

TEST(Pipeline, ActionsWithoutAControlPathAreAnsweredNotConfigured) {
  Fakes f;
  f.llm.replies["hello"] = "Transferring you.[transfer:2001]";
  f.llm.default_reply = "Anything else?";
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "";
  spec.no_input_timeout = 1000ms;
  spec.transfer_hangs_up = false;  // transfer_fallback = ignore
  RunningServer s(pipeline_config(f.server->address(), spec));
  const auto audio = caller_says(0.6, 3.5);
  sim::place_call(plan_with(s.port, audio));
  const auto reqs = f.llm.requests();
  ASSERT_GE(reqs.size(), 2u);  // the turn, then the no-input turn carrying the result
  bool found = false;
  for (const auto& e : reqs[1].events()) {
    if (e.has_action_result()) {
      found = true;
      EXPECT_FALSE(e.action_result().ok());
      EXPECT_EQ(e.action_result().action().transfer().target(), "2001");
      EXPECT_NE(e.action_result().error().find("not configured"), std::string::npos);
    }
  }
  EXPECT_TRUE(found);
}

TEST(Pipeline, ATransferWithoutAControlPathHangsUpAfterTheReply) {
  // The default: the dialplan continues after AudioSocket() and routes the call on.
  Fakes f;
  f.llm.replies["hello"] = "Transferring you now.[transfer:2001]";
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "";
  auto c = pipeline_config(f.server->address(), spec);
  c.control.allow.extensions = {"2001"};  // the same allowlist as with a control path
  RunningServer s(c);
  const auto audio = caller_says(0.6, 3.0);
  auto plan = plan_with(s.port, audio);
  plan.hangup_at_end = false;
  const auto r = sim::place_call(plan);
  EXPECT_TRUE(r.server_sent_hangup);
  // The reply (3 words, 0.6 s) was played in full before the hangup.
  const double on = testing::onset_after(r.received, kRate, 0.9, kToneRms / 2);
  ASSERT_GT(on, 0.0);
  EXPECT_NEAR(testing::offset_after(r.received, kRate, 0.9 + on, kToneRms / 2), 0.6, 0.05);
  EXPECT_LT(r.duration_ms, 3000);
}

TEST(Pipeline, NoInputRepromptsThenSaysGoodbyeAndHangsUp) {
  Fakes f;
  f.llm.default_reply = "Are you there?";
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "Hi";
  spec.no_input_timeout = 1000ms;
  spec.max_no_input = 1;
  spec.goodbye = "Goodbye now";
  RunningServer s(pipeline_config(f.server->address(), spec));
  auto plan = plan_with(s.port, silence(kRate, 8.0));
  plan.hangup_at_end = false;
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  const auto reqs = f.llm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  ASSERT_EQ(reqs[0].events_size(), 1);
  EXPECT_EQ(reqs[0].events(0).no_input().count(), 1u);
  EXPECT_EQ(f.tts.texts(), (std::vector<std::string>{"Hi", "Are you there?", "Goodbye now"}));
  // Greeting 0.2 s, 1 s of silence, the re-prompt 0.6 s, 1 s, goodbye 0.4 s, hangup: ~3.3 s.
  EXPECT_LT(r.duration_ms, 4500);
}

TEST(Pipeline, UnreachableProviderPlaysTheFallbackAndHangsUp) {
  pipeline::PipelineSpec spec;
  spec.greeting = "Hello";
  // Port 1: nothing listens there.
  RunningServer s(pipeline_config("127.0.0.1:1", spec));
  auto plan = plan_with(s.port, silence(kRate, 6.0));
  plan.hangup_at_end = false;
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_LT(r.duration_ms, 4000);
  // The default fallback: three 150 ms beeps.
  double t = 0;
  for (int beep = 0; beep < 3; ++beep) {
    const double on = testing::onset_after(r.received, kRate, t, 2000);
    ASSERT_GE(on, 0.0) << "beep " << beep;
    const double len = testing::offset_after(r.received, kRate, t + on, 2000);
    EXPECT_NEAR(len, 0.15, 0.03) << "beep " << beep;
    t += on + len;
  }
}

TEST(Pipeline, AProviderKilledMidCallGivesTheFallbackAndACleanEndOthersGoOn) {
  Fakes f;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "Hello there";
  auto cfg = pipeline_config(f.server->address(), spec);
  config::ListenerConfig echo = cfg.listeners[0];
  echo.name = "echo";
  echo.agent = "echo";
  cfg.listeners.push_back(echo);
  RunningServer s(cfg);
  // The caller speaks twice after the provider server is gone: each utterance's ASR stream
  // fails; the second failure gives up on the providers.
  std::vector<std::int16_t> audio = silence(kRate, 1.5);
  append(audio, voice(kRate, 0.8));
  append(audio, silence(kRate, 1.5));
  append(audio, voice(kRate, 0.8));
  append(audio, silence(kRate, 4.0));
  auto plan = plan_with(s.port, audio);
  plan.hangup_at_end = false;
  auto bot = std::async(std::launch::async, [plan] { return sim::place_call(plan); });
  auto other_plan = plan_with(s.server.ports().at(1), voice(kRate, 6.0));
  auto other = std::async(std::launch::async, [other_plan] { return sim::place_call(other_plan); });
  std::this_thread::sleep_for(1000ms);
  f.server.reset();  // the provider process dies
  const auto r = bot.get();
  ASSERT_TRUE(r.connected);
  EXPECT_TRUE(r.server_sent_hangup);  // a clean end: voxbridge hung up, long before the
  EXPECT_LT(r.duration_ms, 5000);     // caller's audio was over, after the fallback prompt:
  // the last sound of the call is the third of its 150 ms beeps.
  const double step = 0.005;
  double end = static_cast<double>(r.received.size()) / kRate;
  while (end > step && testing::rms(r.received, kRate, end - step, end) < 500) end -= step;
  ASSERT_GT(end, 1.0);
  double start = end;
  while (start > step && testing::rms(r.received, kRate, start - step, start) >= 500) start -= step;
  EXPECT_NEAR(end - start, 0.15, 0.02);
  const std::string m = s.server.metrics_text();
  EXPECT_NE(m.find("\nvoxbridge_fallbacks_total 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("voxbridge_provider_errors_total{provider=\"fake\"} 2\n"), std::string::npos)
      << m;
  // The other call, on the same threads, lost nothing.
  const auto o = other.get();
  EXPECT_FALSE(o.server_closed);
  EXPECT_EQ(s.server.totals().send_drops, 0u);
  EXPECT_GE(o.received.size(), static_cast<std::size_t>(kRate * 6.0 * 0.98));
}

TEST(Pipeline, RecordedGreetingAndFallbackPromptsPlay) {
  // An 8 kHz WAV greeting of 0.5 s and a 0.3 s fallback: both resampled to the call once.
  const auto dir = std::filesystem::temp_directory_path();
  const auto greeting = (dir / "vb_pipeline_greeting.wav").string();
  const auto sorry = (dir / "vb_pipeline_sorry.wav").string();
  auto tone = [](double seconds) {
    std::vector<std::int16_t> v(static_cast<std::size_t>(8000 * seconds));
    for (std::size_t i = 0; i < v.size(); ++i) {
      v[i] = static_cast<std::int16_t>(
          6000 * std::sin(2 * std::numbers::pi * 600.0 * static_cast<double>(i) / 8000));
    }
    return v;
  };
  std::string err;
  ASSERT_TRUE(audio::write_wav(greeting, 8000, tone(0.5), err)) << err;
  ASSERT_TRUE(audio::write_wav(sorry, 8000, tone(0.3), err)) << err;
  {
    Fakes f;
    f.start();
    pipeline::PipelineSpec spec;
    spec.greeting_file = greeting;
    RunningServer s(pipeline_config(f.server->address(), spec));
    const auto r = sim::place_call(plan_with(s.port, silence(kRate, 1.2)));
    ASSERT_TRUE(r.connected) << r.error;
    EXPECT_TRUE(f.tts.texts().empty());  // no TTS for a recorded greeting
    const double on = testing::onset_after(r.received, kRate, 0.0, 2000);
    ASSERT_GE(on, 0.0);
    EXPECT_LT(on, 0.06);
    EXPECT_NEAR(testing::offset_after(r.received, kRate, on, 2000), 0.5, 0.03);
  }
  {
    pipeline::PipelineSpec spec;
    spec.greeting = "Hello";
    spec.fallback_file = sorry;
    RunningServer s(pipeline_config("127.0.0.1:1", spec));
    auto plan = plan_with(s.port, silence(kRate, 5.0));
    plan.hangup_at_end = false;
    const auto r = sim::place_call(plan);
    EXPECT_TRUE(r.server_sent_hangup);
    const double on = testing::onset_after(r.received, kRate, 0.0, 2000);
    ASSERT_GE(on, 0.0);
    EXPECT_NEAR(testing::offset_after(r.received, kRate, on, 2000), 0.3, 0.03);
  }
  std::filesystem::remove(greeting);
  std::filesystem::remove(sorry);
}

TEST(Pipeline, ABrokenTurnIsRetriedOnceAfterABackoff) {
  Fakes f;
  f.llm.fail_first = true;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "";
  RunningServer s(pipeline_config(f.server->address(), spec));
  const auto audio = caller_says(0.6, 2.0);
  const auto r = sim::place_call(plan_with(s.port, audio));
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_FALSE(r.server_sent_hangup);
  const auto reqs = f.llm.requests();
  ASSERT_EQ(reqs.size(), 2u);  // the failed turn and its retry, same words
  EXPECT_EQ(reqs[1].user_text(), "hello world");
  EXPECT_EQ(f.tts.texts(), (std::vector<std::string>{"You said hello world."}));
}

TEST(Pipeline, ABrokenTtsStreamResumesFromTheSentenceItBrokeIn) {
  // Two sentences (0.6 s + 0.8 s of tone); the first stream breaks 0.1 s into the second. The
  // retry, after the backoff, asks only for the second sentence again: the caller hears the
  // first, the start of the second, then the whole second, without a gap (the queue covers
  // the backoff). A second break in the same reply plays the fallback and hangs up.
  for (const bool twice : {false, true}) {
    Fakes f;
    f.llm.replies["hello"] = "First sentence here. Second sentence is longer.";
    f.tts.fail_after_ms = 700;
    f.tts.failing_streams = twice ? 2 : 1;
    f.start();
    pipeline::PipelineSpec spec;
    spec.greeting = "";
    RunningServer s(pipeline_config(f.server->address(), spec));
    const auto audio = caller_says(0.6, 3.0);
    auto plan = plan_with(s.port, audio);
    plan.hangup_at_end = !twice;
    const auto r = sim::place_call(plan);
    ASSERT_TRUE(r.connected) << r.error;
    EXPECT_EQ(f.tts.texts(),
              (std::vector<std::string>{"First sentence here.", "Second sentence is longer.",
                                        "Second sentence is longer."}));
    EXPECT_EQ(f.tts.streams.load(), 2);
    EXPECT_EQ(r.server_sent_hangup, twice);
    if (!twice) {
      const double on = testing::onset_after(r.received, kRate, 0.9, kToneRms / 2);
      ASSERT_GT(on, 0.0);
      EXPECT_NEAR(testing::offset_after(r.received, kRate, 0.9 + on, kToneRms / 2), 1.5, 0.05);
    }
  }
}

TEST(Pipeline, AStalledModelHitsTheDeadlineAndTheCallEndsCleanly) {
  Fakes f;
  f.llm.first_token_delay_ms = 5000;  // never answers in time
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "";
  spec.rpc_timeout = 400ms;
  RunningServer s(pipeline_config(f.server->address(), spec));  // the target sets no deadline
  const auto audio = caller_says(0.6, 6.0);
  auto plan = plan_with(s.port, audio);
  plan.hangup_at_end = false;
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  // Two attempts of 0.4 s with 0.2 s between, then the fallback beeps and the hangup: the call
  // ends about 2.5 s in, not after the model's 5 s (or never).
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_LT(r.duration_ms, 3500);
  EXPECT_EQ(f.llm.requests().size(), 2u);
}

TEST(Pipeline, ABrokenProviderCostsOnlyItsOwnCalls) {
  // One listener with the working fakes and one whose providers are unreachable: the second
  // call falls back and hangs up while the first converses normally.
  Fakes f;
  f.start();
  pipeline::PipelineSpec spec;
  spec.greeting = "Hello there";
  auto cfg = pipeline_config(f.server->address(), spec);
  config::ListenerConfig broken = cfg.listeners[0];
  broken.name = "broken";
  broken.agent = "dead";
  cfg.listeners.push_back(broken);
  agent::AgentSpec dead;
  dead.name = "dead";
  dead.type = agent::AgentSpec::Type::pipeline;
  cfg.agents.push_back(dead);
  auto dspec = spec;
  dspec.asr = dspec.llm = dspec.tts = {"dead", "127.0.0.1:1", false, "", 1000ms, {}, "", ""};
  cfg.pipelines["dead"] = dspec;
  RunningServer s(cfg);
  const auto ports = s.server.ports();
  std::vector<std::int16_t> audio = silence(kRate, 1.0);
  append(audio, voice(kRate, 0.8));
  append(audio, silence(kRate, 2.0));
  auto bad_plan = plan_with(ports.at(1), silence(kRate, 5.0));
  bad_plan.hangup_at_end = false;
  auto bad = std::async(std::launch::async, [bad_plan] { return sim::place_call(bad_plan); });
  const auto good = sim::place_call(plan_with(ports.at(0), audio));
  EXPECT_TRUE(bad.get().server_sent_hangup);
  EXPECT_FALSE(good.server_sent_hangup);
  ASSERT_EQ(f.llm.requests().size(), 1u);
  EXPECT_EQ(f.llm.requests()[0].user_text(), "hello world");
}

config::Config speech_config(const std::string& address) {
  config::Config c = one_agent_config("s2s", agent::AgentSpec::Type::speech);
  pipeline::SpeechAgentSpec s;
  s.agent = {"fake", address, false, "", 10000ms, {}, "", ""};
  c.speech_agents["s2s"] = s;
  return c;
}

TEST(SpeechAgent, PlaysTheAgentReportsMarksForwardsDtmfAndEndsWhenItSays) {
  testing::FakeSpeechAgent fake;
  testing::FakeProviderServer fs(&fake);
  RunningServer s(speech_config(fs.address()));
  std::vector<std::int16_t> audio = silence(kRate, 1.0);
  append(audio, voice(kRate, 0.6));
  append(audio, silence(kRate, 3.0));
  auto plan = plan_with(s.port, audio);
  plan.dtmf = {{500ms, '5'}};
  plan.hangup_at_end = false;
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_EQ(fake.input_rate.load(), 16000);
  EXPECT_GT(testing::rms(r.received, kRate, 0.05, 0.4), 0.9 * kToneRms);
  EXPECT_EQ(fake.marks_played(), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(fake.dtmf(), "5");
  // The answer (200 ms) after the caller spoke, then the hangup the agent asked for.
  const double onset = testing::onset_after(r.received, kRate, 1.2, kToneRms / 2);
  ASSERT_GT(onset, 0.0);
  EXPECT_NEAR(testing::offset_after(r.received, kRate, 1.2 + onset, kToneRms / 2), 0.2, 0.04);
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_LT(r.duration_ms, 3500);
}

TEST(SpeechAgent, ClearPlaybackStopsTheAgentWithinATick) {
  testing::FakeSpeechAgent fake;
  fake.greeting_ms = 3000;
  testing::FakeProviderServer fs(&fake);
  RunningServer s(speech_config(fs.address()));
  std::vector<std::int16_t> audio = silence(kRate, 0.5);
  append(audio, voice(kRate, 0.6, 12000));
  append(audio, silence(kRate, 1.5));
  const auto r = sim::place_call(plan_with(s.port, audio));
  ASSERT_TRUE(r.connected) << r.error;
  // The fake clears after 10 voiced frames (0.2 s from 0.5 s); the tone stops within a tick
  // or two of that, not after its 3 s.
  const double stop = testing::offset_after(r.received, kRate, 0.1, kToneRms / 2);
  EXPECT_GT(stop + 0.1, 0.6);
  EXPECT_LT(stop + 0.1, 0.5 + 0.2 + 0.1);
  EXPECT_TRUE(fake.marks_played().empty() || fake.marks_played()[0] == 1);
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

/// The agent audio the caller heard first, in ms: from its first sample that is not silence to
/// the first 20 ms of silence after it.
double first_sound_ms(const std::vector<std::int16_t>& x, int rate) {
  std::size_t i0 = 0;
  while (i0 < x.size() && x[i0] == 0) ++i0;
  const auto frame = static_cast<std::size_t>(rate / 50);
  std::size_t i1 = i0, zeros = 0;
  for (; i1 < x.size() && zeros < frame; ++i1) zeros = x[i1] == 0 ? zeros + 1 : 0;
  return static_cast<double>(i1 - zeros - i0) * 1000.0 / rate;
}

TEST(SpeechAgent, PlaybackClearedTellsTheAgentWhatTheCallerHeard) {
  testing::FakeSpeechAgent fake;
  fake.greeting_ms = 3000;
  testing::FakeProviderServer fs(&fake);
  RunningServer s(speech_config(fs.address()));
  std::vector<std::int16_t> audio = silence(kRate, 0.5);
  append(audio, voice(kRate, 0.6, 12000));
  append(audio, silence(kRate, 1.5));
  const auto r = sim::place_call(plan_with(s.port, audio));
  ASSERT_TRUE(r.connected) << r.error;
  ASSERT_TRUE(wait_until([&] { return !fake.cleared().empty(); }, 2s));
  const auto cleared = fake.cleared();
  ASSERT_EQ(cleared.size(), 1u);
  EXPECT_EQ(cleared[0].mark_id(), 0u);  // mark 1 comes after the 3 s greeting
  const double heard = first_sound_ms(r.received, kRate);
  EXPECT_GT(heard, 300);
  EXPECT_NEAR(static_cast<double>(cleared[0].played_ms()), heard, 20.0);
  // The dropped mark still follows, after it.
  ASSERT_TRUE(wait_until([&] { return !fake.marks_played().empty(); }, 2s));
  const auto ev = fake.events();
  const auto at = std::find(ev.begin(), ev.end(), "mark_played 1");
  ASSERT_NE(at, ev.end());
  EXPECT_EQ(std::count_if(ev.begin(), at,
                          [](const std::string& e) { return e.starts_with("playback_cleared"); }),
            1);
}

TEST(SpeechAgent, OnAUlawLegTheAgentGetsTheCallersOwnBytes) {
  testing::FakeSpeechAgent fake;
  testing::FakeProviderServer fs(&fake);
  config::Config c = speech_config(fs.address());
  c.listeners[0].codec = session::CodecMode::ulaw;  // 0x10 carries mu-law
  c.speech_agents["s2s"].leg_codec = true;
  RunningServer s(c);
  // At 8 kHz: quiet while the greeting plays (and its echo window), then a voice the agent
  // answers. No sample in -3..-1: their mu-law code 0x7F (negative zero) comes back as 0xFF.
  std::vector<std::int16_t> audio = silence(8000, 1.2);
  append(audio, voice(8000, 0.6));
  append(audio, silence(8000, 1.0));
  for (auto& x : audio) {
    if (x >= -3 && x <= -1) x = 0;
  }
  sim::CallPlan plan = plan_with(s.port, audio);
  plan.format = *sim::LegFormat::parse("ulaw");
  plan.hangup_at_end = false;
  std::string sent(audio.size(), '\0');
  audio::ulaw_encode(audio, {reinterpret_cast<std::uint8_t*>(sent.data()), sent.size()});
  sent.append(static_cast<std::size_t>(8000 * 2), '\xFF');  // the simulator's tail: silence
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  const auto cfg = fake.config();
  EXPECT_EQ(cfg.input_format().encoding(), common::v1::MULAW);
  EXPECT_EQ(cfg.input_format().sample_rate_hz(), 8000u);
  EXPECT_EQ(cfg.output_format().encoding(), common::v1::MULAW);
  EXPECT_EQ(cfg.output_format().sample_rate_hz(), 8000u);
  const std::string got = fake.audio_in();
  ASSERT_GE(got.size(), 8000u * 18 / 10);  // at least up to the end of the voice
  ASSERT_LE(got.size(), sent.size());
  const auto diff = std::mismatch(got.begin(), got.end(), sent.begin());
  EXPECT_EQ(diff.first, got.end()) << "first difference at byte " << (diff.first - got.begin());
  // The agent's mu-law greeting reached the caller (as slin8, what a G.711 leg is sent).
  EXPECT_EQ(r.reply_rate_hz(), 8000);
  EXPECT_GT(testing::rms(r.received, 8000, 0.05, 0.4), 0.8 * kToneRms);
  EXPECT_TRUE(r.server_sent_hangup);  // it answered the voice and ended
}

TEST(SpeechAgent, UsageGoesIntoTheMetricsAndTheCallsEvents) {
  testing::FakeSpeechAgent fake;
  common::v1::Usage u;
  u.set_input_tokens(10);
  u.set_output_tokens(20);
  u.set_input_audio_ms(300);
  u.set_output_audio_ms(400);
  fake.usage = u;
  u.set_input_tokens(100);
  u.set_output_tokens(200);
  u.set_input_audio_ms(3000);
  u.set_output_audio_ms(4500);
  fake.end_usage = u;
  testing::FakeProviderServer fs(&fake);
  config::Config c = speech_config(fs.address());
  c.general.http_listen = "127.0.0.1:0";  // the calls' events are kept
  RunningServer s(c);
  std::vector<std::int16_t> audio = silence(kRate, 1.0);
  append(audio, voice(kRate, 0.6));
  append(audio, silence(kRate, 3.0));
  auto plan = plan_with(s.port, audio);
  plan.hangup_at_end = false;
  const std::string id = "a1b2c3d4-0000-4000-8000-00000000d5a6";
  plan.uuid = audiosocket::Uuid::parse(id);
  const auto r = sim::place_call(plan);
  ASSERT_TRUE(r.connected) << r.error;
  EXPECT_TRUE(r.server_sent_hangup);
  std::optional<std::string> ev;
  ASSERT_TRUE(wait_until(
      [&] {
        ev = s.server.events_json(id, 0);
        return ev && ev->find("\"type\":\"end\"") != std::string::npos;
      },
      3s));
  const auto usage_at =
      ev->find(R"("type":"usage","input_tokens":100,"output_tokens":200,"input_audio_ms":3000,)"
               R"("output_audio_ms":4500})");
  ASSERT_NE(usage_at, std::string::npos) << *ev;
  EXPECT_LT(usage_at, ev->find("\"type\":\"end\""));
  EXPECT_EQ(ev->find("\"type\":\"usage\"", usage_at + 1), std::string::npos);  // once
  const std::string m = s.server.metrics_text();
  EXPECT_NE(m.find("\nvoxbridge_agent_tokens_total{direction=\"input\"} 100\n"), std::string::npos)
      << m;
  EXPECT_NE(m.find("\nvoxbridge_agent_tokens_total{direction=\"output\"} 200\n"),
            std::string::npos);
  EXPECT_NE(m.find("\nvoxbridge_agent_audio_seconds_total{direction=\"input\"} 3\n"),
            std::string::npos);
  EXPECT_NE(m.find("\nvoxbridge_agent_audio_seconds_total{direction=\"output\"} 4.5\n"),
            std::string::npos);
}

TEST(SpeechAgent, UnreachableAgentPlaysTheFallbackAndHangsUp) {
  RunningServer s(speech_config("127.0.0.1:1"));
  auto plan = plan_with(s.port, silence(kRate, 5.0));
  plan.hangup_at_end = false;
  const auto r = sim::place_call(plan);
  EXPECT_TRUE(r.server_sent_hangup);
  EXPECT_LT(r.duration_ms, 4000);
  EXPECT_GT(testing::rms(r.received, kRate, 0.0, 1.5), 1000);  // the beeps
  const std::string m = s.server.metrics_text();
  EXPECT_NE(m.find("\nvoxbridge_fallbacks_total 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("voxbridge_provider_errors_total{provider=\"fake\"} 1\n"), std::string::npos)
      << m;
}

}  // namespace
}  // namespace voxbridge
