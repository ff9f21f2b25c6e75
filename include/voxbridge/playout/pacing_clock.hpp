// One pacing clock per io thread, serving all of that thread's calls.
//
// Each call keeps its own timeline (frame n at start + n * period, anchored at its UUID), but
// instead of one timer per call (a timer re-arm and a wake-up per call per 20 ms) the thread has
// one timer on a 1 ms grid. A call sits in the slot of its phase (period / resolution slots);
// each grid tick serves one slot. After a stall the clock serves every slot it missed once, so
// no call ever gets two ticks at once. Runs on its io thread only; clients are intrusive (no
// allocation to add or remove) and unlink themselves when destroyed.
//
// A tick may remove, destroy or add any client (itself, another of its slot, a new one), though
// not the clock: the walk of a slot keeps a cursor node of its own right after the client being
// served, so it never holds a link that a tick can invalidate. A client added during a wake-up is
// first served by a later one. A tick that throws stops only that client: the clock removes it,
// tells it (on_pacing_error) and goes on serving the others.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>

#include "voxbridge/playout/playout.hpp"

namespace voxbridge::playout {

class PacingClock {
 public:
  static constexpr std::chrono::milliseconds kResolution{1};
  static constexpr std::size_t kSlots = 20;  // period / resolution

  struct HookTag;
  using Hook =
      boost::intrusive::list_base_hook<boost::intrusive::tag<HookTag>,
                                       boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

  /// Something paced by the clock (a call).
  class Client : public Hook {
   public:
    /// A tick of this client's slot at `now` (at or after its due time).
    virtual void on_pacing_tick(Clock::time_point now) = 0;
    /// Its tick threw `error`; the clock has removed it already. A call ends itself here (and
    /// says why in the log). Runs on the io thread, inside the clock's wake-up.
    virtual void on_pacing_error(std::exception_ptr error) noexcept { (void)error; }

   protected:
    ~Client() = default;

   private:
    friend class PacingClock;
    std::int64_t first_tick_ = 0;  // its slot comes round before this in the cycle it joins
  };

  explicit PacingClock(boost::asio::any_io_executor ex);
  /// Clients still registered are released (their hooks unlinked), so they may outlive it.
  ~PacingClock();
  PacingClock(const PacingClock&) = delete;
  PacingClock& operator=(const PacingClock&) = delete;

  /// Serves `c` every 20 ms from `first_due` on (rounded up to the 1 ms grid).
  void add(Client& c, Clock::time_point first_due);
  /// Stops serving `c` (also happens when `c` is destroyed).
  static void remove(Client& c) { c.Hook::unlink(); }

  std::uint64_t wakeups() const { return wakeups_; }
  /// Ticks that threw (each removed its client).
  std::uint64_t tick_errors() const { return tick_errors_.load(std::memory_order_relaxed); }

  /// Runs `fn` at every wake-up of the clock, after its clients' ticks (the io thread's mailbox
  /// drains there: see session::Mailbox).
  void on_wake(std::function<void()> fn) { on_wake_ = std::move(fn); }
  /// When the clock will next wake, in nanoseconds of the steady clock's epoch, or INT64_MAX
  /// while it sleeps until add(); readable from any thread.
  const std::atomic<std::int64_t>& next_wake() const { return next_wake_; }

 private:
  using List = boost::intrusive::list<Client, boost::intrusive::base_hook<Hook>,
                                      boost::intrusive::constant_time_size<false>>;
  /// Marks the walk's place in a slot; never served.
  struct Cursor final : Client {
    void on_pacing_tick(Clock::time_point) override {}
  };
  std::int64_t grid_tick_at_or_after(Clock::time_point t) const;
  void arm();
  void on_timer();
  /// Serves the clients of `slot` due at grid tick `t`.
  void serve(List& slot, std::int64_t t, Clock::time_point now);

  boost::asio::steady_timer timer_;
  Clock::time_point epoch_;
  std::array<List, kSlots> slots_;
  std::int64_t next_tick_ = 0;  // first grid tick not yet served
  std::int64_t armed_tick_ = 0;
  bool armed_ = false;
  bool serving_ = false;           // inside on_timer's walk
  std::int64_t serving_last_ = 0;  // while serving_: the last grid tick this wake-up serves
  Cursor cursor_;
  std::uint64_t generation_ = 0;
  std::uint64_t wakeups_ = 0;
  std::atomic<std::uint64_t> tick_errors_{0};  // written by the clock's thread, read by any
  std::function<void()> on_wake_;
  std::atomic<std::int64_t> next_wake_{std::numeric_limits<std::int64_t>::max()};
};

}  // namespace voxbridge::playout
