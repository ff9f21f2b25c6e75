#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "voxbridge/playout/playout.hpp"

namespace voxbridge::playout {
namespace {

using namespace std::chrono_literals;

/// A simulated clock: the test moves time; nothing sleeps.
struct FakeClock {
  Clock::time_point now = Clock::time_point{} + 1000s;
  void advance(Clock::duration d) { now += d; }
};

Playout::Options opts() {
  Playout::Options o;
  o.rate_hz = 16000;
  o.capacity = 1000ms;
  o.low_watermark = 100ms;
  o.high_watermark = 500ms;
  return o;
}

/// Runs a timer loop the way a session does: sleep until next_deadline (+ `lateness`), tick.
int frames_in(Playout& p, FakeClock& clk, Clock::duration span, Clock::duration lateness = 0ms) {
  std::vector<std::int16_t> out(p.frame_samples());
  const auto end = clk.now + span;
  int frames = 0;
  while (p.next_deadline() + lateness <= end) {
    clk.now = std::max(clk.now, p.next_deadline() + lateness);
    if (p.tick(clk.now, out)) ++frames;
  }
  clk.now = end;
  return frames;
}

TEST(Pacer, ExactlyFiftyFramesPerSimulatedSecond) {
  FakeClock clk;
  Playout p(opts());
  p.start(clk.now);
  EXPECT_EQ(frames_in(p, clk, 1s), 50);
  EXPECT_EQ(frames_in(p, clk, 10s), 500);
  EXPECT_EQ(p.pacer().late_ticks(), 0u);
}

TEST(Pacer, FrameNIsDueAtStartPlusNTimes20ms) {
  FakeClock clk;
  Pacer pacer;
  const auto t0 = clk.now;
  pacer.start(t0);
  for (int n = 1; n <= 100; ++n) {
    ASSERT_EQ(pacer.next_deadline(), t0 + n * 20ms);
    // The timer fires a little late each time (a busy thread); the deadlines do not drift.
    ASSERT_TRUE(pacer.on_timer(pacer.next_deadline() + 3ms));
  }
  EXPECT_EQ(pacer.frames_sent(), 100u);
}

TEST(Pacer, EarlyWakeupSendsNothing) {
  Pacer pacer;
  const Clock::time_point t0{};
  pacer.start(t0);
  EXPECT_FALSE(pacer.on_timer(t0 + 19ms));
  EXPECT_TRUE(pacer.on_timer(t0 + 20ms));
  EXPECT_FALSE(pacer.on_timer(t0 + 20ms));
}

TEST(Pacer, NoBurstAfterAStall) {
  FakeClock clk;
  Playout p(opts());
  p.start(clk.now);
  std::vector<std::int16_t> out(p.frame_samples());
  ASSERT_EQ(frames_in(p, clk, 100ms), 5);
  // The thread stalls for 200 ms (10 deadlines pass). On wake-up exactly one frame goes out.
  clk.advance(200ms);
  EXPECT_TRUE(p.tick(clk.now, out));
  EXPECT_FALSE(p.tick(clk.now, out));
  EXPECT_FALSE(p.tick(clk.now + 1ms, out));
  EXPECT_EQ(p.pacer().late_ticks(), 9u);
  // The next deadline stays on the original timeline: start + n * 20 ms.
  const auto since_start = p.next_deadline() - p.pacer().start_time();
  EXPECT_EQ(since_start % 20ms, 0ms);
  EXPECT_GT(p.next_deadline(), clk.now);
  EXPECT_LE(p.next_deadline() - clk.now, 20ms);
  // And from there it is 50 per second again.
  EXPECT_EQ(frames_in(p, clk, 1s), 50);
}

TEST(Playout, PlaysQueuedAudioInOrder) {
  FakeClock clk;
  Playout p(opts());
  p.start(clk.now);
  std::vector<std::int16_t> audio(640);
  std::iota(audio.begin(), audio.end(), std::int16_t{1});
  ASSERT_EQ(p.push(audio), 640u);
  std::vector<std::int16_t> out(320);
  clk.advance(20ms);
  ASSERT_TRUE(p.tick(clk.now, out));
  EXPECT_EQ(out.front(), 1);
  EXPECT_EQ(out.back(), 320);
  clk.advance(20ms);
  ASSERT_TRUE(p.tick(clk.now, out));
  EXPECT_EQ(out.front(), 321);
  EXPECT_EQ(out.back(), 640);
}

TEST(Playout, UnderrunInsertsSilenceWithoutShiftingTheTimeline) {
  FakeClock clk;
  Playout p(opts());
  p.start(clk.now);
  std::vector<std::int16_t> out(320, 99);
  std::vector<std::int16_t> tone(320 + 100, 500);
  p.push(tone);
  clk.advance(20ms);
  ASSERT_TRUE(p.tick(clk.now, out));
  EXPECT_EQ(out[0], 500);
  const auto deadline_before = p.next_deadline();
  clk.advance(20ms);
  ASSERT_TRUE(p.tick(clk.now, out));  // 100 samples of tone, then silence
  EXPECT_EQ(out[99], 500);
  EXPECT_EQ(out[100], 0);
  EXPECT_EQ(out[319], 0);
  // The next frame arrives late, after its tick: the hole is an underrun.
  p.push(std::vector<std::int16_t>(320, 600));
  EXPECT_EQ(p.underruns(), 1u);
  clk.advance(20ms);
  ASSERT_TRUE(p.tick(clk.now, out));
  EXPECT_EQ(out[0], 600);
  clk.advance(20ms);
  ASSERT_TRUE(p.tick(clk.now, out));  // nothing at all: a whole frame of silence
  for (auto s : out) ASSERT_EQ(s, 0);
  // The timeline never moved: still start + n * 20 ms.
  EXPECT_EQ(p.next_deadline(), deadline_before + 60ms);
}

TEST(Playout, TheEndOfAnUtteranceIsNotAnUnderrun) {
  FakeClock clk;
  Playout p(opts());
  p.start(clk.now);
  std::vector<std::int16_t> out(320);
  p.push(std::vector<std::int16_t>(3200, 100));  // 200 ms of speech
  EXPECT_EQ(frames_in(p, clk, 1s), 50);
  // A new utterance much later is a new start, not a hole.
  p.push(std::vector<std::int16_t>(640, 100));
  EXPECT_EQ(frames_in(p, clk, 1s), 50);
  EXPECT_EQ(p.underruns(), 0u);
}

TEST(Playout, FlushSilencesTheNextTick) {
  FakeClock clk;
  Playout p(opts());
  p.start(clk.now);
  std::vector<std::int16_t> speech(16000, 700);  // 1 s queued
  p.push(speech);
  std::vector<std::int16_t> out(320);
  clk.advance(20ms);
  ASSERT_TRUE(p.tick(clk.now, out));
  EXPECT_EQ(out[0], 700);
  clk.advance(5ms);  // barge-in 5 ms into the tick
  p.flush();
  EXPECT_EQ(p.queue().size(), 0u);
  clk.advance(15ms);
  ASSERT_TRUE(p.tick(clk.now, out));  // the very next frame is silence
  for (auto s : out) ASSERT_EQ(s, 0);
  EXPECT_EQ(p.flushes(), 1u);
}

TEST(PlayoutQueue, WatermarksAndCapacity) {
  PlayoutQueue q(1000, 200, 600);
  std::vector<std::int16_t> block(300, 1);
  EXPECT_TRUE(q.below_low_watermark());
  q.push(block);
  EXPECT_FALSE(q.below_low_watermark());
  EXPECT_FALSE(q.above_high_watermark());
  q.push(block);
  EXPECT_TRUE(q.above_high_watermark());
  q.push(block);
  EXPECT_EQ(q.push(block), 100u);  // only 100 free
  EXPECT_EQ(q.size(), 1000u);
  EXPECT_EQ(q.overflow_samples(), 200u);
}

TEST(PlayoutQueue, ASmallStandingQueueStaysAtTheFrontOfTheRing) {
  // An echo with one frame standing: push a frame, pop a frame, forever. The data must stay
  // in order and the ring must not walk (which would make all of it resident).
  PlayoutQueue q(32000, 0, 32000);
  std::vector<std::int16_t> frame(320), out(320);
  std::int16_t next_in = 0, next_out = 0;
  auto fill = [&] {
    for (auto& v : frame) v = next_in++;
  };
  fill();
  q.push(frame);
  for (int i = 0; i < 1000; ++i) {
    fill();
    ASSERT_EQ(q.push(frame), 320u);
    ASSERT_EQ(q.pop(out), 320u);
    for (auto v : out) ASSERT_EQ(v, next_out++);
    ASSERT_EQ(q.size(), 320u);
  }
}

TEST(PlayoutQueue, NothingIsResidentBeforeUseAndABurstGivesItsPagesBackWhenDrained) {
  // 2 s at 16 kHz: 64,000 bytes, 16 pages of 4 KiB.
  PlayoutQueue q(32000, 0, 32000);
  EXPECT_EQ(q.resident_bytes(), 0u);

  // A stall's backlog fills the ring; every page of it becomes resident.
  std::vector<std::int16_t> burst(32000);
  for (std::size_t i = 0; i < burst.size(); ++i) burst[i] = static_cast<std::int16_t>(i);
  ASSERT_EQ(q.push(burst), 32000u);
  EXPECT_EQ(q.resident_bytes(), 64000u / 4096 * 4096 + 4096);

  // Played out frame by frame, in order; once drained only the front 8 KiB stays resident.
  std::vector<std::int16_t> out(320);
  std::int16_t next = 0;
  for (int f = 0; f < 100; ++f) {
    ASSERT_EQ(q.pop(out), 320u);
    for (auto v : out) ASSERT_EQ(v, next++);
  }
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.resident_bytes(), 8192u);

