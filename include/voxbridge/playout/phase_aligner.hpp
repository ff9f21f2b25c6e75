// Keeps a call's pacing tick just after the caller's frames arrive.
//
// A call's timeline starts at its UUID, so the caller's 20 ms frames land at an arbitrary phase
// of it: a frame read on the tick has waited 0..20 ms (10 on average) before the agent hears it,
// and an echo waits as long again. The aligner watches when each tick's newest frame reached the
// socket (the kernel's receive stamp) and moves the tick to `margin` after the latest arrival it
// has seen, in whole steps of the 1 ms pacing grid:
//
// - after `settle_ticks` ticks, once: to `margin` after the latest arrival observed;
// - then every `period_ticks`: earlier again if the caller's frames have drifted to arrive more
//   than `margin + slack` before the tick (clock drift between the hosts), later by `step` if a
//   frame missed its tick (two frames read on one tick: the caller's jitter exceeds the margin).
//
// Moving earlier makes one gap shorter than 20 ms, once; moving later one gap longer. Never two
// frames in one tick. Only frames of exactly one tick period are judged; any other frame length
// (30 ms frames, say) turns the aligner off for the call. Pure logic: fed by the session, tested
// with made-up arrival times.
#pragma once

#include <chrono>
#include <cstdint>

#include "voxbridge/playout/playout.hpp"

namespace voxbridge::playout {

class PhaseAligner {
 public:
  struct Options {
    std::chrono::microseconds margin{2000};  ///< wanted time from the latest arrival to the tick
    std::chrono::microseconds slack{2000};   ///< drift tolerated before moving earlier again
    std::chrono::microseconds step{2000};    ///< how much later after a missed frame
    std::chrono::microseconds grid{1000};    ///< moves are whole multiples of this
    int settle_ticks = 25;                   ///< ticks observed before the first move
    int period_ticks = 50;                   ///< ticks between later re-evaluations
    /// Periods in a row with missed frames before giving up (the caller's jitter is larger
    /// than a tick: chasing it would only add gaps).
    int max_miss_periods = 5;
  };

  PhaseAligner() : PhaseAligner(Options{}) {}
  explicit PhaseAligner(const Options& o) : o_(o) {}

  /// One tick at `tick` read `frames` whole audio frames of one tick period each (`odd`: it
  /// read audio of another length), the newest of which reached the socket at `newest`
  /// (meaningless when frames == 0). Returns how far to move the timeline: negative =
  /// earlier, positive = later, zero = stay.
  Clock::duration on_tick(Clock::time_point tick, int frames, bool odd, Clock::time_point newest);

  bool active() const { return !off_; }
  /// Moves made (for the call's log line).
  std::uint32_t moves() const { return moves_; }

 private:
  Clock::duration round_down(Clock::duration d) const;
  void reset_period();

  Options o_;
  bool off_ = false;
  bool settled_ = false;
  int ticks_ = 0;  // ticks of the current observation with audio
  int misses_ = 0;
  int miss_periods_ = 0;
  bool have_lag_ = false;
  Clock::duration min_lag_{};  // smallest tick - newest arrival of the observation
  std::uint32_t moves_ = 0;
};

}  // namespace voxbridge::playout
