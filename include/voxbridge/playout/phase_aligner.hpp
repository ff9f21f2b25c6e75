// Keeps a call's pacing tick just after the caller's frames arrive.
//
// A call's timeline starts at its UUID, so the caller's 20 ms frames land at an arbitrary phase
// of it: a frame read on the tick has waited 0..20 ms (10 on average) before the agent hears it,
// and an echo waits as long again. The aligner watches when each tick's newest frame reached the
// socket (the kernel's receive stamp) and moves the tick to `margin` after the latest arrival it
// has seen:
//
// - after `settle_ticks` ticks, once: to `margin` after the latest arrival observed;
// - then every `period_ticks`: if a frame missed its tick (two frames read on one tick: the
//   caller's jitter exceeds the margin), the margin grows by `step` for good, up to
//   `max_margin` (beyond it the caller's jitter is not worth chasing); otherwise, to follow
//   clock drift between the hosts, one grid step later if the latest arrival came after the
//   margin, or back to the margin if it led the tick by more than `margin + slack`.
//
// A move is never made at once: the timeline slews by at most `slew` per tick (one gap of 19
// or 21 ms instead of 20), so the caller hears no jump and never gets two frames close
// together. Only frames of exactly one tick period are judged; any other frame length (30 ms
// frames, say) turns the aligner off for the call. Pure logic: fed by the session, tested
// with made-up arrival times.
#pragma once

#include <chrono>
#include <cstdint>

#include "voxbridge/playout/playout.hpp"

namespace voxbridge::playout {

class PhaseAligner {
 public:
  struct Options {
    std::chrono::microseconds margin{4000};  ///< wanted time from the latest arrival to the tick
    std::chrono::microseconds slack{2000};   ///< drift tolerated before moving earlier again
    std::chrono::microseconds step{2000};    ///< how much later after a missed frame
    std::chrono::microseconds max_margin{10000};  ///< missed frames grow the margin to this at most
    std::chrono::microseconds grid{1000};         ///< moves are whole multiples of this
    std::chrono::microseconds slew{1000};         ///< the most the timeline moves in one tick
    int settle_ticks = 25;                        ///< ticks observed before the first move
    int period_ticks = 50;                        ///< ticks between later re-evaluations
  };

  PhaseAligner() : PhaseAligner(Options{}) {}
  explicit PhaseAligner(const Options& o) : o_(o), margin_(o.margin) {}

  /// One tick at `tick` read `frames` whole audio frames of one tick period each (`odd`: it
  /// read audio of another length), the newest of which reached the socket at `newest`
  /// (meaningless when frames == 0). Returns how far to move the rest of the timeline now
  /// (at most `slew`): negative = earlier, positive = later, zero = stay.
  Clock::duration on_tick(Clock::time_point tick, int frames, bool odd, Clock::time_point newest);

  bool active() const { return !off_; }
  /// The margin now (grown by missed frames).
  Clock::duration margin() const { return margin_; }
  /// Corrections decided so far (each slewed over one or more ticks).
  std::uint32_t moves() const { return moves_; }

 private:
  Clock::duration round_down(Clock::duration d) const;
  void reset_period();
  /// The next slice of a pending correction.
  Clock::duration slice();

  Options o_;
  bool off_ = false;
  bool settled_ = false;
  int ticks_ = 0;  // ticks of the current observation with audio
  int misses_ = 0;
  Clock::duration margin_;
  bool have_lag_ = false;
  Clock::duration min_lag_{};  // smallest tick - newest arrival of the observation
  Clock::duration pending_{};  // decided but not yet slewed
  std::uint32_t moves_ = 0;
};

}  // namespace voxbridge::playout
