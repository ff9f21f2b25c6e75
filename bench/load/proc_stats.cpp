#include "proc_stats.hpp"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace voxbridge::loadgen {

namespace {

/// The fields of /proc/PID/stat this file needs.
struct StatLine {
  std::string name;
  pid_t ppid = 0;
  CpuTime cpu;
};

std::optional<StatLine> read_stat(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // Field 2, the command name in parentheses, may contain spaces: fields are counted after the
  // last ')'.
  const auto open = line.find('(');
  const auto close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  StatLine st;
  st.name = line.substr(open + 1, close - open - 1);
  std::istringstream fields(line.substr(close + 2));
  std::string state;
  std::string skip;
  fields >> state >> st.ppid;
  for (int field = 5; field < 14; ++field) fields >> skip;  // pgrp .. cmajflt
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  const auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  st.cpu = {static_cast<double>(utime) / ticks, static_cast<double>(stime) / ticks};
  return st;
}

}  // namespace

std::optional<CpuTime> process_cpu(pid_t pid) {
  auto st = read_stat("/proc/" + std::to_string(pid) + "/stat");
  if (!st) return std::nullopt;
  return st->cpu;
}

ProcessSnapshot all_processes() {
  ProcessSnapshot snap;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    pid_t pid = 0;
    auto [ptr, perr] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (perr != std::errc() || ptr != name.data() + name.size()) continue;
    if (auto st = read_stat(entry.path().string() + "/stat")) {
      // Kernel threads are children of kthreadd (pid 2).
      snap[pid] = {st->name, st->cpu.total(), pid == 2 || st->ppid == 2};
    }
  }
  return snap;
}

CpuCensus cpu_census(const ProcessSnapshot& before, const ProcessSnapshot& after, double seconds,
                     const std::vector<pid_t>& exclude) {
  CpuCensus c;
  std::unordered_map<std::string, double> others;  // by name: a test suite may fork many
  for (const auto& [pid, now] : after) {
    if (std::find(exclude.begin(), exclude.end(), pid) != exclude.end()) continue;
    const auto was = before.find(pid);
    const double used = now.cpu - (was != before.end() ? was->second.cpu : 0.0);
    const double percent = 100.0 * used / seconds;
    if (now.kernel_thread) {
      c.kernel_threads += percent;
    } else {
      c.other_processes += percent;
      others[now.name] += percent;
    }
  }
  std::vector<std::pair<std::string, double>> sorted(others.begin(), others.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& o : sorted) {
    if (c.top_others.size() == 3 || o.second < 0.5) break;
    c.top_others.push_back(o);
  }
  return c;
}

double own_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::optional<long> process_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long kib = 0;
      if (in >> kib) return kib;
      return std::nullopt;
    }
    in.ignore(4096, '\n');
  }
  return std::nullopt;
}

MachineCpu machine_cpu() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                     steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  const auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {static_cast<double>(user + nice + system + irq + softirq) / ticks,
          static_cast<double>(softirq) / ticks, static_cast<double>(steal) / ticks};
}

double load_average_1m() {
  std::ifstream in("/proc/loadavg");
  double one = 0;
  in >> one;
  return one;
}

std::string machine_description() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::string model = "unknown CPU";
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos && colon + 2 <= line.size()) model = line.substr(colon + 2);
      break;
    }
  }
  return model + " (" + std::to_string(std::thread::hardware_concurrency()) + " cores)";
}

}  // namespace voxbridge::loadgen
