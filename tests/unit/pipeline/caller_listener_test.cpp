// CallerListener and FarEndPeaks, frame by frame on synthetic audio: speech start and end, the
// echo gate against the agent's own peaks, the barge-in decision (time and words), and an 8 kHz
// leg analysed at its own rate.
#include "voxbridge/pipeline/caller_listener.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "support/test_audio.hpp"

namespace voxbridge::pipeline {
namespace {

using namespace std::chrono_literals;
using voxbridge::testing::append;
using voxbridge::testing::silence;
using voxbridge::testing::voice;

constexpr int kRate = 16000;
constexpr std::size_t kFrame = kRate / 50;

int peak_of(const std::vector<std::int16_t>& x) {
  int p = 0;
  for (auto s : x) p = std::max(p, std::abs(static_cast<int>(s)));
  return p;
}

/// Silence, then a voice, then silence (seconds).
std::vector<std::int16_t> utterance(int rate, double before, double speech, double after,
                                    double level = 8000) {
  auto x = silence(rate, before);
  append(x, voice(rate, speech, level));
  append(x, silence(rate, after));
  return x;
}

struct CallerListenerTest : ::testing::Test {
  CallerListenerTest() { spec.barge_in_after = 300ms; }

  CallerListener& make() {
    listener = std::make_unique<CallerListener>(
        spec, kRate,
        [this] {
          ++started;
          started_at.push_back(frame);
        },
        [this] {
          ++ended;
          ended_at.push_back(frame);
        });
    return *listener;
  }

  /// Hears `x` (internal rate) frame by frame; the leg carries nothing of its own.
  void hear(const std::vector<std::int16_t>& x, bool agent_audible = false,
            std::size_t waiting = 0) {
    for (std::size_t at = 0; at + kFrame <= x.size(); at += kFrame, ++frame) {
      last = listener->hear({}, {x.data() + at, kFrame}, agent_audible, far, waiting);
    }
  }

