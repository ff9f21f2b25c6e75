#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/audio/wav.hpp"

namespace voxbridge::agent {
namespace {

/// Records what an agent does to its call.
class FakeControl : public CallControl {
 public:
  std::size_t play(std::span<const std::int16_t> s) override {
    const std::size_t n = std::min(s.size(), capacity - queued.size());
    queued.insert(queued.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }
  void flush() override {
    queued.clear();
    ++flushes;
  }
  void hangup(std::string_view reason, bool after_playout) override {
    hangup_reason = reason;
    hangup_after = after_playout;
  }
  int internal_rate_hz() const override { return 16000; }
  std::size_t queued_samples() const override { return queued.size(); }
  bool playout_full() const override { return queued.size() >= high; }
  /// What a pacer tick would take.
  void consume(std::size_t n) {
    queued.erase(queued.begin(),
                 queued.begin() + static_cast<std::ptrdiff_t>(std::min(n, queued.size())));
  }

  std::vector<std::int16_t> queued;
  std::size_t capacity = 32000;
  std::size_t high = 16000;
  int flushes = 0;
  std::string hangup_reason;
  bool hangup_after = false;
};

TEST(EchoAgent, ReturnsTheCallersAudio) {
  AgentFactory f(AgentSpec{}, 16000, 3);
  auto a = f.create();
  FakeControl c;
  a->on_start(c, {});
  std::vector<std::int16_t> frame(320);
  for (std::size_t i = 0; i < frame.size(); ++i) frame[i] = static_cast<std::int16_t>(i);
  a->on_audio(frame);
  EXPECT_EQ(c.queued, frame);
}

TEST(EchoAgent, DelayQueuesSilenceFirst) {
  AgentSpec s;
  s.echo_delay = std::chrono::milliseconds(100);
  AgentFactory f(s, 16000, 3);
  auto a = f.create();
  FakeControl c;
  a->on_start(c, {});
  std::vector<std::int16_t> frame(320, 42);
  a->on_audio(frame);
  ASSERT_EQ(c.queued.size(), 1600u + 320u);
  EXPECT_EQ(c.queued[1599], 0);
  EXPECT_EQ(c.queued[1600], 42);
}

TEST(EchoAgent, HangupDigitFlushesAndHangsUpAtOnce) {
  AgentFactory f(AgentSpec{}, 16000, 3);
  auto a = f.create();
  FakeControl c;
  a->on_start(c, {});
  a->on_audio(std::vector<std::int16_t>(320, 1));
  a->on_dtmf('5');
  EXPECT_TRUE(c.hangup_reason.empty());
  a->on_dtmf('#');
  EXPECT_EQ(c.hangup_reason, "hangup digit pressed");
  EXPECT_FALSE(c.hangup_after);
  EXPECT_TRUE(c.queued.empty());
  a->on_audio(std::vector<std::int16_t>(320, 1));  // nothing echoed after the hangup
  EXPECT_TRUE(c.queued.empty());
}

TEST(EchoAgent, TrimsAStandingBacklogButKeepsJitter) {
  AgentSpec s;
  s.echo_trim_after = std::chrono::milliseconds(200);  // 10 frames
  AgentFactory f(s, 16000, 3);
  auto a = f.create();
  FakeControl c;
  a->on_start(c, {});
  std::vector<std::int16_t> frame(320, 7);
  // A stall leaves one extra frame standing: two frames arrive before the next tick.
  a->on_audio(frame);
  a->on_audio(frame);
  std::size_t max_level = 0;
  for (int i = 0; i < 30; ++i) {
    c.consume(320);  // tick
    a->on_tick();
    a->on_audio(frame);
    max_level = std::max(max_level, c.queued.size());
  }
  EXPECT_EQ(c.queued.size(), 320u);  // back to one frame of latency
  // Jitter (two frames in one tick, none in the next) is never trimmed: everything is played.
  FakeControl j;
  auto b = f.create();
  b->on_start(j, {});
  std::size_t sent = 0, played = 0;
  for (int i = 0; i < 100; ++i) {
    if (i % 2 == 0) {
      b->on_audio(frame);
      b->on_audio(frame);
      sent += 640;
    }
    played += std::min<std::size_t>(320, j.queued.size());
    j.consume(320);
    b->on_tick();
  }
  EXPECT_EQ(played + j.queued.size(), sent);
  EXPECT_LE(max_level, 640u);
}

TEST(EchoAgent, AFrameThatMissedItsTickIsDroppedSoTheEchoStaysOnTime) {
  AgentSpec spec;
  spec.echo_drop_late = true;
  AgentFactory f(spec, 16000, 3);
  auto a = f.create();
  FakeControl c;
  a->on_start(c, {});
  auto frame = [](std::int16_t v) { return std::vector<std::int16_t>(320, v); };
  std::vector<std::int16_t> played;
  auto tick = [&] {
    played.push_back(c.queued.empty() ? std::int16_t{0} : c.queued.front());
    c.consume(320);
    a->on_tick();
  };
  for (std::int16_t v = 1; v <= 5; ++v) {
    a->on_audio(frame(v));
    tick();
  }
  tick();                 // frame 6 is late: this tick plays silence
  a->on_audio(frame(6));  // ... and arrives with frame 7
  a->on_audio(frame(7));
  tick();
  for (std::int16_t v = 8; v <= 10; ++v) {
    a->on_audio(frame(v));
    tick();
  }
  // Frame 6 played late, 7 was dropped, and from 8 on every frame leaves on the tick it
  // arrived on again, nothing standing.
  EXPECT_EQ(played, (std::vector<std::int16_t>{1, 2, 3, 4, 5, 0, 6, 8, 9, 10}));
  EXPECT_TRUE(c.queued.empty());

  // Off (the default), the late frame pushes everything one tick back.
  AgentSpec keep;
  keep.echo_drop_late = false;
  AgentFactory g(keep, 16000, 3);
  auto b = g.create();
  FakeControl d;
  b->on_start(d, {});
  for (std::int16_t v = 1; v <= 3; ++v) {
    b->on_audio(frame(v));
    d.consume(320);
    b->on_tick();
  }
  d.consume(320);
  b->on_tick();
  b->on_audio(frame(4));
  b->on_audio(frame(5));
  d.consume(320);
  b->on_tick();
  EXPECT_EQ(d.queued.size(), 320u);  // frame 5 stands
}

TEST(EchoAgent, APauseOfTheCallerIsNotALateFrame) {
  AgentSpec spec;
  spec.echo_drop_late = true;
  AgentFactory f(spec, 16000, 3);
  auto a = f.create();
  FakeControl c;
  a->on_start(c, {});
  std::size_t sent = 0, played = 0;
  auto tick = [&] {
    played += std::min<std::size_t>(320, c.queued.size());
    c.consume(320);
    a->on_tick();
  };
  const std::vector<std::int16_t> frame(320, 9);
  for (int i = 0; i < 5; ++i) {
    a->on_audio(frame);
    sent += 320;
    tick();
  }
  for (int i = 0; i < 75; ++i) tick();  // Asterisk sends nothing during SendDTMF
  for (int i = 0; i < 5; ++i) {         // then one frame a tick again
    a->on_audio(frame);
    sent += 320;
    tick();
  }
  EXPECT_EQ(played, sent);
}

TEST(PlaybackAgent, PlaysATonePromptThenHangsUp) {
  AgentSpec s;
  s.type = AgentSpec::Type::playback;
  s.tone_hz = 1000;
  s.tone_duration = std::chrono::milliseconds(100);
  s.then = AgentSpec::Then::hangup;
  AgentFactory f(s, 16000, 3);
  auto a = f.create();
  FakeControl c;
  a->on_start(c, {});
  ASSERT_EQ(c.queued.size(), 1600u);
  EXPECT_EQ(c.queued[0], 0);  // fades in: no click
  // A 1 kHz tone at 16 kHz repeats every 16 samples.
  EXPECT_EQ(c.queued[800], c.queued[816]);
  EXPECT_NEAR(c.queued[804], 8000, 1);  // peak
  EXPECT_EQ(c.hangup_reason, "playback finished");
  EXPECT_TRUE(c.hangup_after);
}

TEST(PlaybackAgent, FeedsALongPromptAsTheQueueDrains) {
  AgentSpec s;
  s.type = AgentSpec::Type::playback;
  s.tone_duration = std::chrono::milliseconds(3000);  // 48000 samples, more than the queue takes
  s.then = AgentSpec::Then::silence;
  AgentFactory f(s, 16000, 3);
  auto a = f.create();
  FakeControl c;
  a->on_start(c, {});
  EXPECT_GE(c.queued.size(), c.high);
  EXPECT_LT(c.queued.size(), 48000u);
  std::size_t played = 0;
  for (int tick = 0; tick < 200; ++tick) {
    played += std::min<std::size_t>(320, c.queued.size());
    c.consume(320);
    a->on_tick();
  }
  EXPECT_EQ(played + c.queued.size(), 48000u);
  EXPECT_TRUE(c.hangup_reason.empty());
}

TEST(PlaybackAgent, ResamplesAWavPromptToTheInternalRate) {
  const auto path = std::filesystem::temp_directory_path() / "vb_prompt_8k.wav";
  std::string err;
  ASSERT_TRUE(audio::write_wav(path, 8000, std::vector<std::int16_t>(8000, 1000), err));
  AgentSpec s;
  s.type = AgentSpec::Type::playback;
  s.file = path.string();
  s.then = AgentSpec::Then::silence;
  AgentFactory f(s, 16000, 3);
  auto a = f.create();
  FakeControl c;
  c.high = 100000;
  c.capacity = 100000;
  a->on_start(c, {});
  // The prompt plus the resampler's flushed tail (10 ms of silence pushed through the filter).
  EXPECT_GE(c.queued.size(), 16000u);
  EXPECT_LE(c.queued.size(), 16000u + 160u);
  EXPECT_NEAR(c.queued[8000], 1000, 5);
  std::filesystem::remove(path);
}

TEST(AgentFactory, NamesTheFileWhenAPromptIsMissing) {
  AgentSpec s;
  s.name = "greeter";
  s.type = AgentSpec::Type::playback;
  s.file = "/nonexistent/hello.wav";
  try {
    AgentFactory f(s, 16000, 3);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("greeter"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/hello.wav"), std::string::npos);
  }
}

}  // namespace
}  // namespace voxbridge::agent
