#include "voxbridge/playout/pacing_clock.hpp"

namespace voxbridge::playout {

PacingClock::PacingClock(boost::asio::any_io_executor ex) : timer_(ex), epoch_(Clock::now()) {
  next_tick_ = grid_tick_at_or_after(Clock::now());
}

PacingClock::~PacingClock() {
  for (auto& slot : slots_) slot.clear();
}

std::int64_t PacingClock::grid_tick_at_or_after(Clock::time_point t) const {
  const auto d = t - epoch_;
  const std::int64_t res = std::chrono::duration_cast<Clock::duration>(kResolution).count();
  const std::int64_t n = d.count();
  return n <= 0 ? 0 : (n + res - 1) / res;  // ceil: a tick is never before the due time
}

void PacingClock::add(Client& c, Clock::time_point first_due) {
  remove(c);
  // A call's slot is its phase on the grid, whatever cycle it starts in.
  const std::int64_t tick = std::max(grid_tick_at_or_after(first_due), next_tick_);
  c.first_tick_ = tick;
  slots_[static_cast<std::size_t>(tick % static_cast<std::int64_t>(kSlots))].push_back(c);
  arm();
}

void PacingClock::arm() {
  // Skip empty slots: with few calls the thread wakes only when one of them is due.
  std::int64_t t = next_tick_;
  const std::int64_t end = t + static_cast<std::int64_t>(kSlots);
  while (t < end &&
         slots_[static_cast<std::size_t>(t % static_cast<std::int64_t>(kSlots))].empty()) {
    ++t;
  }
  if (t < end && !(armed_ && armed_tick_ <= t)) {
    armed_ = true;
    armed_tick_ = t;
    // Re-arming cancels the earlier wait; its handler sees a stale generation and does nothing.
    const std::uint64_t gen = ++generation_;
    timer_.expires_at(epoch_ + kResolution * t);
    timer_.async_wait([this, gen](const boost::system::error_code& ec) {
      if (gen != generation_) return;
      armed_ = false;
      if (!ec) on_timer();
    });
  }
  // No clients and no wait armed: the clock sleeps until add().
  next_wake_.store(armed_ ? std::chrono::duration_cast<std::chrono::nanoseconds>(
                                (epoch_ + kResolution * armed_tick_).time_since_epoch())
                                .count()
                          : std::numeric_limits<std::int64_t>::max());
}

void PacingClock::on_timer() {
  ++wakeups_;
  const Clock::time_point now = Clock::now();
  // Serve every grid tick up to now once (after a stall, each missed slot once: its clients'
  // pacers then skip the deadlines they missed instead of bursting).
  const std::int64_t last = std::min(grid_tick_at_or_after(now + Clock::duration(1)) - 1,
                                     next_tick_ + static_cast<std::int64_t>(kSlots) - 1);
  for (std::int64_t t = next_tick_; t <= last; ++t) {
    List& slot = slots_[static_cast<std::size_t>(t % static_cast<std::int64_t>(kSlots))];
    for (auto it = slot.begin(); it != slot.end();) {
      Client& c = *it++;  // the client may unlink itself (hangup) during its tick
      if (t >= c.first_tick_) c.on_pacing_tick(now);
    }
  }
  next_tick_ = std::max(last + 1, grid_tick_at_or_after(now));
  arm();
  // After the next wake-up is published: whatever is posted from here on either sees it or
  // is already in the queue this drains.
  if (on_wake_) on_wake_();
}

}  // namespace voxbridge::playout
