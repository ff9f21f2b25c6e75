// AsrFeed against fake ASR streams, frame by frame: the stream's config, the pre-roll first,
// exact message sizes per encoding, silence and the endpoint, the one retry of a broken stream
// with the utterance replayed, and events of streams the call no longer listens to.
#include "voxbridge/pipeline/asr_feed.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/fake_clients.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/audio/opus.hpp"
#include "voxbridge/metrics/metrics.hpp"

namespace voxbridge::pipeline {
namespace {

using namespace std::chrono_literals;
using providers::StreamStatus;
using testing::FakeCallControl;
using testing::FakeProviderClients;
using testing::ManualPoster;

constexpr int kRate = 16000;

/// A signal whose every sample tells where it came from (never 0).
std::vector<std::int16_t> signal(std::size_t n) {
  std::vector<std::int16_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int16_t>(1 + i % 20000);
  return v;
}

std::vector<std::int16_t> slice(const std::vector<std::int16_t>& v, std::size_t from,
                                std::size_t to) {
  return {v.begin() + static_cast<std::ptrdiff_t>(from),
          v.begin() + static_cast<std::ptrdiff_t>(to)};
}

std::vector<std::size_t> sizes(const testing::FakeAsrStream& s) {
  std::vector<std::size_t> out;
  for (const auto& m : s.audio()) out.push_back(m.size());
  return out;
}

struct AsrFeedTest : ::testing::Test {
  AsrFeedTest() {
    spec.asr.name = "asr-test";
    spec.asr.address = "127.0.0.1:3";
    spec.asr_rate_hz = 16000;
    spec.asr_chunk = 60ms;
    spec.pre_roll = 300ms;
    spec.language = "en-GB";
    spec.phrase_hints = {"Ada", "table for two"};
    spec.max_utterance = 45000ms;
    spec.retry_backoff = 200ms;  // 10 ticks
    call.set_call_id("call-3");
    call.set_called_number("4000");
  }

  void start(int caller_rate = 0) {
    control.set_caller_rate(caller_rate);
    feed = std::make_unique<AsrFeed>(spec, kRate, 3, clients, call);
    feed->start(control, "call-3",
                AsrFeed::Events{
                    [this](const providers::AsrResult& r) { results.push_back(r.transcript); },
                    [this](std::string text) { utterances.push_back(std::move(text)); },
                    [this](std::string why) { failures.push_back(std::move(why)); },
                },
                &counters);
    if (caller_rate > 0) feed->use_leg_rate(caller_rate);
  }

  /// Frames [from, to) of `sig` (20 ms each at `rate`) as the leg carries them (`leg`) or at
  /// the internal rate.
  void frames(const std::vector<std::int16_t>& sig, std::size_t from, std::size_t to,
              bool silence = false, int rate = kRate, bool leg = false) {
    const auto n = static_cast<std::size_t>(rate / 50);
    const std::vector<std::int16_t> internal(kRate / 50, 1);
    for (std::size_t f = from; f < to; ++f) {
      const std::span<const std::int16_t> piece{sig.data() + f * n, n};
      if (leg) {
        feed->audio(piece, internal, silence);
      } else {
        feed->audio({}, piece, silence);
      }
    }
  }

