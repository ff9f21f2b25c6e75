// What /proc says about a process and the machine (Linux only).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

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
/// Machine-wide CPU time from the first line of /proc/stat, in seconds summed over all cores.
struct MachineCpu {
  double busy = 0;     ///< user, nice, system, irq and softirq
  double softirq = 0;  ///< part of `busy` (network receive processing)
  double steal = 0;    ///< taken by the hypervisor for other guests
};
MachineCpu machine_cpu();
/// CPU time of every process visible in /proc, for telling apart what else ran during a window.
struct ProcessSample {
  std::string name;
  double cpu = 0;  ///< seconds, user + system
  bool kernel_thread = false;
};
using ProcessSnapshot = std::unordered_map<pid_t, ProcessSample>;
ProcessSnapshot all_processes();

/// Who else used the CPU between two snapshots (processes in `exclude` left out), in % of one
/// core. Kernel threads (ksoftirqd, kworker) mostly do the network work of the test itself;
/// other processes are disturbance.
struct CpuCensus {
  double kernel_threads = 0;
  double other_processes = 0;
  std::vector<std::pair<std::string, double>> top_others;  ///< largest first, at most 3
};
CpuCensus cpu_census(const ProcessSnapshot& before, const ProcessSnapshot& after, double seconds,
                     const std::vector<pid_t>& exclude);

/// The 1-minute load average.
double load_average_1m();
/// "AMD EPYC (2 cores)" from /proc/cpuinfo and the online CPU count.
std::string machine_description();

}  // namespace voxbridge::loadgen
