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

Clock::duration PhaseAligner::on_tick(Clock::time_point tick, int frames, bool odd,
                                      Clock::time_point newest) {
  if (off_) return Clock::duration::zero();
  if (odd) {
    off_ = true;  // frames of another length than the tick: there is no phase to keep
    return Clock::duration::zero();
  }
  if (frames <= 0) return Clock::duration::zero();  // nothing new: a miss shows as two later
  ++ticks_;
  if (frames >= 2) ++misses_;
  const Clock::duration lag = tick - newest;
  min_lag_ = have_lag_ ? std::min(min_lag_, lag) : lag;
  have_lag_ = true;
  if (ticks_ < (settled_ ? o_.period_ticks : o_.settle_ticks)) return Clock::duration::zero();

  // How much earlier the tick could be while the latest arrival still leads it by the margin
  // (negative: the tick must move later).
  const Clock::duration excess = min_lag_ - Clock::duration(o_.margin);
  const Clock::duration g = o_.grid;
  const Clock::duration later = excess < Clock::duration::zero()
                                    ? round_down(-excess + g - Clock::duration(1))  // round up
                                    : Clock::duration::zero();
  Clock::duration move = Clock::duration::zero();
  if (!settled_) {
    settled_ = true;
    move = later > Clock::duration::zero() ? later : -round_down(excess);
    if (misses_ > 0) move += o_.step;
  } else if (misses_ > 0) {
    if (++miss_periods_ >= o_.max_miss_periods) {
      off_ = true;
      return Clock::duration::zero();
    }
    move = std::max<Clock::duration>(o_.step, later);
  } else {
    miss_periods_ = 0;
    if (later > Clock::duration::zero()) {
      move = later;
    } else if (excess > Clock::duration(o_.slack)) {
      move = -round_down(excess);
    }
  }
  reset_period();
  if (move != Clock::duration::zero()) ++moves_;
  return move;
}

}  // namespace voxbridge::playout
