#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "voxbridge/audio/g711.hpp"
#include "voxbridge/session/call_media.hpp"

namespace voxbridge::session {
namespace {

using namespace std::chrono_literals;
using audiosocket::Kind;

/// Keeps every call the media core makes to its agent.
class RecordingAgent : public agent::Agent {
 public:
  void on_start(agent::CallControl& c, const agent::CallInfo&) override { control = &c; }
  void on_audio(std::span<const std::int16_t> s) override {
    heard.insert(heard.end(), s.begin(), s.end());
  }
  void on_dtmf(char d) override { digits.push_back(d); }
  void on_tick() override { ++ticks; }
  void on_end(std::string_view r) override { ended = std::string(r); }
  agent::CallControl* control = nullptr;
  std::vector<std::int16_t> heard;
  std::string digits;
  int ticks = 0;
  std::string ended;
};

struct Harness {
  explicit Harness(MediaOptions o = {}) {
    auto a = std::make_unique<RecordingAgent>();
    agent = a.get();
    media = std::make_unique<CallMedia>(o, std::move(a));
    agent::CallInfo info;
    info.uuid = "uuid";
    info.peer = "peer";
    info.listener = "test";
    media->start(now, info);
  }
  /// Advances to the next deadline and returns the frame sent there.
  std::vector<std::uint8_t> tick() {
    now = media->next_deadline();
    auto m = media->on_tick(now);
    return {m.begin(), m.end()};
  }
  bool audio(Kind k, const std::vector<std::uint8_t>& payload) {
    std::string why;
    return media->on_audio(k, payload, why);
  }
  Clock::time_point now = Clock::time_point{} + 100s;
  RecordingAgent* agent;
  std::unique_ptr<CallMedia> media;
};

std::vector<std::uint8_t> slin_bytes(const std::vector<std::int16_t>& s) {
  std::vector<std::uint8_t> b;
  for (auto v : s) {
    b.push_back(static_cast<std::uint8_t>(static_cast<std::uint16_t>(v) & 0xFF));
    b.push_back(static_cast<std::uint8_t>(static_cast<std::uint16_t>(v) >> 8));
  }
  return b;
}

TEST(CallMedia, SendsSilenceFromTheFirstTickBeforeAnyAudio) {
  Harness h;
  const auto f = h.tick();
  ASSERT_EQ(f.size(), 3u + 320u);
  EXPECT_EQ(f[0], 0x10);
  EXPECT_EQ(f[1], 0x01);
  EXPECT_EQ(f[2], 0x40);
  for (std::size_t i = 3; i < f.size(); ++i) ASSERT_EQ(f[i], 0);
  EXPECT_EQ(h.agent->ticks, 1);
}

TEST(CallMedia, NoEarlySilenceWhenDisabled) {
  MediaOptions o;
  o.early_silence = false;
  Harness h(o);
  EXPECT_TRUE(h.tick().empty());
}

TEST(CallMedia, Slin16CallIsAnsweredIn0x12) {
  Harness h;
  EXPECT_EQ(h.media->caller_codec(), "");  // not known before the first audio
  ASSERT_TRUE(h.audio(Kind::slin16, slin_bytes(std::vector<std::int16_t>(320, 1000))));
  EXPECT_EQ(h.media->leg_codec(), LegCodec::slin);
  EXPECT_EQ(h.media->caller_codec(), "slin");
  EXPECT_EQ(h.media->reply_kind(), Kind::slin16);
  EXPECT_EQ(h.agent->heard.size(), 320u);  // 16 kHz in = internal rate: exact copy
  EXPECT_EQ(h.agent->heard[5], 1000);
  const auto f = h.tick();
  ASSERT_EQ(f.size(), 3u + 640u);
  EXPECT_EQ(f[0], 0x12);
}

TEST(CallMedia, UlawOnAnAutoListenerIsDecodedAndAnsweredInSlin8) {
  Harness h;
  std::vector<std::uint8_t> ulaw(160, audio::linear_to_ulaw(4000));
  ASSERT_TRUE(h.audio(Kind::slin8, ulaw));
  EXPECT_EQ(h.media->leg_codec(), LegCodec::ulaw);
  EXPECT_EQ(h.media->caller_codec(), "ulaw");
  EXPECT_EQ(h.media->reply_kind(), Kind::slin8);
  // 160 samples at 8 kHz are 320 at 16 kHz, less the resampler's start-up delay (trimmed once).
  ASSERT_GE(h.agent->heard.size(), 320u - 64u);
  ASSERT_LE(h.agent->heard.size(), 320u);
  // After the resampler settles the level is the decoded ulaw value.
  for (int i = 0; i < 5; ++i) h.audio(Kind::slin8, ulaw);
  EXPECT_NEAR(h.agent->heard.back(), audio::ulaw_to_linear(ulaw[0]), 40);
  const auto f = h.tick();
  ASSERT_EQ(f.size(), 3u + 320u);  // 160 samples of slin8, never ulaw bytes
  EXPECT_EQ(f[0], 0x10);
}

TEST(CallMedia, AlawListenerDecodesAlaw) {
  MediaOptions o;
  o.codec = CodecMode::alaw;
  Harness h(o);
  std::vector<std::uint8_t> alaw(160, audio::linear_to_alaw(-3000));
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(h.audio(Kind::slin8, alaw));
  EXPECT_EQ(h.media->leg_codec(), LegCodec::alaw);
  EXPECT_EQ(h.media->caller_codec(), "alaw");
  EXPECT_NEAR(h.agent->heard.back(), audio::alaw_to_linear(alaw[0]), 40);
}

TEST(CallMedia, AutoTreats320BytesAsSlin8) {
  Harness h;
  ASSERT_TRUE(h.audio(Kind::slin8, slin_bytes(std::vector<std::int16_t>(160, 500))));
  EXPECT_EQ(h.media->leg_codec(), LegCodec::slin);
}

TEST(CallMedia, AutoWarnsWhenTheFirstFrameFitsNoCandidate) {
  Harness h;
  ASSERT_TRUE(h.audio(Kind::slin8, std::vector<std::uint8_t>(200, 0)));  // e.g. Opus
  EXPECT_EQ(h.media->leg_codec(), LegCodec::slin);
  const std::string note = h.media->take_format_note();
  EXPECT_NE(note.find("200 bytes"), std::string::npos) << note;
  EXPECT_TRUE(h.media->take_format_note().empty());  // reported once
  Harness ok;
  ASSERT_TRUE(ok.audio(Kind::slin8, std::vector<std::uint8_t>(320, 0)));
  EXPECT_TRUE(ok.media->take_format_note().empty());
}

TEST(CallMedia, SlinListenerTrustsTheKindEvenFor160Bytes) {
  MediaOptions o;
  o.codec = CodecMode::slin;
  Harness h(o);
  ASSERT_TRUE(h.audio(Kind::slin8, std::vector<std::uint8_t>(160, 0)));
  EXPECT_EQ(h.media->leg_codec(), LegCodec::slin);
}

TEST(CallMedia, ThirtyMillisecondAndShortFramesWork) {
  Harness h;
  ASSERT_TRUE(h.audio(Kind::slin8, slin_bytes(std::vector<std::int16_t>(240, 100))));  // 30 ms
  ASSERT_TRUE(h.audio(Kind::slin8, slin_bytes(std::vector<std::int16_t>(112, 100))));  // 224 B tail
  EXPECT_NEAR(static_cast<double>(h.agent->heard.size()), (240.0 + 112.0) * 2 - 32, 32.0);
  EXPECT_EQ(h.media->stats().frames_in, 2u);
}

TEST(CallMedia, OddSlinPayloadIsCountedAndItsLastByteIgnored) {
  Harness h;
  ASSERT_TRUE(h.audio(Kind::slin16, std::vector<std::uint8_t>(641, 0)));
  EXPECT_EQ(h.media->stats().odd_payloads, 1u);
  EXPECT_EQ(h.agent->heard.size(), 320u);
}

TEST(CallMedia, DtmfReachesTheAgent) {
  Harness h;
  h.media->on_dtmf('1');
  h.media->on_dtmf('#');
  EXPECT_EQ(h.agent->digits, "1#");
}

TEST(CallMedia, AgentAudioIsPlayedOutAtTheLegRate) {
  Harness h;
  ASSERT_TRUE(h.audio(Kind::slin8, slin_bytes(std::vector<std::int16_t>(160, 0))));
  std::vector<std::int16_t> tone(16000);
  for (std::size_t i = 0; i < tone.size(); ++i) {
    tone[i] = static_cast<std::int16_t>(
        std::lround(8000 * std::sin(2 * std::numbers::pi * 500 * static_cast<double>(i) / 16000)));
  }
  h.agent->control->play(tone);
  double energy = 0;
  for (int i = 0; i < 20; ++i) {
    const auto f = h.tick();
    ASSERT_EQ(f.size(), 323u);
    ASSERT_EQ(f[0], 0x10);
    if (i < 5) continue;
    for (std::size_t k = 3; k < f.size(); k += 2) {
      const double v = static_cast<std::int16_t>(f[k] | f[k + 1] << 8);
      energy += v * v;
    }
  }
  const double rms = std::sqrt(energy / (15 * 160));
  EXPECT_NEAR(rms, 8000 / std::sqrt(2.0), 200);
}

TEST(CallMedia, HangupAfterPlayoutWaitsForTheQueueToDrain) {
  Harness h;
  h.agent->control->play(std::vector<std::int16_t>(640, 1));
  h.agent->control->hangup("bye", true);
  EXPECT_TRUE(h.media->hangup_requested());
  EXPECT_FALSE(h.media->hangup_due());
  h.tick();
  EXPECT_FALSE(h.media->hangup_due());
  h.tick();
  EXPECT_TRUE(h.media->hangup_due());
  EXPECT_EQ(h.media->hangup_reason(), "bye");
}

TEST(CallMedia, FlushSilencesTheNextFrame) {
  Harness h;
  ASSERT_TRUE(h.audio(Kind::slin16, slin_bytes(std::vector<std::int16_t>(320, 0))));
  h.agent->control->play(std::vector<std::int16_t>(16000, 3000));
  auto f = h.tick();
  EXPECT_NE(f[10], 0);
  h.agent->control->flush();
  f = h.tick();
  for (std::size_t i = 3; i < f.size(); ++i) ASSERT_EQ(f[i], 0) << i;
}

TEST(CallMedia, EndTellsTheAgentOnce) {
  Harness h;
  h.media->end("caller hung up");
  h.media->end("again");
  EXPECT_EQ(h.agent->ended, "caller hung up");
}

}  // namespace
}  // namespace voxbridge::session
