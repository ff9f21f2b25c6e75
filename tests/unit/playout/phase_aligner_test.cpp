#include "voxbridge/playout/phase_aligner.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace voxbridge::playout {
namespace {

using namespace std::chrono_literals;
using us = std::chrono::microseconds;

/// The figures below were worked out for a 2 ms margin (growing to 8 ms).
PhaseAligner::Options two_ms() {
  PhaseAligner::Options o;
  o.margin = 2ms;
  o.max_margin = 8ms;
  return o;
}

/// A call on 20 ms ticks whose caller's newest frame arrives `lag` before the tick as it was
/// when the call started; what the aligner moves is applied to the following ticks, as the
/// session does.
struct Call {
  PhaseAligner a;
  Clock::time_point t = Clock::time_point{} + 1h;
  Clock::duration moved{};                ///< the timeline's total move so far
  std::vector<Clock::duration> slices{};  ///< every non-zero move, in order

  explicit Call(PhaseAligner::Options o = two_ms()) : a(o) {}
  /// `lag`: how long before the unmoved tick the caller's newest frame arrived.
  void run(int ticks, Clock::duration lag, int frames = 1, bool odd = false) {
    for (int i = 0; i < ticks; ++i) {
      t += 20ms;
      const Clock::time_point tick = t + moved;
      const Clock::duration m = a.on_tick(tick, frames, odd, t - lag);
      if (m != Clock::duration::zero()) slices.push_back(m);
      moved += m;
    }
  }
  /// The lag the caller's frames now see.
  Clock::duration lag_now(Clock::duration lag) const { return lag + moved; }
  bool slewed_gently() const {
    for (const auto s : slices) {
      if (s > 1ms || s < -1ms) return false;
    }
    return true;
  }
};

TEST(PhaseAligner, SlewsTheTickToTheMarginAfterTheCallersFramesOnceSettled) {
  Call c;
  c.run(24, 15ms);
  EXPECT_TRUE(c.slices.empty());  // still settling
  c.run(1, 15ms);
  EXPECT_EQ(c.moved, -1ms);  // the first slice of the correction
  c.run(20, 15ms);
  EXPECT_EQ(c.moved, -13ms);  // 15 ms of waiting becomes the 2 ms margin, 1 ms a tick
  EXPECT_EQ(c.slices.size(), 13u);
  EXPECT_TRUE(c.slewed_gently());
  EXPECT_EQ(c.lag_now(15ms), 2ms);
  // Aligned, it stays there.
  c.run(500, 15ms);
  EXPECT_EQ(c.moved, -13ms);
  EXPECT_EQ(c.a.moves(), 1u);
  EXPECT_TRUE(c.a.active());
}

TEST(PhaseAligner, TheLatestArrivalDecidesAndMovesAreWholeGridSteps) {
  Call c;
  c.run(10, 9ms);
  c.run(1, us(4700));  // one frame came later than the others: it sets the phase
  c.run(30, 9ms);
  EXPECT_EQ(c.moved, -2ms);  // 4.7 - 2 = 2.7 ms, rounded down to the 1 ms grid
}

TEST(PhaseAligner, FramesArrivingJustBeforeTheTickMoveItLater) {
  Call c;
  c.run(30, us(500));
  EXPECT_EQ(c.moved, 2ms);  // 2 - 0.5 = 1.5 ms later, rounded up
  EXPECT_TRUE(c.slewed_gently());
}

TEST(PhaseAligner, FollowsDriftBothWaysGently) {
  Call c;
  c.run(25, 2ms);
  EXPECT_TRUE(c.slices.empty());  // already where it should be
  // The caller's clock runs slow: its frames come later and later. The tick follows one grid
  // step per period once they arrive inside the margin.
  c.run(50, us(1500));
  EXPECT_EQ(c.moved, 1ms);
  // Arriving 3.9 ms before the tick, within margin + slack (2 + 2 ms): nothing to do.
  c.run(100, us(2900));
  EXPECT_EQ(c.lag_now(us(2900)), us(3900));
  EXPECT_EQ(c.moved, 1ms);
  // 6 ms before it, beyond: back to the margin.
  c.run(50, 5ms);
  c.run(10, 5ms);
  EXPECT_EQ(c.lag_now(5ms), 2ms);
  EXPECT_TRUE(c.slewed_gently());
}

TEST(PhaseAligner, MissedFramesGrowTheMarginForGoodUpToItsCap) {
  Call c;
  c.run(25, 2ms);
  c.run(30, 2ms);
  c.run(1, 2ms, 2);  // two frames on one tick: the one before missed its tick
  c.run(19, 2ms);
  EXPECT_EQ(c.moved, 1ms);  // slewing 2 ms later
  c.run(1, 2ms);
  EXPECT_EQ(c.moved, 2ms);
  EXPECT_EQ(c.a.margin(), 4ms);
  // The frames now lead the tick by 4 ms: that is the margin, not drift to correct.
  c.run(300, 2ms);
  EXPECT_EQ(c.moved, 2ms);
  // More misses: the margin grows to 8 ms and no further; the tick then stays put.
  for (int p = 0; p < 6; ++p) {
    c.run(1, 2ms, 2);
    c.run(60, 2ms);
  }
  EXPECT_EQ(c.a.margin(), 8ms);
  EXPECT_EQ(c.lag_now(2ms), 8ms);
  EXPECT_TRUE(c.slewed_gently());
  EXPECT_TRUE(c.a.active());
}

TEST(PhaseAligner, AMissWhileSettlingAddsAStepToTheFirstMove) {
  Call c;
  c.run(10, 15ms);
  c.run(1, 15ms, 2);
  c.run(30, 15ms);
  EXPECT_EQ(c.moved, -11ms);  // to 4 ms before the frames: 15 - 2 - 2
  EXPECT_EQ(c.a.margin(), 4ms);
}

TEST(PhaseAligner, TicksWithoutAudioAreNotCounted) {
  Call c;
  c.run(20, 12ms);
  c.run(100, 12ms, 0);  // the caller paused (DTMF being sent, say)
  EXPECT_TRUE(c.slices.empty());
  c.run(20, 12ms);
  EXPECT_EQ(c.moved, -10ms);
}

TEST(PhaseAligner, FramesOfAnotherLengthTurnItOff) {
  Call c;
  c.run(10, 12ms);
  c.run(1, 12ms, 1, true);  // a 30 ms frame: the caller's frames do not follow our tick
  c.run(100, 12ms);
  EXPECT_TRUE(c.slices.empty());
  EXPECT_FALSE(c.a.active());
}

TEST(PhaseAligner, MarginIsConfigurable) {
  PhaseAligner::Options o = two_ms();
  o.margin = 5ms;
  Call c(o);
  c.run(40, 18ms);
  EXPECT_EQ(c.moved, -13ms);
}

}  // namespace
}  // namespace voxbridge::playout
