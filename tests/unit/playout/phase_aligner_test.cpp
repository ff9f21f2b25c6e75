#include "voxbridge/playout/phase_aligner.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace voxbridge::playout {
namespace {

using namespace std::chrono_literals;
using us = std::chrono::microseconds;

/// Feeds ticks 20 ms apart whose newest frame arrived `lag` before the tick; returns the moves
/// the aligner asked for, by tick index (only non-zero ones).
struct Feed {
  PhaseAligner a;
  Clock::time_point t = Clock::time_point{} + 1h;
  int tick = 0;
  std::vector<std::pair<int, Clock::duration>> moves;

  explicit Feed(PhaseAligner::Options o = {}) : a(o) {}
  void run(int ticks, Clock::duration lag, int frames = 1, bool odd = false) {
    for (int i = 0; i < ticks; ++i, ++tick) {
      t += 20ms;
      const Clock::duration m = a.on_tick(t, frames, odd, t - lag);
      if (m != Clock::duration::zero()) moves.emplace_back(tick, m);
    }
  }
};

TEST(PhaseAligner, MovesTheTickToTheMarginAfterTheCallersFramesOnceSettled) {
  Feed f;
  f.run(24, 15ms);
  EXPECT_TRUE(f.moves.empty());  // still settling
  f.run(1, 15ms);
  ASSERT_EQ(f.moves.size(), 1u);
  EXPECT_EQ(f.moves[0].first, 24);
  EXPECT_EQ(f.moves[0].second, -13ms);  // 15 ms of waiting becomes the 2 ms margin
  // Aligned: the frames now arrive 2 ms before the tick, and it stays there.
  f.run(500, 2ms);
  EXPECT_EQ(f.moves.size(), 1u);
  EXPECT_EQ(f.a.moves(), 1u);
  EXPECT_TRUE(f.a.active());
}

TEST(PhaseAligner, TheLatestArrivalDecidesAndMovesAreWholeGridSteps) {
  Feed f;
  f.run(10, 9ms);
  f.run(1, us(4700));  // one frame came later than the others: it sets the phase
  f.run(14, 9ms);
  ASSERT_EQ(f.moves.size(), 1u);
  EXPECT_EQ(f.moves[0].second, -2ms);  // 4.7 - 2 = 2.7 ms, rounded down to the 1 ms grid
}

TEST(PhaseAligner, AFrameArrivingJustBeforeTheTickMovesItLater) {
  Feed f;
  f.run(25, us(500));
  ASSERT_EQ(f.moves.size(), 1u);
  EXPECT_EQ(f.moves[0].second, 2ms);  // 2 - 0.5 = 1.5 ms later, rounded up
  // A frame read although it arrived after the tick's deadline (while earlier calls of the
  // same tick were served) also moves it later.
  Feed g;
  g.run(25, 4ms);
  g.run(49, 4ms);
  g.run(1, -us(300));
  ASSERT_EQ(g.moves.size(), 2u);
  EXPECT_EQ(g.moves[0].second, -2ms);
  EXPECT_EQ(g.moves[1].second, 3ms);  // 2 + 0.3 = 2.3 ms later, rounded up
}

TEST(PhaseAligner, FollowsDriftEarlierOnlyBeyondTheSlack) {
  Feed f;
  f.run(25, 2ms);
  EXPECT_TRUE(f.moves.empty());  // already where it should be
  f.run(50, us(3900));           // drifted, within margin + slack (2 + 2 ms)
  EXPECT_TRUE(f.moves.empty());
  f.run(50, us(5500));
  ASSERT_EQ(f.moves.size(), 1u);
  EXPECT_EQ(f.moves[0].first, 124);
  EXPECT_EQ(f.moves[0].second, -3ms);
}

TEST(PhaseAligner, AMissedFrameMovesLaterByAStepAndPersistentMissesTurnItOff) {
  Feed f;
  f.run(25, 2ms);
  f.run(30, 2ms);
  f.run(1, 2ms, 2);  // two frames on one tick: the one before missed its tick
  f.run(19, 2ms);
  ASSERT_EQ(f.moves.size(), 1u);
  EXPECT_EQ(f.moves[0].second, 2ms);
  // Four more periods with misses: later each time; the fifth gives up for good.
  for (int p = 0; p < 4; ++p) {
    f.run(1, 2ms, 2);
    f.run(49, 2ms);
  }
  EXPECT_EQ(f.moves.size(), 4u);
  EXPECT_FALSE(f.a.active());
  f.run(200, 15ms);
  EXPECT_EQ(f.moves.size(), 4u);
}

TEST(PhaseAligner, TicksWithoutAudioAreNotCounted) {
  Feed f;
  f.run(20, 12ms);
  f.run(100, 12ms, 0);  // the caller paused (DTMF being sent, say)
  EXPECT_TRUE(f.moves.empty());
  f.run(5, 12ms);
  ASSERT_EQ(f.moves.size(), 1u);
  EXPECT_EQ(f.moves[0].second, -10ms);
}

TEST(PhaseAligner, FramesOfAnotherLengthTurnItOff) {
  Feed f;
  f.run(10, 12ms);
  f.run(1, 12ms, 1, true);  // a 30 ms frame: the caller's frames do not follow our tick
  f.run(100, 12ms);
  EXPECT_TRUE(f.moves.empty());
  EXPECT_FALSE(f.a.active());
}

TEST(PhaseAligner, MarginIsConfigurable) {
  PhaseAligner::Options o;
  o.margin = 5ms;
  Feed f(o);
  f.run(25, 18ms);
  ASSERT_EQ(f.moves.size(), 1u);
  EXPECT_EQ(f.moves[0].second, -13ms);
}

}  // namespace
}  // namespace voxbridge::playout
