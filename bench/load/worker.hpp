// One io thread of the load generator: its own io_context (nothing shared with the other
// threads but the read-only signal and window), the calls placed on it, and its totals.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "caller.hpp"

namespace voxbridge::loadgen {

class Worker {
 public:
  Worker(const boost::asio::ip::tcp::endpoint& server, const TestSignal& signal,
         const Window& window, Scenario scenario);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

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

  boost::asio::io_context io_{1};  // run by exactly one thread
  std::optional<WorkGuard> guard_;
  LiveCounters live_;
  Totals totals_;
  playout::PacingClock clock_{io_.get_executor()};
  CallEnv env_;
  std::vector<std::unique_ptr<Caller>> calls_;  // owned here, so handlers may capture `this`
  std::thread thread_;
};

}  // namespace voxbridge::loadgen
