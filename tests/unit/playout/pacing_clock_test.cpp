#include "voxbridge/playout/pacing_clock.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <limits>
#include <thread>
#include <vector>

namespace voxbridge::playout {
namespace {

using namespace std::chrono_literals;

/// A call as the clock sees it: its own pacer, anchored at its own start.
struct FakeCall : PacingClock::Client {
  explicit FakeCall(Clock::time_point t0) { pacer.start(t0); }
  void on_pacing_tick(Clock::time_point now) override {
    ++ticks;
    if (pacer.on_timer(now)) {
      sent.push_back(now);
    } else {
      ++not_due;  // the clock woke a call that was not due: must never happen
    }
    if (stall_once > 0ms) {
      std::this_thread::sleep_for(stall_once);  // a blocked thread (a test only)
      stall_once = 0ms;
    }
  }
  Pacer pacer;
  std::vector<Clock::time_point> sent;
  int ticks = 0;
  int not_due = 0;
  std::chrono::milliseconds stall_once{0};
};

void run_for(boost::asio::io_context& io, Clock::duration d) {
  boost::asio::steady_timer stop(io, d);
  stop.async_wait([&](auto) { io.stop(); });
  io.run();
  io.restart();
}

TEST(PacingClock, ServesEveryCallFiftyTimesASecondAtItsOwnPhase) {
  boost::asio::io_context io;
  PacingClock clock(io.get_executor());
  const auto t0 = Clock::now();
  std::vector<std::unique_ptr<FakeCall>> calls;
  for (int i = 0; i < 40; ++i) {
    // Phases spread over the 20 ms period, at fractions of a millisecond too.
    calls.push_back(std::make_unique<FakeCall>(t0 + std::chrono::microseconds(i * 487)));
    clock.add(*calls.back(), calls.back()->pacer.next_deadline());
  }
  run_for(io, 1010ms);
  std::size_t ticks = 0, on_time = 0;
  for (const auto& c : calls) {
    EXPECT_GE(c->sent.size(), 49u);
    EXPECT_LE(c->sent.size(), 51u);
    EXPECT_EQ(c->not_due, 0);
    for (std::size_t k = 0; k < c->sent.size(); ++k) {
      // Never before its deadline; normally within a grid step (1 ms) plus scheduling after it.
      const auto deadline = c->pacer.start_time() + 20ms * static_cast<long>(k + 1);
      ASSERT_GE(c->sent[k], deadline);
      ++ticks;
      if (c->sent[k] - deadline < 5ms) ++on_time;
    }
  }
  // A busy machine (CI runs this beside other tests, under ASan too) may delay the odd wake-up;
  // a clock serving the wrong slot would be late on every tick of the calls it mis-serves.
  EXPECT_GE(on_time * 100, ticks * 95) << on_time << " of " << ticks << " ticks within 5 ms";
  // One wake-up per grid millisecond at most, not one per call per frame (40 * 50 = 2000).
  EXPECT_LE(clock.wakeups(), 1020u);
}

TEST(PacingClock, FewCallsWakeTheThreadOnlyWhenDue) {
  boost::asio::io_context io;
  PacingClock clock(io.get_executor());
  FakeCall call(Clock::now());
  clock.add(call, call.pacer.next_deadline());
  run_for(io, 505ms);
  EXPECT_NEAR(static_cast<double>(call.sent.size()), 25.0, 1.0);
  EXPECT_LE(clock.wakeups(), 27u);
}

TEST(PacingClock, NoBurstAfterAStall) {
  boost::asio::io_context io;
  PacingClock clock(io.get_executor());
  const auto t0 = Clock::now();
  FakeCall a(t0), b(t0 + 7ms);
  clock.add(a, a.pacer.next_deadline());
  clock.add(b, b.pacer.next_deadline());
  a.stall_once = 100ms;  // a's first tick blocks the thread for five periods
  run_for(io, 400ms);
  // On waking, a call gets one late frame, then frames on its own timeline again: never two
  // in one wake-up, and none of the missed deadlines are made up.
  for (const FakeCall* c : {&a, &b}) {
    for (std::size_t k = 1; k < c->sent.size(); ++k) {
      ASSERT_GE(c->sent[k] - c->sent[k - 1], 2ms) << "burst at frame " << k;
    }
    EXPECT_LE(c->sent.size(), 400u / 20u - 3u);
    EXPECT_GE(c->pacer.late_ticks(), 3u);
    EXPECT_EQ(c->not_due, 0);
  }
}

TEST(PacingClock, RemovedAndDestroyedCallsAreNotServed) {
  boost::asio::io_context io;
  PacingClock clock(io.get_executor());
  FakeCall kept(Clock::now());
  clock.add(kept, kept.pacer.next_deadline());
  {
    FakeCall gone(Clock::now());
    clock.add(gone, gone.pacer.next_deadline());
  }  // unlinks itself
  FakeCall removed(Clock::now());
  clock.add(removed, removed.pacer.next_deadline());
  PacingClock::remove(removed);
  run_for(io, 105ms);
  EXPECT_EQ(removed.ticks, 0);
  EXPECT_GE(kept.sent.size(), 4u);
}

TEST(PacingClock, PublishesItsNextWakeAndRunsTheHookAtEachWake) {
  boost::asio::io_context io;
  PacingClock clock(io.get_executor());
  constexpr auto kSleeping = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(clock.next_wake().load(), kSleeping);  // no calls: it sleeps
  int hooks = 0;
  std::int64_t seen_at_hook = 0;
  clock.on_wake([&] {
    ++hooks;
    seen_at_hook = clock.next_wake().load();
  });
  const auto t0 = Clock::now() + 5ms;
  FakeCall call(t0);
  clock.add(call, call.pacer.next_deadline());
  const auto ns = [](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  };
  // Its first tick, on the 1 ms grid at or after t0.
  EXPECT_GE(clock.next_wake().load(), ns(t0));
  EXPECT_LT(clock.next_wake().load(), ns(t0 + 1ms));
  run_for(io, 100ms);
  EXPECT_EQ(hooks, static_cast<int>(clock.wakeups()));
  EXPECT_GE(hooks, 4);
  // At the hook, the wake-up after this one is already published: 20 ms on (one call).
  EXPECT_GT(seen_at_hook, ns(Clock::now()));
  EXPECT_LE(seen_at_hook, ns(Clock::now() + 21ms));
  PacingClock::remove(call);
  run_for(io, 30ms);  // the armed wait fires once more, finds nobody, and the clock sleeps
  EXPECT_EQ(clock.next_wake().load(), kSleeping);
}

}  // namespace
}  // namespace voxbridge::playout
