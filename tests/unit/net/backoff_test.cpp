#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "voxbridge/net/backoff.hpp"

namespace voxbridge::net {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

/// The first `n` waits of a Backoff(initial, max, seed).
std::vector<milliseconds> waits(milliseconds initial, milliseconds max, std::uint32_t seed, int n) {
  Backoff b(initial, max, seed);
  std::vector<milliseconds> out;
  for (int i = 0; i < n; ++i) out.push_back(b.next());
  return out;
}

TEST(Backoff, EachWaitIsBetweenHalfAndAllOfAStepThatDoublesUpToMax) {
  const std::vector<milliseconds> steps = {250ms,  500ms,  1000ms, 2000ms,
                                           4000ms, 5000ms, 5000ms, 5000ms};
  for (std::uint32_t seed = 0; seed < 50; ++seed) {
    const auto w = waits(250ms, 5000ms, seed, 8);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      EXPECT_GE(w[i], steps[i] / 2) << "seed " << seed << ", wait " << i;
      EXPECT_LE(w[i], steps[i]) << "seed " << seed << ", wait " << i;
    }
  }
}

TEST(Backoff, TheSameSeedDrawsTheSameWaitsAndTheDrawsSpread) {
  EXPECT_EQ(waits(250ms, 5000ms, 7, 8), waits(250ms, 5000ms, 7, 8));
  EXPECT_NE(waits(250ms, 5000ms, 7, 8), waits(250ms, 5000ms, 8, 8));
  // Over 100 seeds the first wait falls in both the lower and the upper fifth of 125..250 ms.
  milliseconds lowest = 250ms, highest = 0ms;
  for (std::uint32_t seed = 0; seed < 100; ++seed) {
    const auto w = waits(250ms, 5000ms, seed, 1)[0];
    lowest = std::min(lowest, w);
    highest = std::max(highest, w);
  }
  EXPECT_LE(lowest, 150ms);
  EXPECT_GE(highest, 225ms);
}

TEST(Backoff, ResetStartsAgainFromInitial) {
  Backoff b(100ms, 10000ms, 1);
  for (int i = 0; i < 5; ++i) b.next();  // the step is 3200 ms now
  b.reset();
  const auto w = b.next();
  EXPECT_GE(w, 50ms);
  EXPECT_LE(w, 100ms);
  const auto w2 = b.next();
  EXPECT_GE(w2, 100ms);
  EXPECT_LE(w2, 200ms);
}

TEST(Backoff, OnlyAnAttemptThatHeldOverTenSecondsResetsTheSteps) {
  Backoff b(1000ms, 60000ms, 3);
  b.next();               // step 1000
  b.next();               // step 2000
  auto w = b.after(10s);  // not over 10 s: step 4000
  EXPECT_GE(w, 2000ms);
  EXPECT_LE(w, 4000ms);
  w = b.after(10001ms);  // held: step 1000 again
  EXPECT_GE(w, 500ms);
  EXPECT_LE(w, 1000ms);
}

TEST(Backoff, AnInitialAboveMaxIsUsedOnceThenMax) {
  const auto w = waits(800ms, 300ms, 5, 3);
  EXPECT_GE(w[0], 400ms);
  EXPECT_LE(w[0], 800ms);
  for (std::size_t i = 1; i < w.size(); ++i) {
    EXPECT_GE(w[i], 150ms);
    EXPECT_LE(w[i], 300ms);
  }
}

TEST(Backoff, AZeroInitialNeverWaits) {
  for (const auto w : waits(0ms, 0ms, 9, 4)) EXPECT_EQ(w, 0ms);
}

}  // namespace
}  // namespace voxbridge::net
