#include "voxbridge/playout/pacing_clock.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
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

/// A client whose tick runs `on_tick` (what a call may do to other calls of its thread).
struct Scripted : PacingClock::Client {
  void on_pacing_tick(Clock::time_point now) override {
    at.push_back(now);
    if (on_tick) on_tick(*this);
  }
  void on_pacing_error(std::exception_ptr e) noexcept override {
    ++errors;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      error_text = ex.what();
    } catch (...) {
    }
  }
  std::function<void(Scripted&)> on_tick;
  std::vector<Clock::time_point> at;  // the `now` of each tick
  int errors = 0;
  std::string error_text;
};

/// At least `at_least` ticks, each about a period after the one before.
void expect_cadence(const Scripted& c, std::size_t at_least, const char* who) {
  EXPECT_GE(c.at.size(), at_least) << who;
  for (std::size_t k = 1; k < c.at.size(); ++k) {
    // Never twice in one wake-up (a busy machine may delay a wake-up, so no tighter bound).
    EXPECT_GE(c.at[k] - c.at[k - 1], 2ms) << who << " tick " << k;
  }
}

TEST(PacingClock, ATickThatRemovesAnotherClientOfItsSlotGoesOnWithTheRest) {
  boost::asio::io_context io;
  PacingClock clock(io.get_executor());
  const auto due = Clock::now() + 2ms;
  Scripted a, b, c;  // one slot, in this order
  a.on_tick = [&](Scripted&) { PacingClock::remove(b); };
  for (Scripted* x : {&a, &b, &c}) clock.add(*x, due);
  run_for(io, 105ms);
  EXPECT_TRUE(b.at.empty());  // removed before its turn: not served
  expect_cadence(a, 4, "a");
  expect_cadence(c, 4, "c");
}

TEST(PacingClock, ATickThatDestroysAnotherClientOfItsSlotGoesOnWithTheRest) {
  boost::asio::io_context io;
  PacingClock clock(io.get_executor());
  const auto due = Clock::now() + 2ms;
  Scripted a, c;
  auto b = std::make_unique<Scripted>();
  bool b_ticked = false;
  b->on_tick = [&](Scripted&) { b_ticked = true; };
  a.on_tick = [&](Scripted&) { b.reset(); };  // a call ending another (ASan: no use after free)
  clock.add(a, due);
  clock.add(*b, due);
  clock.add(c, due);
  run_for(io, 105ms);
  EXPECT_FALSE(b_ticked);
  expect_cadence(a, 4, "a");
  expect_cadence(c, 4, "c");
}

TEST(PacingClock, ATickThatMovesAnotherClientOfItsSlotGoesOnWithTheRest) {
  boost::asio::io_context io;
  PacingClock clock(io.get_executor());
  const auto due = Clock::now() + 2ms;
  Scripted a, b, c;  // one slot, in this order
  // Every tick of a moves b to half a period later (re-added to another slot's list), as the
  // load generator's read tick moves itself.
  a.on_tick = [&](Scripted&) { clock.add(b, Clock::now() + 10ms); };
  for (Scripted* x : {&a, &b, &c}) clock.add(*x, due);
  run_for(io, 125ms);
  expect_cadence(a, 5, "a");
  expect_cadence(b, 4, "b");
  expect_cadence(c, 5, "c");  // behind b in the slot: still served every period
  ASSERT_FALSE(b.at.empty());
  EXPECT_GE(b.at.front() - a.at.front(), 9ms);  // moved before its turn came
}

TEST(PacingClock, ATickThatReaddsItselfAsDueAlreadyIsServedInALaterWakeUp) {
  boost::asio::io_context io;
  PacingClock clock(io.get_executor());
  Scripted a;
  int readds = 0;
  a.on_tick = [&](Scripted& self) {
    // Due already (a timeline moved back); bounded, so that the old clock's endless walk ends.
    if (readds++ < 100) clock.add(self, Clock::now() - 1ms);
  };
  clock.add(a, Clock::now() + 2ms);
  run_for(io, 30ms);
  // One tick per wake-up: the re-added client waits for the next grid tick.
  EXPECT_LE(a.at.size(), clock.wakeups());
  for (std::size_t k = 1; k < a.at.size(); ++k) EXPECT_GT(a.at[k], a.at[k - 1]) << k;
  EXPECT_GE(a.at.size(), 10u);  // about one per millisecond
}

TEST(PacingClock, ClientsAddedDuringATickStartInALaterWakeUpThenKeepTheirCadence) {
  boost::asio::io_context io;
  PacingClock clock(io.get_executor());
  const auto due = Clock::now() + 2ms;
  Scripted a, b;
  std::vector<std::unique_ptr<Scripted>> added;
  a.on_tick = [&](Scripted&) {
    if (!added.empty()) return;
    for (int i = 0; i < 3; ++i) {  // new calls due already (a's slot), now and in 1 ms
      added.push_back(std::make_unique<Scripted>());
      clock.add(*added.back(), Clock::now() + std::chrono::milliseconds(i - 1));
    }
  };
  clock.add(a, due);
  clock.add(b, due);
  run_for(io, 105ms);
  ASSERT_EQ(added.size(), 3u);
  expect_cadence(a, 4, "a");
  expect_cadence(b, 4, "b");
  for (std::size_t i = 0; i < added.size(); ++i) {
    expect_cadence(*added[i], 4, "added");
    ASSERT_FALSE(added[i]->at.empty());
    // Not in the wake-up that added it (a would otherwise be able to add and serve forever).
    EXPECT_GT(added[i]->at.front(), a.at.front()) << i;
  }
}

TEST(PacingClock, ATickThatRemovesItselfAndTheNextClientGoesOnWithTheRest) {
  boost::asio::io_context io;
  PacingClock clock(io.get_executor());
  const auto due = Clock::now() + 2ms;
  Scripted a, b, c, d;
  a.on_tick = [&](Scripted& self) {
    PacingClock::remove(self);
    PacingClock::remove(b);
  };
  for (Scripted* x : {&a, &b, &c, &d}) clock.add(*x, due);
  run_for(io, 105ms);
  EXPECT_EQ(a.at.size(), 1u);
  EXPECT_TRUE(b.at.empty());
  expect_cadence(c, 4, "c");
  expect_cadence(d, 4, "d");
}

TEST(PacingClock, ATickThatThrowsStopsOnlyItsClientAndTheClockKeepsServingTheOthers) {
  boost::asio::io_context io;
  PacingClock clock(io.get_executor());
  const auto due = Clock::now() + 2ms;
  Scripted a, b, other;  // a and b share a slot; other has its own
  a.on_tick = [&](Scripted& self) {
    if (self.at.size() == 3) throw std::runtime_error("agent failed on frame 3");
  };
  clock.add(a, due);
  clock.add(b, due);
  clock.add(other, due + 7ms);
  run_for(io, 205ms);
  EXPECT_EQ(a.at.size(), 3u);  // not served after its throw
  EXPECT_EQ(a.errors, 1);
  EXPECT_EQ(a.error_text, "agent failed on frame 3");
  EXPECT_EQ(clock.tick_errors(), 1u);
  expect_cadence(b, 8, "b");
  expect_cadence(other, 8, "other");
}

}  // namespace
}  // namespace voxbridge::playout
