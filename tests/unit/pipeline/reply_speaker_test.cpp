// ReplySpeaker against fake TTS streams and a fake playout queue, tick by tick: sentences sent
// as chunks, audio to playout under the watermarks (pause/resume reads), the buffer cap, the one
// retry from the chunk it broke in, what an interrupted caller heard, and when a reply is done.
#include "voxbridge/pipeline/reply_speaker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "support/fake_clients.hpp"
#include "voxbridge/metrics/metrics.hpp"

namespace voxbridge::pipeline {
namespace {

using namespace std::chrono_literals;
using providers::StreamStatus;
using testing::FakeCallControl;
using testing::FakeProviderClients;
using testing::FakeTtsStream;
using testing::ManualPoster;

constexpr int kRate = 16000;

std::vector<std::int16_t> constant(std::size_t n, std::int16_t v) {
  return std::vector<std::int16_t>(n, v);
}

std::vector<std::int16_t> ramp(std::size_t n, std::int16_t from) {
  std::vector<std::int16_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int16_t>(from + (i % 1000));
  return v;
}

std::size_t count_of(const std::vector<std::int16_t>& x, std::int16_t v) {
  return static_cast<std::size_t>(std::count(x.begin(), x.end(), v));
}

std::vector<std::int16_t> nonzero(const std::vector<std::int16_t>& x) {
  std::vector<std::int16_t> out;
  std::copy_if(x.begin(), x.end(), std::back_inserter(out), [](std::int16_t s) { return s != 0; });
  return out;
}

struct Texts {
  std::vector<std::pair<std::string, std::uint64_t>> v;
  bool operator==(const Texts&) const = default;
};

Texts texts_of(const FakeTtsStream& s) {
  Texts t;
  for (const auto& x : s.texts()) t.v.emplace_back(x.text, x.chunk_id);
  return t;
}

struct ReplySpeakerTest : ::testing::Test {
  ReplySpeakerTest() {
    spec.tts.name = "tts-test";
    spec.tts.address = "127.0.0.1:2";
    spec.tts_rate_hz = kRate;
    spec.voice = "en-US-Standard-C";
    spec.language = "en-GB";
    spec.rpc_timeout = 9000ms;
    spec.retry_backoff = 200ms;  // 10 ticks
    call.set_call_id("call-2");
    call.set_caller_name("Ada");
  }

  void start(int capacity_ms = 2000, int high_ms = 1000) {
    control = std::make_unique<FakeCallControl>(poster, kRate, capacity_ms, high_ms);
    speaker = std::make_unique<ReplySpeaker>(spec, kRate, 3, clients, call);
    speaker->start(*control, "call-2",
                   ReplySpeaker::Events{
                       [this] { ++first_audio; },
                       [this](std::string why) { failures.push_back(std::move(why)); },
                   },
                   &counters);
  }

  /// Events so far reach the call's thread, then one 20 ms tick: a frame leaves, the speaker
  /// ticks and feeds the playout.
  void step(int n = 1) {
    for (int i = 0; i < n; ++i) {
      poster.run();
      control->tick();
      speaker->tick();
      speaker->feed();
    }
    poster.run();
  }

