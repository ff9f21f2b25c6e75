// The results of one run: the end-of-run table (stdout) and the JSON file (--json).
#pragma once

#include <sys/types.h>
#include <optional>
#include <ostream>
#include <string>

#include "metrics.hpp"
#include "options.hpp"

namespace voxbridge::loadgen {

/// The server's CPU and memory over the steady window (--server-pid).
struct ServerUsage {
  pid_t pid = 0;
  double cpu_percent = 0;  ///< of one core
  double user_percent = 0;
  double system_percent = 0;
  long rss_before_kib = 0;  ///< before the first call
  long rss_end_kib = 0;     ///< at the end of the window
  long rss_max_kib = 0;     ///< largest sample during the run
};

struct RunResult {
  Options options;
  std::string machine;
  double load_before = 0;  ///< 1-minute load average before the run
  double load_after = 0;
  double window_s = 0;                             ///< the steady window as measured
  Clock::time_point window_start{}, window_end{};  ///< the steady window as set
  Totals totals;
  std::optional<ServerUsage> server;
  double own_cpu_percent = 0;  ///< the load generator itself, of one core, over the window
  /// The whole machine over the window, in % of one core: busy by /proc/stat, with its softirq
  /// part; busy minus the server and us (unreliable on some VMs, so only reported); and, counted
  /// process by process, kernel threads (ksoftirqd, kworker: mostly this test's own network
  /// work) and the disturbance: every other process, the largest ones by name.
  double machine_busy_percent = 0;
  double other_percent = 0;
  double kernel_threads_percent = 0;
  double disturbance_percent = 0;
  std::vector<std::pair<std::string, double>> top_others;
  double softirq_percent = 0;
  double steal_percent = 0;
};

void print_table(std::ostream& out, const RunResult& r);
/// Writes the JSON; returns false (with `error`) if the file cannot be written.
bool write_json(const std::string& path, const RunResult& r, std::string& error);
/// --stamps: the window and every call's CallStamps (steady clock, ns), as JSON.
bool write_stamps(const std::string& path, const RunResult& r, std::string& error);

}  // namespace voxbridge::loadgen
