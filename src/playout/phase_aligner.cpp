#include "voxbridge/playout/phase_aligner.hpp"

#include <algorithm>

namespace voxbridge::playout {

Clock::duration PhaseAligner::round_down(Clock::duration d) const {
  const Clock::duration g = o_.grid;
  return d - d % g;
}

void PhaseAligner::reset_period() {
  ticks_ = 0;
  misses_ = 0;
  have_lag_ = false;
}

Clock::duration PhaseAligner::slice() {
  const Clock::duration cap = o_.slew;
  const Clock::duration d = std::clamp<Clock::duration>(pending_, -cap, cap);
  pending_ -= d;
  return d;
}

Clock::duration PhaseAligner::on_tick(Clock::time_point tick, int frames, bool odd,
                                      Clock::time_point newest) {
  if (off_) return Clock::duration::zero();
  if (odd) {
    off_ = true;  // frames of another length than the tick: there is no phase to keep
    pending_ = Clock::duration::zero();
    return Clock::duration::zero();
  }
  if (pending_ != Clock::duration::zero()) return slice();  // observe again once it is done
  if (frames <= 0) return Clock::duration::zero();  // nothing new: a miss shows as two later
  ++ticks_;
  if (frames >= 2) ++misses_;
  const Clock::duration lag = tick - newest;
  min_lag_ = have_lag_ ? std::min(min_lag_, lag) : lag;
  have_lag_ = true;
  if (ticks_ < (settled_ ? o_.period_ticks : o_.settle_ticks)) return Clock::duration::zero();

  // How much earlier the tick could be while the latest arrival still leads it by the margin
  // (negative: the tick must move later).
  const Clock::duration excess = min_lag_ - margin_;
  const Clock::duration g = o_.grid;
  Clock::duration move = Clock::duration::zero();
  const bool first = !settled_;
  settled_ = true;
  if (first) {
    move = excess < Clock::duration::zero() ? round_down(-excess + g - Clock::duration(1))
                                            : -round_down(excess);
  }
  if (misses_ > 0) {
    // A frame came later than the margin allowed: allow more from now on, up to the cap.
    const Clock::duration grown = std::max<Clock::duration>(
        margin_, std::min<Clock::duration>(margin_ + o_.step, o_.max_margin));
    move += grown - margin_;
    margin_ = grown;
  } else if (!first) {
    if (excess < Clock::duration::zero()) {
      move = g;  // drifting later: follow, one grid step a period
    } else if (excess > Clock::duration(o_.slack)) {
      move = -round_down(excess);
    }
  }
  reset_period();
  if (move == Clock::duration::zero()) return move;
  ++moves_;
  pending_ = move;
  return slice();
}

}  // namespace voxbridge::playout