  PipelineSpec spec;
  common::v1::CallInfo call;
  ManualPoster poster;
  std::shared_ptr<FakeProviderClients> clients = std::make_shared<FakeProviderClients>();
  metrics::ProviderCounters counters;
  std::unique_ptr<FakeCallControl> control;
  std::unique_ptr<ReplySpeaker> speaker;  // made by start(), once the spec is set
  int first_audio = 0;
  std::vector<std::string> failures;
};

TEST_F(ReplySpeakerTest, TheStreamIsOpenedWithTheVoiceFormatCallFactsAndBoundedTarget) {
  start();
  speaker->begin();
  EXPECT_TRUE(clients->tts().empty());  // no stream before there is something to say
  speaker->say("Hello there.");
  ASSERT_EQ(clients->tts().size(), 1u);
  const auto& s = clients->last_tts();
  EXPECT_EQ(s.target().name, "tts-test");
  EXPECT_EQ(s.target().deadline, 9000ms);
  EXPECT_EQ(s.config().format().encoding(), common::v1::LINEAR16);
  EXPECT_EQ(s.config().format().sample_rate_hz(), static_cast<std::uint32_t>(kRate));
  EXPECT_EQ(s.config().voice(), "en-US-Standard-C");
  EXPECT_EQ(s.config().language(), "en-GB");
  EXPECT_EQ(s.config().call().call_id(), "call-2");
  EXPECT_EQ(s.config().call().caller_name(), "Ada");
  EXPECT_EQ(texts_of(s), (Texts{{{"Hello there.", 1}}}));
  EXPECT_EQ(counters.streams.value(), 1u);
}

TEST_F(ReplySpeakerTest, TextIsSplitIntoSentencesSentAsChunksWithIncreasingIds) {
  start();
  speaker->begin();
  speaker->text("Hello there. How are");
  speaker->text(" you today? Fine");
  EXPECT_EQ(texts_of(clients->last_tts()),
            (Texts{{{"Hello there.", 1}, {"How are you today?", 2}}}));
  speaker->flush_text();
  speaker->finish();
  auto& s = clients->last_tts();
  EXPECT_EQ(texts_of(s), (Texts{{{"Hello there.", 1}, {"How are you today?", 2}, {"Fine", 3}}}));
  EXPECT_TRUE(s.finished());
  s.close();
  step();
  speaker->end();

  // The next reply has its own stream; chunk ids go on.
  speaker->begin();
  speaker->say("Goodbye.");
  ASSERT_EQ(clients->tts().size(), 2u);
  EXPECT_EQ(texts_of(clients->last_tts()), (Texts{{{"Goodbye.", 4}}}));
}

TEST_F(ReplySpeakerTest, TtsAudioGoesToPlayoutAndTheCallerHearsItExactly) {
  start();
  speaker->begin();
  speaker->say("Hello there.");
  auto& s = clients->last_tts();
  const auto a = ramp(800, 100), b = ramp(480, 3000);
  s.audio(a);
  s.audio(b);
  EXPECT_EQ(control->accepted(), 0u);  // nothing before the events reach the call's thread
  poster.run();
  EXPECT_EQ(control->accepted(), 1280u);
  EXPECT_EQ(first_audio, 1);  // once per reply
  EXPECT_TRUE(speaker->audible());
  step(4);
  std::vector<std::int16_t> expected = a;
  expected.insert(expected.end(), b.begin(), b.end());
  EXPECT_EQ(control->heard(), expected);
}

TEST_F(ReplySpeakerTest, TtsAudioAtAnotherRateIsResampledToTheInternalRate) {
  spec.tts_rate_hz = 8000;
  start();
  speaker->begin();
  speaker->say("Hello there.");
  EXPECT_EQ(clients->last_tts().config().format().sample_rate_hz(), 8000u);
  clients->last_tts().audio(constant(1600, 4000));  // 200 ms at 8 kHz
  poster.run();
  EXPECT_EQ(control->accepted(), 3200u);  // 200 ms at 16 kHz
}

TEST_F(ReplySpeakerTest, TheFirstFrameIsTakenOnceWhenItWentIntoAnEmptyQueue) {
  start();
  speaker->begin();
  speaker->say("Hello there.");
  EXPECT_FALSE(speaker->take_first_frame());
  clients->last_tts().audio(constant(640, 500));
  step();
  EXPECT_TRUE(speaker->take_first_frame());
  EXPECT_FALSE(speaker->take_first_frame());
  clients->last_tts().audio(constant(640, 500));
  step();
  EXPECT_FALSE(speaker->take_first_frame());
}

TEST_F(ReplySpeakerTest, AReplyQueuedBehindOtherAudioHasNoFirstFrameOfItsOwn) {
  start();
  const auto other = constant(3200, 7);
  control->play(other);
  speaker->begin();
  speaker->say("Hello there.");
  clients->last_tts().audio(constant(640, 500));
  step();
  EXPECT_FALSE(speaker->take_first_frame());
}

TEST_F(ReplySpeakerTest, ReadsPauseWhileAudioWaitsBeyondThePlayoutQueueAndResumeWhenItFits) {
  start();  // capacity 32000 samples, high watermark 16000
  speaker->begin();
  speaker->say("A long answer.");
  auto& s = clients->last_tts();
  s.audio(constant(19200, 1));  // 1.2 s: fits in the queue, which is then above its watermark
  poster.run();
  EXPECT_EQ(control->queued_samples(), 19200u);
  EXPECT_EQ(s.pauses(), 0);  // nothing waits here
  s.audio(constant(3200, 2));
  poster.run();
  EXPECT_EQ(control->queued_samples(), 19200u);
  EXPECT_TRUE(s.paused());
  EXPECT_EQ(s.pauses(), 1);
  s.audio(constant(3200, 3));  // the provider writes on; flow control holds it
  EXPECT_EQ(s.held(), 1u);
  for (int k = 1; k <= 10; ++k) {
    step();
    ASSERT_EQ(s.resumes(), 0) << "tick " << k;  // 19200 - 320k >= 16000: still full
    ASSERT_TRUE(s.paused());
  }
  step();  // 15680 queued: the waiting audio goes, reads resume
  EXPECT_EQ(s.resumes(), 1);
  EXPECT_EQ(count_of(control->heard(), 1), 11u * 320u);
  // The held message arrives and waits again above the watermark.
  EXPECT_EQ(s.held(), 0u);
  EXPECT_TRUE(s.paused());
  EXPECT_EQ(s.pauses(), 2);
  step(200);
  EXPECT_EQ(count_of(control->heard(), 1), 19200u);
  EXPECT_EQ(count_of(control->heard(), 2), 3200u);
  EXPECT_EQ(count_of(control->heard(), 3), 3200u);
  EXPECT_FALSE(s.paused());
  EXPECT_EQ(speaker->dropped_samples(), 0u);
}

TEST_F(ReplySpeakerTest, AudioBeyondMaxBufferedAudioIsDroppedAndCounted) {
  spec.max_buffered_audio = 100ms;  // 1600 samples
  start();
  speaker->begin();
  speaker->say("A long answer.");
  auto& s = clients->last_tts();
  // The cap is on what one message adds beyond the playout queue, whatever room it has.
  s.audio(constant(4800, 1));  // 300 ms into an empty queue: 100 ms kept
  poster.run();
  EXPECT_EQ(speaker->dropped_samples(), 3200u);
  EXPECT_EQ(control->queued_samples(), 1600u);
  for (int i = 0; i < 9; ++i) s.audio(constant(1600, 1));  // up to the high watermark
  s.audio(constant(4800, 2));                              // 300 ms waiting here: 100 ms kept
  poster.run();
  EXPECT_EQ(control->queued_samples(), 16000u);
  EXPECT_EQ(speaker->dropped_samples(), 6400u);
  step(150);
  EXPECT_EQ(count_of(control->heard(), 1), 16000u);
  EXPECT_EQ(count_of(control->heard(), 2), 1600u);
}

TEST_F(ReplySpeakerTest, ABrokenStreamIsRetriedOnceFromTheChunkItBrokeIn) {
  start(200, 100);  // a 100 ms watermark: the second chunk's audio waits here
  speaker->begin();
  speaker->say("First sentence here.");
  speaker->say("Second sentence here.");
  speaker->finish();
  auto& s1 = clients->last_tts();
  EXPECT_TRUE(s1.finished());
  s1.audio(constant(1600, 1000));
  s1.chunk_done(1, 100);
  s1.audio(constant(800, 2000));  // half of chunk 2, not yet in the playout queue
  poster.run();
  EXPECT_EQ(control->queued_samples(), 1600u);
  s1.close({StreamStatus::kUnavailable, "synth down"});
  poster.run();
  EXPECT_TRUE(failures.empty());
  EXPECT_EQ(counters.errors.value(), 1u);
  speaker->say("Third one here.");  // during the backoff: the retry sends it
  for (int k = 1; k <= 9; ++k) step();
  EXPECT_EQ(clients->tts().size(), 1u);
  step();
  ASSERT_EQ(clients->tts().size(), 2u);
  auto& s2 = clients->last_tts();
  EXPECT_EQ(texts_of(s2), (Texts{{{"Second sentence here.", 2}, {"Third one here.", 3}}}));
  EXPECT_TRUE(s2.finished());
  s2.audio(constant(800, 3000));
  s2.chunk_done(2, 50);
  s2.audio(constant(480, 4000));
  s2.chunk_done(3, 80);
  s2.close();
  step(40);
  // Chunk 1, then chunk 2 from its start; the broken part of chunk 2 was never heard.
  std::vector<std::int16_t> expected = constant(1600, 1000);
  for (auto v : {constant(800, 3000), constant(480, 4000)}) {
    expected.insert(expected.end(), v.begin(), v.end());
  }
  EXPECT_EQ(nonzero(control->heard()), expected);
  EXPECT_TRUE(speaker->done());
  EXPECT_TRUE(failures.empty());
  // Chunk marks of the retry count after the audio before it (100 ms): all three were heard.
  const auto heard = speaker->interrupt();
  EXPECT_EQ(heard.ms, 180u);
  EXPECT_EQ(heard.text, "First sentence here. Second sentence here. Third one here.");
}

TEST_F(ReplySpeakerTest, ASecondBrokenStreamFailsTheReply) {
  start();
  speaker->begin();
  speaker->say("Hello there.");
  speaker->finish();
  clients->last_tts().close({StreamStatus::kUnavailable, "down"});
  step(10);
  ASSERT_EQ(clients->tts().size(), 2u);
  EXPECT_EQ(texts_of(clients->last_tts()), (Texts{{{"Hello there.", 1}}}));
  clients->last_tts().close({StreamStatus::kInternal, "down again"});
  step();
  EXPECT_EQ(failures, (std::vector<std::string>{"TTS failed: down again"}));
  EXPECT_EQ(counters.streams.value(), 2u);
  EXPECT_EQ(counters.errors.value(), 2u);
  step(50);
  EXPECT_EQ(clients->tts().size(), 2u);
}

TEST_F(ReplySpeakerTest, AStreamThatCannotBeSetUpFails) {
  start();
  speaker->begin();
  clients->fail_next_open("cannot read CA file");
  speaker->say("Hello there.");
  step();
  EXPECT_EQ(failures, (std::vector<std::string>{"TTS: cannot read CA file"}));
}

TEST_F(ReplySpeakerTest, InterruptFlushesStopsSynthesisAndTellsWhatWasHeard) {
  start();
  speaker->begin();
  speaker->say("First sentence here.");
  speaker->say("Second sentence here.");
  auto& s = clients->last_tts();
  s.audio(constant(1600, 1000));
  s.chunk_done(1, 100);
  s.audio(constant(1600, 2000));
  s.chunk_done(2, 200);
  step(8);                        // 160 ms played: chunk 1 to its end, chunk 2 in part
  s.audio(constant(1600, 3000));  // on its way when the caller barges in
  const auto heard = speaker->interrupt();
  EXPECT_EQ(heard.ms, 160u);
  EXPECT_EQ(heard.text, "First sentence here.");
  EXPECT_TRUE(s.cancelled());
  EXPECT_EQ(control->flushes(), 1);
  EXPECT_EQ(control->queued_samples(), 0u);
  step(20);
  EXPECT_EQ(count_of(control->heard(), 3000), 0u);  // late audio is dropped
  EXPECT_EQ(count_of(control->heard(), 2000), 960u);
  EXPECT_FALSE(speaker->audible());
  EXPECT_TRUE(failures.empty());
}

TEST_F(ReplySpeakerTest, InterruptedBeforeAnyChunkEndedTheCallerHeardNoText) {
  start();
  speaker->begin();
  speaker->say("First sentence here.");
  clients->last_tts().audio(constant(1600, 1000));
  step(3);
  const auto heard = speaker->interrupt();
  EXPECT_EQ(heard.ms, 60u);
  EXPECT_EQ(heard.text, "");
}

TEST_F(ReplySpeakerTest, DoneOnlyOnceEverythingWasSynthesizedAndPlayed) {
  start();
  speaker->begin();
  speaker->say("Hi there.");
  speaker->finish();
  auto& s = clients->last_tts();
  s.audio(constant(640, 100));
  s.chunk_done(1, 40);
  poster.run();
  EXPECT_FALSE(speaker->done());  // the stream is open
  step(2);
  EXPECT_FALSE(speaker->done());
  s.close();
  poster.run();
  EXPECT_TRUE(speaker->done());
}

TEST_F(ReplySpeakerTest, NotDoneWhileAudioIsStillQueued) {
  start();
  speaker->begin();
  speaker->say("Hi there.");
  speaker->finish();
  auto& s = clients->last_tts();
  s.audio(constant(640, 100));
  s.close();
  poster.run();
  EXPECT_FALSE(speaker->done());
  step();
  EXPECT_FALSE(speaker->done());
  step();
  EXPECT_TRUE(speaker->done());
}

TEST_F(ReplySpeakerTest, PlayedAudioIsQueuedAsItFitsAndHeardExactly) {
  start(200, 100);
  speaker->begin();
  const auto prompt = ramp(8000, 1);  // 500 ms: more than the queue holds
  speaker->play(prompt);
  speaker->finish();
  EXPECT_EQ(control->queued_samples(), 3200u);
  EXPECT_TRUE(speaker->audible());
  EXPECT_TRUE(clients->tts().empty());
  EXPECT_FALSE(speaker->done());
  step(25);
  EXPECT_EQ(control->heard(), prompt);
  EXPECT_TRUE(speaker->done());
}

TEST_F(ReplySpeakerTest, CancelStopsSynthesisAndDropsOnlyWhatWasNotQueued) {
  start();
  speaker->begin();
  speaker->say("A long answer.");
  auto& s = clients->last_tts();
  s.audio(constant(16000, 1));
  s.audio(constant(3200, 2));  // waits here
  poster.run();
  speaker->cancel();
  EXPECT_TRUE(s.cancelled());
  EXPECT_EQ(control->flushes(), 0);
  EXPECT_EQ(control->queued_samples(), 16000u);
  step(60);
  EXPECT_EQ(count_of(control->heard(), 1), 16000u);
  EXPECT_EQ(count_of(control->heard(), 2), 0u);
  EXPECT_TRUE(failures.empty());
}

TEST_F(ReplySpeakerTest, TheAgentsPeaksAreKeptForTheEchoGate) {
  start();
  speaker->begin();
  speaker->say("Hello there.");
  clients->last_tts().audio(constant(1600, 12000));
  clients->last_tts().audio(constant(1600, 300));
  poster.run();
  // 100 ms at 12000, then 100 ms at 300: the peak over the window before the block playing now.
  EXPECT_EQ(speaker->far().peak(control->queued_samples(), 200ms), 12000);
  step(10);
  EXPECT_EQ(speaker->far().peak(control->queued_samples(), 200ms), 12000);
  EXPECT_EQ(speaker->far().peak(control->queued_samples(), 50ms), 300);
}

TEST_F(ReplySpeakerTest, AfterEndLateEventsAreIgnored) {
  start();
  speaker->begin();
  speaker->say("Hello there.");
  auto& s = clients->last_tts();
  s.audio(constant(640, 1));
  s.close({StreamStatus::kUnavailable, "down"});
  speaker->end();
  step(20);
  EXPECT_EQ(control->accepted(), 0u);
  EXPECT_TRUE(failures.empty());
  EXPECT_EQ(clients->tts().size(), 1u);  // no retry for a reply that is over
}

TEST_F(ReplySpeakerTest, ANewReplyHasAStreamOfItsOwnEvenIfTheLastOneWasNotClosed) {
  start();
  speaker->begin();
  speaker->say("Hello there.");
  auto& s1 = clients->last_tts();
  speaker->end();
  speaker->begin();
  EXPECT_TRUE(s1.cancelled());
  speaker->say("Again.");
  ASSERT_EQ(clients->tts().size(), 2u);
  auto& s2 = clients->last_tts();
  EXPECT_EQ(texts_of(s2), (Texts{{{"Again.", 2}}}));
  speaker->finish();
  s2.audio(constant(640, 5));
  s2.close();
  step(3);
  EXPECT_EQ(count_of(control->heard(), 5), 640u);
  EXPECT_TRUE(speaker->done());
}

TEST_F(ReplySpeakerTest, AfterStopNothingIsDelivered) {
  start();
  speaker->begin();
  speaker->say("Hello there.");
  auto& s = clients->last_tts();
  s.audio(constant(640, 1));
  s.close({StreamStatus::kUnavailable, "down"});
  speaker->stop();
  EXPECT_TRUE(s.cancelled());
  step(20);
  EXPECT_EQ(control->accepted(), 0u);
  EXPECT_TRUE(failures.empty());
  EXPECT_EQ(clients->tts().size(), 1u);
}

}  // namespace
}  // namespace voxbridge::pipeline
