// Runs one load test from the main thread: ramps the calls up across the io threads, waits
// for them to settle, measures the steady window (our own and the server's CPU and RSS), prints
// a progress line once per second, then hangs up and collects the totals.
#pragma once

#include <memory>
#include <vector>

#include "options.hpp"
#include "report.hpp"
#include "worker.hpp"

namespace voxbridge::loadgen {

class Controller {
 public:
  Controller(const Options& options, const boost::asio::ip::tcp::endpoint& server);
  RunResult run();

 private:
  /// Sleeps until `until`, printing progress (and sampling the server) once per second.
  void wait_until(Clock::time_point until, const char* phase);
  void tick(const char* phase);
  std::uint64_t sum(std::atomic<std::uint64_t> LiveCounters::*counter) const;

  Options options_;
  TestSignal signal_;
  Window window_;
  std::vector<std::unique_ptr<Worker>> workers_;
  Clock::time_point started_;
  Clock::time_point next_tick_;
  // Previous progress sample, for per-second rates.
  Clock::time_point last_tick_;
  std::uint64_t last_sent_ = 0;
  std::uint64_t last_received_ = 0;
  double last_server_cpu_ = 0;
  double last_own_cpu_ = 0;
  double last_machine_busy_ = 0;
  long rss_max_kib_ = 0;
};

}  // namespace voxbridge::loadgen