  // The released pages work again (they read as zeros until written): a second burst round-trips.
  for (auto& v : burst) v = static_cast<std::int16_t>(-v);
  ASSERT_EQ(q.push(burst), 32000u);
  next = 0;
  for (int f = 0; f < 100; ++f) {
    ASSERT_EQ(q.pop(out), 320u);
    for (auto v : out) ASSERT_EQ(v, static_cast<std::int16_t>(-(next++)));
  }
  EXPECT_EQ(q.resident_bytes(), 8192u);
}

TEST(PlayoutQueue, ABargeInClearGivesTheQueuedPagesBack) {
  PlayoutQueue q(32000, 0, 32000);
  std::vector<std::int16_t> reply(24000, 1000);  // 1.5 s of a reply queued ahead of playout
  ASSERT_EQ(q.push(reply), 24000u);
  EXPECT_GE(q.resident_bytes(), 48000u);
  EXPECT_EQ(q.clear(), 24000u);
  EXPECT_EQ(q.resident_bytes(), 8192u);
  std::vector<std::int16_t> frame(320, 7), out(320);
  ASSERT_EQ(q.push(frame), 320u);
  ASSERT_EQ(q.pop(out), 320u);
  EXPECT_EQ(out, frame);
}

TEST(PlayoutQueue, AStandingQueueThatNeverDrainsKeepsItsAudio) {
  // After a stall an echo call holds a deep queue for the rest of the call: nothing may be
  // released under it, whichever way the ring has wrapped.
  PlayoutQueue q(16000, 0, 16000);
  std::vector<std::int16_t> in(320), out(320);
  std::int16_t next_in = 0, next_out = 0;
  for (int f = 0; f < 45; ++f) {  // 14,400 samples standing
    for (auto& v : in) v = next_in++;
    ASSERT_EQ(q.push(in), 320u);
  }
  for (int f = 0; f < 500; ++f) {  // 10 s of one in, one out: the ring wraps many times
    for (auto& v : in) v = next_in++;
    ASSERT_EQ(q.push(in), 320u);
    ASSERT_EQ(q.pop(out), 320u);
    for (auto v : out) ASSERT_EQ(v, next_out++);
  }
  EXPECT_EQ(q.size(), 14400u);
}

TEST(PlayoutQueue, WrapsAroundKeepingOrder) {
  PlayoutQueue q(10, 0, 10);
  std::vector<std::int16_t> a{1, 2, 3, 4, 5, 6, 7}, out(5);
  q.push(a);
  ASSERT_EQ(q.pop(out), 5u);  // 6, 7 left at positions 5..6
  const std::vector<std::int16_t> b{8, 9, 10, 11, 12, 13, 14};
  ASSERT_EQ(q.push(b), 7u);  // wraps
  std::vector<std::int16_t> all(9);
  ASSERT_EQ(q.pop(all), 9u);
  EXPECT_EQ(all, (std::vector<std::int16_t>{6, 7, 8, 9, 10, 11, 12, 13, 14}));
  EXPECT_EQ(q.push_silence(20), 10u);
  EXPECT_EQ(q.clear(), 10u);
}

}  // namespace
}  // namespace voxbridge::playout
