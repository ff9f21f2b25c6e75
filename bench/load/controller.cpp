#include "controller.hpp"

#include <unistd.h>

#include <cstdio>
#include <random>
#include <thread>

#include "proc_stats.hpp"

namespace voxbridge::loadgen {
namespace {

using namespace std::chrono_literals;
constexpr auto kProgressPeriod = 1s;
/// How long stragglers may take to connect after the last connect was started.
constexpr auto kConnectGrace = 10s;

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

Controller::Controller(const Options& options, const boost::asio::ip::tcp::endpoint& server)
    : options_(options), signal_(TestSignal::make()) {
  for (std::size_t i = 0; i < options_.threads; ++i) {
    // With churn each thread draws its own calls' lengths, UUIDs and phases.
    const std::uint64_t seed = options_.seed ^ (0x9E3779B97F4A7C15ULL * (i + 1));
    workers_.push_back(std::make_unique<Worker>(server, signal_, window_, options.scenario,
                                                options.call_seconds, seed));
    if (!options.stamps_path.empty()) workers_.back()->record_stamps();
  }
}

std::uint64_t Controller::sum(std::atomic<std::uint64_t> LiveCounters::*counter) const {
  std::uint64_t n = 0;
  for (const auto& w : workers_) n += (w->live().*counter).load(std::memory_order_relaxed);
  return n;
}

void Controller::tick(const char* phase) {
  const auto now = Clock::now();
  const double dt = std::max(seconds(now - last_tick_), 1e-3);
  const std::uint64_t sent = sum(&LiveCounters::frames_sent);
  const std::uint64_t received = sum(&LiveCounters::frames_received);
  const double own = own_cpu_seconds();
  const MachineCpu machine = machine_cpu();
  double server_cpu = 0;
  std::string server = "";
  if (options_.server_pid) {
    const auto cpu = process_cpu(*options_.server_pid);
    const auto rss = process_rss_kib(*options_.server_pid);
    if (rss) rss_max_kib_ = std::max(rss_max_kib_, *rss);
    if (cpu && rss) {
      char buf[96];
      server_cpu = cpu->total() - last_server_cpu_;
      std::snprintf(buf, sizeof buf, " | server %5.1f%% cpu %7ld KiB", 100.0 * server_cpu / dt,
                    *rss);
      server = buf;
      last_server_cpu_ = cpu->total();
    } else {
      server = " | server gone";
    }
  }
  if (options_.progress) {
    char churn[48] = "";
    if (options_.call_seconds > 0) {
      std::snprintf(churn, sizeof churn, " done %llu",
                    static_cast<unsigned long long>(sum(&LiveCounters::completed)));
    }
    char line[360];
    std::snprintf(
        line, sizeof line,
        "[%6.1fs] %-6s up %zu/%zu%s fail %llu | tx %6.0f/s rx %6.0f/s | gaps>30ms %llu "
        "underruns %llu%s | self %5.1f%% | other %5.1f%% | load %.2f",
        seconds(now - started_), phase, static_cast<std::size_t>(sum(&LiveCounters::connected)),
        options_.calls, churn, static_cast<unsigned long long>(sum(&LiveCounters::failed)),
        static_cast<double>(sent - last_sent_) / dt,
        static_cast<double>(received - last_received_) / dt,
        static_cast<unsigned long long>(sum(&LiveCounters::long_gaps)),
        static_cast<unsigned long long>(sum(&LiveCounters::underrun_frames)), server.c_str(),
        100.0 * (own - last_own_cpu_) / dt,
        100.0 * (machine.busy - last_machine_busy_ - server_cpu - (own - last_own_cpu_)) / dt,
        load_average_1m());
    std::fprintf(stderr, "%s\n", line);
  }
  last_tick_ = now;
  last_sent_ = sent;
  last_received_ = received;
  last_own_cpu_ = own;
  last_machine_busy_ = machine.busy;
}

void Controller::wait_until(Clock::time_point until, const char* phase) {
  for (;;) {
    const auto now = Clock::now();
    if (now >= next_tick_) {
      tick(phase);
      next_tick_ += kProgressPeriod;
      continue;
    }
    if (now >= until) return;
    std::this_thread::sleep_until(std::min(until, next_tick_));
  }
}

RunResult Controller::run() {
  RunResult r;
  r.options = options_;
  r.machine = machine_description();
  r.load_before = load_average_1m();
  ServerUsage server;
  if (options_.server_pid) {
    server.pid = *options_.server_pid;
    server.rss_before_kib = process_rss_kib(server.pid).value_or(0);
    rss_max_kib_ = server.rss_before_kib;
    if (auto cpu = process_cpu(server.pid)) last_server_cpu_ = cpu->total();
  }
  started_ = last_tick_ = Clock::now();
  next_tick_ = started_ + kProgressPeriod;
  last_own_cpu_ = own_cpu_seconds();
  const MachineCpu machine_start = machine_cpu();
  last_machine_busy_ = machine_start.busy;
  for (auto& w : workers_) w->start();

  // Ramp: calls arrive as a Poisson process at the ramp rate, round-robin over the io threads.
  // Random arrival times matter: a server paces each call from its UUID, so calls connected at
  // a fixed interval (say every 5 ms) would share four pacing phases and let the server serve
  // them in batches, which real traffic never does.
  std::mt19937_64 rng(options_.seed);
  std::uniform_int_distribution<Clock::rep> phase(0, Clock::duration(kFramePeriod).count() - 1);
  std::exponential_distribution<double> gap(options_.ramp_calls_per_s);
  auto arrival = started_;
  for (std::size_t i = 0; i < options_.calls; ++i) {
    arrival += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng)));
    wait_until(arrival, "ramp");
    const auto uuid = random_uuid(rng);
    workers_[i % workers_.size()]->add_call(uuid, Clock::duration(phase(rng)));
  }
  const auto give_up = Clock::now() + kConnectGrace;
  while (sum(&LiveCounters::connected) + sum(&LiveCounters::failed) < options_.calls &&
         Clock::now() < give_up) {
    wait_until(Clock::now() + 10ms, "ramp");
  }
  wait_until(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(options_.warmup_s)),
             "warmup");

  // The steady window.
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(options_.duration_s));
  window_.set(start, end);
  r.window_start = start;
  r.window_end = end;
  const auto server_cpu0 = options_.server_pid ? process_cpu(server.pid) : std::nullopt;
  const double own0 = own_cpu_seconds();
  const MachineCpu machine0 = machine_cpu();
  const ProcessSnapshot processes0 = all_processes();
  wait_until(end, "steady");
  const auto server_cpu1 = options_.server_pid ? process_cpu(server.pid) : std::nullopt;
  const double own1 = own_cpu_seconds();
  const MachineCpu machine1 = machine_cpu();
  const ProcessSnapshot processes1 = all_processes();
  const auto measured_end = Clock::now();
  r.window_s = seconds(measured_end - start);
  r.own_cpu_percent = 100.0 * (own1 - own0) / r.window_s;
  if (options_.server_pid) {
    server.rss_end_kib = process_rss_kib(server.pid).value_or(0);
    server.rss_max_kib = std::max(rss_max_kib_, server.rss_end_kib);
    if (server_cpu0 && server_cpu1) {
      server.user_percent = 100.0 * (server_cpu1->user - server_cpu0->user) / r.window_s;
      server.system_percent = 100.0 * (server_cpu1->system - server_cpu0->system) / r.window_s;
      server.cpu_percent = server.user_percent + server.system_percent;
    }
    r.server = server;
  }
  r.machine_busy_percent = 100.0 * (machine1.busy - machine0.busy) / r.window_s;
  r.softirq_percent = 100.0 * (machine1.softirq - machine0.softirq) / r.window_s;
  r.steal_percent = 100.0 * (machine1.steal - machine0.steal) / r.window_s;
  // What was neither the server nor us, by the machine's counters: the softirq work of loopback
  // TCP that ran outside either process, or (negative) CPU the processes were charged that the
  // machine did not count. On this kind of VM /proc/stat's busy time is unreliable (it has read
  // 14 % busy while the two processes were charged 105 %), so it is reported, not judged.
  r.other_percent =
      r.machine_busy_percent - r.own_cpu_percent - (r.server ? r.server->cpu_percent : 0.0);
  std::vector<pid_t> ours{getpid()};
  if (options_.server_pid) ours.push_back(*options_.server_pid);
  const CpuCensus census = cpu_census(processes0, processes1, r.window_s, ours);
  r.kernel_threads_percent = census.kernel_threads;
  // The disturbance is what other processes were charged, counted process by process.
  r.disturbance_percent = census.other_processes;
  r.top_others = census.top_others;
  r.load_after = load_average_1m();

  for (auto& w : workers_) w->stop();
  for (auto& w : workers_) w->join();
  for (const auto& w : workers_) r.totals.merge(w->totals());
  return r;
}

}  // namespace voxbridge::loadgen
