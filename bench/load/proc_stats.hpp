// What /proc says about a process and the machine (Linux only).
#pragma once

#include <sys/types.h>
#include <optional>
#include <string>

namespace voxbridge::loadgen {

/// CPU time a process has used, in seconds (all its threads).
struct CpuTime {
  double user = 0;
  double system = 0;
  double total() const { return user + system; }
};

/// utime + stime from /proc/PID/stat; nullopt if the process is gone.
std::optional<CpuTime> process_cpu(pid_t pid);
/// CPU time of this process (all threads), from the kernel's per-process clock.
double own_cpu_seconds();
/// VmRSS from /proc/PID/status in KiB; nullopt if the process is gone.
std::optional<long> process_rss_kib(pid_t pid);
/// The 1-minute load average.
double load_average_1m();
/// "AMD EPYC (2 cores)" from /proc/cpuinfo and the online CPU count.
std::string machine_description();

}  // namespace voxbridge::loadgen
