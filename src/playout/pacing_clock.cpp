#include "voxbridge/playout/pacing_clock.hpp"

#include <iterator>

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
  // A call's slot is its phase on the grid, whatever cycle it starts in. One added during a
  // wake-up waits for a later one: never two ticks in one wake-up, and a tick that re-adds its
  // client as due now cannot keep the walk going.
  const std::int64_t tick =
      std::max(grid_tick_at_or_after(first_due), serving_ ? serving_last_ + 1 : next_tick_);
  c.first_tick_ = tick;
  slots_[static_cast<std::size_t>(tick % static_cast<std::int64_t>(kSlots))].push_back(c);
  if (!serving_) arm();  // else on_timer arms once its walk is over
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
  serving_ = true;
  serving_last_ = last;
  for (std::int64_t t = next_tick_; t <= last; ++t) {
    serve(slots_[static_cast<std::size_t>(t % static_cast<std::int64_t>(kSlots))], t, now);
  }
  serving_ = false;
  next_tick_ = std::max(last + 1, grid_tick_at_or_after(now));
  arm();
  // After the next wake-up is published: whatever is posted from here on either sees it or
  // is already in the queue this drains.
  if (on_wake_) on_wake_();
}

void PacingClock::serve(List& slot, std::int64_t t, Clock::time_point now) {
  // The cursor sits right after the client being served, so whatever that tick unlinks,
  // destroys or adds, the walk goes on from a node nobody else can touch. Clients added during
  // this wake-up go to the tail with a first tick after it, and are passed over.
  slot.push_front(cursor_);
  for (;;) {
    const auto next = std::next(slot.iterator_to(cursor_));
    if (next == slot.end()) break;
    Client& c = *next;
    cursor_.Hook::unlink();
    slot.insert(std::next(slot.iterator_to(c)), cursor_);
    if (t < c.first_tick_) continue;
    try {
      c.on_pacing_tick(now);
    } catch (...) {
      // Only this client stops; the rest of the thread's calls keep their cadence.
      tick_errors_.store(tick_errors_.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
      remove(c);
      c.on_pacing_error(std::current_exception());
    }
  }
  cursor_.Hook::unlink();
}

}  // namespace voxbridge::playout