  PipelineSpec spec;
  common::v1::CallInfo call;
  ManualPoster poster;
  FakeCallControl control{poster};
  std::shared_ptr<FakeProviderClients> clients = std::make_shared<FakeProviderClients>();
  metrics::ProviderCounters counters;
  std::unique_ptr<AsrFeed> feed;
  std::vector<std::string> results, utterances, failures;
};

TEST_F(AsrFeedTest, TheStreamIsConfiguredForTheUtterance) {
  start();
  EXPECT_FALSE(feed->hearing());
  feed->open();
  ASSERT_EQ(clients->asr().size(), 1u);
  EXPECT_TRUE(feed->hearing());
  const auto& s = clients->last_asr();
  EXPECT_EQ(s.target().name, "asr-test");
  EXPECT_EQ(s.target().address, "127.0.0.1:3");
  EXPECT_EQ(s.target().deadline, 45000ms);  // the provider sets none: max_utterance
  EXPECT_EQ(s.max_queued(), 50u);
  const auto& c = s.config();
  EXPECT_EQ(c.format().encoding(), common::v1::LINEAR16);
  EXPECT_EQ(c.format().sample_rate_hz(), 16000u);
  EXPECT_EQ(c.language(), "en-GB");
  EXPECT_TRUE(c.interim_results());
  EXPECT_TRUE(c.single_utterance());
  ASSERT_EQ(c.phrase_hints_size(), 2);
  EXPECT_EQ(c.phrase_hints(0), "Ada");
  EXPECT_EQ(c.phrase_hints(1), "table for two");
  EXPECT_EQ(c.call().call_id(), "call-3");
  EXPECT_EQ(c.call().called_number(), "4000");
  EXPECT_EQ(counters.streams.value(), 1u);
  feed->open();  // one stream per utterance
  EXPECT_EQ(clients->asr().size(), 1u);
}

TEST_F(AsrFeedTest, TheRateIsTheSpecsButNeverAboveTheCallersLeg) {
  start(8000);
  feed->open();
  EXPECT_EQ(clients->last_asr().config().format().sample_rate_hz(), 8000u);
}

TEST_F(AsrFeedTest, ThePreRollGoesFirstThenLiveAudioInChunks) {
  start();
  const auto sig = signal(16000);
  frames(sig, 0, 25);  // 500 ms before the speech was confirmed
  EXPECT_TRUE(clients->asr().empty());
  feed->open();
  auto& s = clients->last_asr();
  // The last 300 ms (4800 samples) as five messages of 60 ms.
  EXPECT_EQ(sizes(s), (std::vector<std::size_t>(5, 1920)));
  EXPECT_EQ(s.pcm(), slice(sig, 3200, 8000));
  frames(sig, 25, 27);
  EXPECT_EQ(s.audio().size(), 5u);  // 40 ms waits for a whole message
  frames(sig, 27, 28);
  EXPECT_EQ(sizes(s), (std::vector<std::size_t>(6, 1920)));
  EXPECT_EQ(s.pcm(), slice(sig, 3200, 8960));
}

TEST_F(AsrFeedTest, SilenceGoesOutAtOnce) {
  start();
  const auto sig = signal(16000);
  feed->open();
  auto& s = clients->last_asr();
  frames(sig, 0, 1);
  EXPECT_TRUE(s.audio().empty());
  frames(sig, 1, 2, true);
  EXPECT_EQ(sizes(s), (std::vector<std::size_t>{1280}));
  frames(sig, 2, 3, true);
  EXPECT_EQ(sizes(s), (std::vector<std::size_t>{1280, 640}));
  EXPECT_EQ(s.pcm(), slice(sig, 0, 960));
}

TEST_F(AsrFeedTest, TheEndpointSendsTheRestAndFinishesAndTheFinalsMakeTheUtterance) {
  start();
  const auto sig = signal(16000);
  feed->open();
  auto& s = clients->last_asr();
  frames(sig, 0, 4);
  EXPECT_EQ(feed->speech_end(), AsrFeed::Clock::time_point{});
  feed->speech_ended();
  EXPECT_NE(feed->speech_end(), AsrFeed::Clock::time_point{});
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(sizes(s), (std::vector<std::size_t>{1920, 640}));
  EXPECT_EQ(s.pcm(), slice(sig, 0, 1280));
  frames(sig, 4, 10);  // after the endpoint: not this stream's
  EXPECT_EQ(s.audio().size(), 2u);
  EXPECT_TRUE(feed->hearing());  // until the recognizer's last word

  s.result("book a", false);
  s.result("book a", true);
  s.result("table", true);
  s.close();
  EXPECT_TRUE(results.empty());  // events come through the call's poster
  poster.run();
  EXPECT_EQ(results, (std::vector<std::string>{"book a", "book a", "table"}));
  EXPECT_EQ(utterances, (std::vector<std::string>{"book a table"}));
  EXPECT_FALSE(feed->hearing());
  EXPECT_TRUE(failures.empty());
}

TEST_F(AsrFeedTest, TheRecognizersEndOfUtteranceEndsTheStream) {
  start();
  const auto sig = signal(16000);
  feed->open();
  frames(sig, 0, 2);
  auto& s = clients->last_asr();
  s.end_of_utterance(40);
  EXPECT_FALSE(s.finished());
  poster.run();
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(s.pcm(), slice(sig, 0, 640));
  EXPECT_NE(feed->speech_end(), AsrFeed::Clock::time_point{});
}

TEST_F(AsrFeedTest, AnEmptyUtteranceIsDeliveredEmpty) {
  start();
  feed->open();
  feed->speech_ended();
  clients->last_asr().close();
  poster.run();
  EXPECT_EQ(utterances, (std::vector<std::string>{""}));
}

TEST_F(AsrFeedTest, ANarrowbandLegIsSentAsTheLegCarriesIt) {
  start(8000);
  const auto leg = signal(8000);
  frames(leg, 0, 25, false, 8000, true);
  feed->open();
  auto& s = clients->last_asr();
  // 300 ms at 8 kHz: five messages of 480 samples, the leg's own samples.
  EXPECT_EQ(sizes(s), (std::vector<std::size_t>(5, 960)));
  EXPECT_EQ(s.pcm(), slice(leg, 1600, 4000));
}

TEST_F(AsrFeedTest, MulawIsOneByteASample) {
  spec.asr_encoding = AsrEncoding::mulaw;
  start(8000);
  const auto leg = signal(8000);
  feed->open();
  auto& s = clients->last_asr();
  EXPECT_EQ(s.config().format().encoding(), common::v1::MULAW);
  frames(leg, 0, 3, false, 8000, true);
  frames(leg, 3, 4, true, 8000, true);
  ASSERT_EQ(sizes(s), (std::vector<std::size_t>{480, 160}));
  std::vector<std::uint8_t> expected(640);
  audio::ulaw_encode(slice(leg, 0, 640), expected);
  std::vector<std::uint8_t> got = s.audio()[0];
  got.insert(got.end(), s.audio()[1].begin(), s.audio()[1].end());
  EXPECT_EQ(got, expected);
}

TEST_F(AsrFeedTest, OpusIsOneWholePacketPerMessageAndSilenceWaitsForIt) {
  spec.asr_encoding = AsrEncoding::opus;
  start();
  const auto sig = signal(16000);
  feed->open();
  auto& s = clients->last_asr();
  EXPECT_EQ(s.config().format().encoding(), common::v1::OPUS);
  frames(sig, 0, 3);
  ASSERT_EQ(s.audio().size(), 1u);
  frames(sig, 3, 4, true);  // silence: an Opus packet is a whole frame, it waits
  EXPECT_EQ(s.audio().size(), 1u);
  feed->speech_ended();  // the last part is padded to a whole packet
  ASSERT_EQ(s.audio().size(), 2u);
  audio::OpusDecoderStream dec(16000);
  for (const auto& packet : s.audio()) {
    std::vector<std::int16_t> pcm;
    ASSERT_TRUE(dec.decode(packet, pcm));
    EXPECT_EQ(pcm.size(), 960u);  // 60 ms
  }
}

TEST_F(AsrFeedTest, AStreamBrokenMidUtteranceIsRetriedWithTheWholeUtterance) {
  start();
  const auto sig = signal(16000);
  frames(sig, 0, 10);  // 200 ms of pre-roll
  feed->open();
  frames(sig, 10, 15);
  auto& s1 = clients->last_asr();
  EXPECT_EQ(s1.pcm(), slice(sig, 0, 4800));
  s1.close({StreamStatus::kUnavailable, "recognizer restarted"});
  poster.run();
  EXPECT_TRUE(failures.empty());
  EXPECT_TRUE(utterances.empty());
  EXPECT_TRUE(feed->hearing());  // about to be reopened
  EXPECT_EQ(counters.errors.value(), 1u);
  for (int k = 1; k <= 9; ++k) {
    frames(sig, 14 + static_cast<std::size_t>(k), 15 + static_cast<std::size_t>(k));
    feed->tick();
  }
  EXPECT_EQ(clients->asr().size(), 1u);  // 180 ms of backoff
  feed->tick();
  ASSERT_EQ(clients->asr().size(), 2u);
  auto& s2 = clients->last_asr();
  // The utterance from its start, 480 ms (7680 samples): 8 whole messages now, the rest with
  // the live audio that follows.
  EXPECT_EQ(s2.max_queued(), 50u + 7680u / 960u + 1u);
  EXPECT_EQ(sizes(s2), (std::vector<std::size_t>(8, 1920)));
  frames(sig, 24, 30);
  feed->speech_ended();
  EXPECT_TRUE(s2.finished());
  EXPECT_EQ(s2.pcm(), slice(sig, 0, 9600));  // nothing the caller said is lost
  s2.result("hello there", true);
  s2.close();
  poster.run();
  EXPECT_EQ(utterances, (std::vector<std::string>{"hello there"}));
  EXPECT_TRUE(failures.empty());
  EXPECT_EQ(counters.streams.value(), 2u);
}

TEST_F(AsrFeedTest, AnUtteranceThatEndsDuringTheBackoffIsSentAndFinishedAtOnce) {
  start();
  const auto sig = signal(16000);
  feed->open();
  frames(sig, 0, 4);
  clients->last_asr().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  frames(sig, 4, 6);
  feed->speech_ended();
  frames(sig, 6, 8);  // after the endpoint: not the utterance's
  for (int k = 0; k < 10; ++k) feed->tick();
  ASSERT_EQ(clients->asr().size(), 2u);
  auto& s2 = clients->last_asr();
  EXPECT_TRUE(s2.finished());
  EXPECT_EQ(s2.pcm(), slice(sig, 0, 1920));
}

TEST_F(AsrFeedTest, AStreamBrokenAfterTheEndpointWithoutAFinalIsRetriedAndFinished) {
  start();
  const auto sig = signal(16000);
  feed->open();
  frames(sig, 0, 3);
  feed->speech_ended();
  clients->last_asr().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  for (int k = 0; k < 10; ++k) feed->tick();
  ASSERT_EQ(clients->asr().size(), 2u);
  EXPECT_TRUE(clients->last_asr().finished());
  EXPECT_EQ(clients->last_asr().pcm(), slice(sig, 0, 960));
}

TEST_F(AsrFeedTest, AStreamBrokenAfterAFinalKeepsWhatWasHeard) {
  start();
  feed->open();
  feed->speech_ended();
  clients->last_asr().result("yes", true);
  clients->last_asr().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  EXPECT_EQ(utterances, (std::vector<std::string>{"yes"}));
  for (int k = 0; k < 20; ++k) feed->tick();
  EXPECT_EQ(clients->asr().size(), 1u);
  EXPECT_EQ(counters.errors.value(), 1u);
}

TEST_F(AsrFeedTest, TwoFailuresInARowFailTheRecognizer) {
  start();
  feed->open();
  clients->last_asr().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  for (int k = 0; k < 10; ++k) feed->tick();
  ASSERT_EQ(clients->asr().size(), 2u);
  clients->last_asr().close({StreamStatus::kDeadlineExceeded, "still down"});
  poster.run();
  EXPECT_EQ(failures, (std::vector<std::string>{"ASR failed twice: still down"}));
  EXPECT_FALSE(feed->hearing());
  for (int k = 0; k < 20; ++k) feed->tick();
  EXPECT_EQ(clients->asr().size(), 2u);
  EXPECT_EQ(counters.errors.value(), 2u);
}

TEST_F(AsrFeedTest, AGoodStreamBetweenTwoFailuresResetsTheCount) {
  start();
  feed->open();
  clients->last_asr().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  for (int k = 0; k < 10; ++k) feed->tick();
  feed->speech_ended();
  clients->last_asr().close();
  poster.run();
  feed->open();
  ASSERT_EQ(clients->asr().size(), 3u);
  clients->last_asr().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  EXPECT_TRUE(failures.empty());
  for (int k = 0; k < 10; ++k) feed->tick();
  EXPECT_EQ(clients->asr().size(), 4u);
}

TEST_F(AsrFeedTest, AnUtteranceLongerThanTheReplayIsRetriedFromTheBreak) {
  spec.asr_replay = 200ms;  // 3200 samples: the 300 ms pre-roll alone is longer
  start();
  const auto sig = signal(16000);
  frames(sig, 0, 15);
  feed->open();
  frames(sig, 15, 18);
  clients->last_asr().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  frames(sig, 18, 21);  // 60 ms during the backoff
  for (int k = 0; k < 10; ++k) feed->tick();
  ASSERT_EQ(clients->asr().size(), 2u);
  auto& s2 = clients->last_asr();
  EXPECT_EQ(s2.pcm(), slice(sig, 5760, 6720));  // only what followed the break
  frames(sig, 21, 22);
  feed->speech_ended();
  EXPECT_EQ(s2.pcm(), slice(sig, 5760, 7040));
}

TEST_F(AsrFeedTest, EventsOfACancelledStreamAreIgnored) {
  start();
  feed->open();
  auto& s = clients->last_asr();
  s.result("late", true);  // already on its way
  feed->cancel();
  EXPECT_TRUE(s.cancelled());
  EXPECT_FALSE(feed->hearing());
  poster.run();
  EXPECT_TRUE(results.empty());
  EXPECT_TRUE(utterances.empty());
  EXPECT_TRUE(failures.empty());
  EXPECT_EQ(counters.errors.value(), 0u);
  for (int k = 0; k < 20; ++k) feed->tick();
  EXPECT_EQ(clients->asr().size(), 1u);
}

TEST_F(AsrFeedTest, CancelAlsoDropsAPendingRetry) {
  start();
  feed->open();
  clients->last_asr().close({StreamStatus::kUnavailable, "down"});
  poster.run();
  feed->cancel();
  EXPECT_FALSE(feed->hearing());
  for (int k = 0; k < 20; ++k) feed->tick();
  EXPECT_EQ(clients->asr().size(), 1u);
}

TEST_F(AsrFeedTest, AfterStopNothingIsDelivered) {
  start();
  feed->open();
  auto& s = clients->last_asr();
  s.result("words", true);
  s.close();
  feed->stop();
  poster.run();
  EXPECT_TRUE(results.empty());
  EXPECT_TRUE(utterances.empty());
}

TEST_F(AsrFeedTest, AStreamThatCannotBeSetUpFails) {
  start();
  clients->fail_next_open("cannot read CA file");
  feed->open();
  poster.run();
  EXPECT_EQ(failures, (std::vector<std::string>{"ASR: cannot read CA file"}));
  EXPECT_FALSE(feed->hearing());
}

TEST_F(AsrFeedTest, MessagesASlowRecognizerRefusedAreCounted) {
  start();
  const auto sig = signal(16000);
  feed->open();
  clients->last_asr().refuse_audio(true);
  frames(sig, 0, 6);
  EXPECT_EQ(feed->dropped(), 2u);
  feed->speech_ended();
  clients->last_asr().close();
  poster.run();
  EXPECT_EQ(feed->dropped(), 2u);  // kept after the stream is gone
}

}  // namespace
}  // namespace voxbridge::pipeline
