// See stamps.hpp.
#include "stamps.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

namespace voxbridge::bench {

namespace {
constexpr std::string_view kIdTag = "call_id=<";
}

void ConnStamps::take_call_id(std::string_view text) {
  const auto at = text.find(kIdTag);
  if (at == std::string_view::npos) return;
  const auto id = text.substr(at + kIdTag.size());
  call_id = std::string(id.substr(0, std::min<std::size_t>(36, id.find('>'))));
}

void ConnStamps::response_started(std::int64_t at_ns) {
  ++responses;
  if (deltas.size() < kMaxStamps) deltas.push_back(at_ns);
}

ConnStamps& Stamps::at(std::size_t conn) {
  std::lock_guard lock(mu_);
  while (conns_.size() <= conn) conns_.push_back(std::make_unique<ConnStamps>());
  return *conns_[conn];
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Cpu own_cpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return {static_cast<double>(u.ru_utime.tv_sec) + static_cast<double>(u.ru_utime.tv_usec) / 1e6,
          static_cast<double>(u.ru_stime.tv_sec) + static_cast<double>(u.ru_stime.tv_usec) / 1e6};
}

bool number(std::string_view s, int& out) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && out >= 0;
}

void write_stamps(const std::string& path, const Stamps& stamps, const Cpu& cpu, double wall_s,
                  std::size_t connections) {
  std::ofstream f(path);
  f << "{\"cpu_user_s\": " << cpu.user << ", \"cpu_system_s\": " << cpu.system
    << ", \"wall_s\": " << wall_s << ", \"connections\": " << connections << ",\n \"conns\": [";
  bool first = true;
  std::size_t i = 0;
  for (const auto& c : stamps.all()) {
    f << (first ? "\n" : ",\n") << "  {\"conn\": " << i++ << ", \"call_id\": \"" << c->call_id
      << "\", \"appends\": " << c->appends << ", \"responses\": " << c->responses
      << ", \"deltas\": [";
    for (std::size_t k = 0; k < c->deltas.size(); ++k) f << (k ? "," : "") << c->deltas[k];
    f << "], \"onsets\": [";
    for (std::size_t k = 0; k < c->onsets.size(); ++k) f << (k ? "," : "") << c->onsets[k];
    f << "]}";
    first = false;
  }
  f << "\n ]}\n";
}

int parse_mock_args(int argc, char** argv, const char* name, const char* usage, MockArgs& args,
                    const std::function<bool(std::string_view, std::string_view)>& extra) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    bool ok = true;
    if (a == "--tls") {
      args.tls = true;
    } else if (a == "--help" || a == "-h") {
      std::cout << usage;
      return 0;
    } else if (i + 1 >= argc) {
      ok = false;
    } else {
      const std::string_view v = argv[++i];
      if (a == "--port")
        ok = number(v, args.port) && args.port <= 65535;
      else if (a == "--ca-out")
        args.ca_out = v;
      else if (a == "--api-key")
        args.api_key = v;
      else if (a == "--reply-ms")
        ok = number(v, args.reply_ms) && args.reply_ms > 0;
      else if (a == "--chunk-ms")
        ok = number(v, args.chunk_ms) && args.chunk_ms > 0;
      else if (a == "--chunk-interval-ms")
        ok = number(v, args.chunk_interval_ms);
      else if (a == "--threads")
        ok = number(v, args.threads) && args.threads > 0;
      else if (a == "--onset-level")
        ok = number(v, args.onset_level) && args.onset_level > 0;
      else if (a == "--stamps")
        args.stamps = v;
      else
        ok = extra(a, v);
    }
    if (!ok) {
      std::cerr << name << ": bad argument near '" << a << "'\n" << usage;
      return 2;
    }
  }
  if (!args.ca_out.empty() && !args.tls) {
    std::cerr << name << ": --ca-out needs --tls\n";
    return 2;
  }
  return -1;
}

sigset_t block_exit_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

void print_summary(const char* name, const Stamps& stamps, const Cpu& cpu, double wall_s,
                   std::size_t connections) {
  std::size_t deltas = 0, onsets = 0;
  for (const auto& c : stamps.all()) {
    deltas += c->deltas.size();
    onsets += c->onsets.size();
  }
  std::printf(
      "%s: %zu connections, %zu responses timed, %zu speech onsets; cpu user %.3f s, system "
      "%.3f s over %.1f s (%.1f %% of a core)\n",
      name, connections, deltas, onsets, cpu.user, cpu.system, wall_s,
      100.0 * (cpu.user + cpu.system) / wall_s);
}

}  // namespace voxbridge::bench
