// One io thread of the load generator: its own io_context (nothing shared with the other
// threads but the read-only signal and window), the calls placed on it, and its totals.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "caller.hpp"

namespace voxbridge::loadgen {

/// A random version-4 UUID.
audiosocket::Uuid random_uuid(std::mt19937_64& rng);

class Worker {
 public:
  /// `call_seconds` > 0 turns on call churn (see Options::call_seconds); `seed` then drives
  /// the lengths, UUIDs and phases of this thread's calls.
  Worker(const boost::asio::ip::tcp::endpoint& server, const TestSignal& signal,
         const Window& window, Scenario scenario, double call_seconds = 0, std::uint64_t seed = 1);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// --stamps: the calls keep their turn and reply stamps (before start()).
  void record_stamps() { env_.stamps = true; }
  /// Starts the thread.
  void start();
  /// Places one more call (from any thread).
  void add_call(const audiosocket::Uuid& uuid, Clock::duration phase);
  /// Hangs up every call, does the window accounting and lets the thread finish (any thread).
  void stop();
  /// Waits for the thread; totals() is final afterwards.
  void join();

  const LiveCounters& live() const { return live_; }
  const Totals& totals() const { return totals_; }

 private:
  using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

  // Call churn, all on the io thread.
  /// Creates and starts a call.
  void place(const audiosocket::Uuid& uuid, Clock::duration phase);
  /// A call ended: retire it and put a new one in its place (at once, or after a failure in a
  /// second, so a refusing server is not hammered).
  void on_call_end(Caller& call, bool failed);
  void arm_housekeeping();
  /// Frees retired calls (once their aborted handlers have run) and places delayed calls.
  void housekeeping();

  boost::asio::io_context io_{1};  // run by exactly one thread
  std::optional<WorkGuard> guard_;
  LiveCounters live_;
  Totals totals_;
  playout::PacingClock clock_{io_.get_executor()};
  CallEnv env_;
  std::vector<std::unique_ptr<Caller>> calls_;  // owned here, so handlers may capture `this`
  Clock::duration call_length_{};               // zero: no churn
  std::mt19937_64 rng_;
  boost::asio::steady_timer housekeeping_timer_{io_};
  /// Ended calls and when they ended: freed a while later, when no handler can refer to them.
  std::vector<std::pair<Clock::time_point, std::unique_ptr<Caller>>> retired_;
  std::vector<Clock::time_point> delayed_;  // calls to place at these times
  std::thread thread_;
};

}  // namespace voxbridge::loadgen