  PipelineSpec spec;
  FarEndPeaks far{kRate};
  std::unique_ptr<CallerListener> listener;
  int started = 0, ended = 0;
  std::size_t frame = 0;
  std::vector<std::size_t> started_at, ended_at;
  CallerListener::Frame last;
};

TEST(FarEndPeaks, ThePeakIsOfTheWindowBeforeTheBlockPlayingNow) {
  FarEndPeaks f(kRate);
  EXPECT_EQ(f.peak(0, 200ms), 0);  // nothing queued yet
  for (const int p : {100, 200, 300, 400, 500}) {
    std::vector<std::int16_t> block(160, 0);
    block[37] = static_cast<std::int16_t>(-p);  // the peak is of magnitudes
    f.queued(block);
  }
  EXPECT_EQ(f.peak(800, 200ms), 100);  // block 0 plays
  EXPECT_EQ(f.peak(480, 200ms), 300);  // block 2 plays
  EXPECT_EQ(f.peak(480, 10ms), 300);   // blocks 1 and 2
  EXPECT_EQ(f.peak(320, 10ms), 400);   // blocks 2 and 3
  EXPECT_EQ(f.peak(0, 200ms), 500);    // all played
  EXPECT_EQ(f.peak(0, 10ms), 500);
}

TEST(FarEndPeaks, BlocksAreWhole10msOfWhatWasQueuedWhateverThePieces) {
  FarEndPeaks f(kRate);
  f.queued(std::vector<std::int16_t>(100, 500));
  EXPECT_EQ(f.peak(0, 200ms), 0);  // no whole block yet
  f.queued(std::vector<std::int16_t>(100, 700));
  EXPECT_EQ(f.peak(0, 200ms), 700);  // block 0: 100 x 500 and 60 x 700
  f.queued(std::vector<std::int16_t>(120, 50));
  EXPECT_EQ(f.peak(160, 0ms), 700);  // block 1: 40 x 700 and 120 x 50
}

TEST_F(CallerListenerTest, SpeechStartsWithinTheVoiceAndEndsAfterTheEndpointingSilence) {
  make();
  // 0.5 s silence (frames 0-24), 1.5 s voice (25-99), 1.5 s silence (100-174).
  hear(utterance(kRate, 0.5, 1.5, 1.5));
  ASSERT_EQ(started, 1);
  ASSERT_EQ(ended, 1);
  // Confirmed after 120 ms of voice (and the VAD's few frames of warm-up).
  EXPECT_GE(started_at[0], 25u + 5u);
  EXPECT_LE(started_at[0], 25u + 20u);
  // 600 ms of silence after the voice, plus the VAD's hangover.
  EXPECT_GE(ended_at[0], 100u + 29u);
  EXPECT_LE(ended_at[0], 100u + 50u);
  EXPECT_FALSE(listener->in_speech());
}

TEST_F(CallerListenerTest, TheCallbacksRunInsideHear) {
  make();
  const auto x = utterance(kRate, 0.2, 1.0, 0);
  for (std::size_t at = 0; at + kFrame <= x.size(); at += kFrame) {
    const int before = started;
    listener->hear({}, {x.data() + at, kFrame}, false, far, 0);
    if (started != before) {
      EXPECT_TRUE(listener->in_speech());
      return;
    }
    EXPECT_FALSE(listener->in_speech());
  }
  FAIL() << "speech never started";
}

TEST_F(CallerListenerTest, SilenceIsHushedAndUnvoiced) {
  make();
  hear(silence(kRate, 0.2));
  EXPECT_FALSE(last.voiced);
  EXPECT_TRUE(last.hushed);
  EXPECT_EQ(started, 0);
  // A voice is neither, at least most of the time.
  int voiced = 0, hushed = 0;
  const auto v = voice(kRate, 1.0);
  for (std::size_t at = 0; at + kFrame <= v.size(); at += kFrame) {
    const auto f = listener->hear({}, {v.data() + at, kFrame}, false, far, 0);
    voiced += f.voiced;
    hushed += f.hushed;
  }
  EXPECT_GE(voiced, 35);  // of 50 frames
  EXPECT_LE(hushed, 5);
}

TEST_F(CallerListenerTest, TheEchoGateIgnoresTheAgentsVoiceComingBack) {
  make();
  const auto x = utterance(kRate, 0.2, 1.5, 0, 8000);
  ASSERT_LT(peak_of(x), 16000);  // below echo_ratio (0.5) x the agent's peak
  far.queued(std::vector<std::int16_t>(16000, 32000));
  hear(x, true, 0);
  EXPECT_EQ(started, 0);
  EXPECT_FALSE(last.voiced);
}

TEST_F(CallerListenerTest, TheEchoGatePassesACallerLouderThanTheAgent) {
  make();
  const auto x = utterance(kRate, 0.2, 1.5, 0, 8000);
  far.queued(std::vector<std::int16_t>(16000, 4000));
  hear(x, true, 0);
  EXPECT_EQ(started, 1);
}

TEST_F(CallerListenerTest, TheEchoGateIsOpenWhileTheAgentIsSilent) {
  make();
  far.queued(std::vector<std::int16_t>(16000, 32000));
  hear(utterance(kRate, 0.2, 1.5, 0, 8000), false, 0);
  EXPECT_EQ(started, 1);
}

TEST_F(CallerListenerTest, TheEchoGateComparesWithTheBlockPlayingNow) {
  make();
  // Loud agent audio already played, quiet audio playing now (16000 samples still queued).
  far.queued(std::vector<std::int16_t>(16000, 32000));
  far.queued(std::vector<std::int16_t>(16000, 1000));
  hear(utterance(kRate, 0.2, 1.5, 0, 8000), true, 0);  // everything played: the quiet part
  EXPECT_EQ(started, 1);

  make();
  started = 0;
  hear(utterance(kRate, 0.2, 1.5, 0, 8000), true, 32000);  // the loud part plays
  EXPECT_EQ(started, 0);
}

TEST_F(CallerListenerTest, BargeInIsDueAfterBargeInAfterOfVoiceOverTheAgent) {
  make();
  const auto x = utterance(kRate, 0.2, 2.0, 0);
  bool due = false;
  long before = -1;
  for (std::size_t at = 0; at + kFrame <= x.size(); at += kFrame) {
    before = listener->overlap_ms();
    listener->hear({}, {x.data() + at, kFrame}, true, far, 0);  // the agent is silent on the line
    if (!listener->in_speech()) {
      ASSERT_EQ(listener->overlap_ms(), 0);  // only voice within the caller's speech counts
    }
    ASSERT_EQ(listener->barge_in_due(), listener->overlap_ms() >= 300);
    if (listener->barge_in_due()) {
      due = true;
      break;
    }
  }
  ASSERT_TRUE(due);
  EXPECT_LT(before, 300);
  EXPECT_GE(listener->overlap_ms(), 300);
  EXPECT_LE(listener->overlap_ms(), 310);  // at most two 10 ms blocks per frame
  EXPECT_NE(listener->overlap_started(), CallerListener::Clock::time_point{});
  // The agent stops speaking: the overlap is over.
  const auto more = voice(kRate, 0.02);
  listener->hear({}, more, false, far, 0);
  EXPECT_EQ(listener->overlap_ms(), 0);
  EXPECT_FALSE(listener->barge_in_due());
}

TEST_F(CallerListenerTest, WithoutBargeInNothingIsEverDue) {
  spec.barge_in = false;
  spec.barge_in_words = 1;
  make();
  hear(utterance(kRate, 0.2, 1.5, 0), true);
  EXPECT_GE(listener->overlap_ms(), 300);  // the caller did speak over the agent
  EXPECT_FALSE(listener->barge_in_due());
  EXPECT_FALSE(listener->barge_in_words("stop stop stop"));
}

TEST_F(CallerListenerTest, SpeechThatBeganBeforeTheAgentSpokeIsNoOverlap) {
  make();
  hear(utterance(kRate, 0.2, 1.0, 0), false);
  ASSERT_TRUE(listener->in_speech());
  EXPECT_EQ(listener->overlap_ms(), 0);
  hear(silence(kRate, 0.4), true);  // the caller's endpointing silence while the agent speaks
  EXPECT_EQ(listener->overlap_ms(), 0);
  EXPECT_FALSE(listener->barge_in_due());
}

TEST_F(CallerListenerTest, BargeInWordsCountWordsOfTheInterimTranscript) {
  spec.barge_in_words = 3;
  make();
  EXPECT_FALSE(listener->barge_in_words(""));
  EXPECT_FALSE(listener->barge_in_words("book a"));
  EXPECT_TRUE(listener->barge_in_words("book a table"));
  EXPECT_TRUE(listener->barge_in_words("  book\ta\n table  now "));
  EXPECT_FALSE(listener->barge_in_words("   \t  "));
}

TEST_F(CallerListenerTest, BargeInWordsOffWhenZero) {
  spec.barge_in_words = 0;
  make();
  EXPECT_FALSE(listener->barge_in_words("one two three four five six"));
}

TEST_F(CallerListenerTest, ANarrowbandLegIsAnalysedAtTheLegsRate) {
  make();
  listener->use_leg_rate(8000);
  const auto leg = utterance(8000, 0.2, 1.5, 0);
  const std::vector<std::int16_t> internal(kFrame, 0);  // only the leg carries the voice
  for (std::size_t at = 0; at + 160 <= leg.size(); at += 160) {
    listener->hear({leg.data() + at, 160}, internal, false, far, 0);
  }
  EXPECT_EQ(started, 1);
}

TEST_F(CallerListenerTest, WithoutTheLegsRateTheInternalAudioIsAnalysed) {
  make();
  const auto leg = utterance(8000, 0.2, 1.5, 0);
  const std::vector<std::int16_t> internal(kFrame, 0);
  for (std::size_t at = 0; at + 160 <= leg.size(); at += 160) {
    listener->hear({leg.data() + at, 160}, internal, false, far, 0);
  }
  EXPECT_EQ(started, 0);
}

TEST_F(CallerListenerTest, AWidebandVadAnalysesTheInternalAudioEvenOnAnNarrowbandLeg) {
  spec.vad.narrowband = false;
  make();
  listener->use_leg_rate(8000);
  const auto leg = utterance(8000, 0.2, 1.5, 0);
  const std::vector<std::int16_t> internal(kFrame, 0);
  for (std::size_t at = 0; at + 160 <= leg.size(); at += 160) {
    listener->hear({leg.data() + at, 160}, internal, false, far, 0);
  }
  EXPECT_EQ(started, 0);
}

}  // namespace
}  // namespace voxbridge::pipeline
