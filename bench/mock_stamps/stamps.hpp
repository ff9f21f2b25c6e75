// The stamps the benchmark mocks (bench/realtime_mock, bench/gemini_mock) keep for
// bench/run_load.py, on CLOCK_MONOTONIC (steady_clock: the same clock as the load generator's on
// this machine):
// - per connection, the call's AudioSocket UUID, read from the session's instructions (the
//   benchmark's config says "call_id=<{call_id}>", which voxbridge fills in per call);
// - "deltas": when the first audio message of each model response was handed to the socket;
// - "onsets": when an input audio message arrived (the mock's read of the WebSocket message,
//   after TLS) whose audio holds the start of caller speech: a sample at or above the onset
//   level after at least 100 ms of audio below it (the load generator's silence is exact zeros).
// At exit the mock writes them with its own CPU time (getrusage) as JSON (write_stamps).
// Also the command line both mocks share (parse_mock_args).
//
// Thread: at() may be called from any thread (one mutex); a ConnStamps is written by one
// thread at a time (the mock calls its observer on the connection's strand) and read by
// all() / write_stamps only once the mock is gone (its threads joined).
// Bounds: a connection keeps at most kMaxStamps deltas and onsets each.
#pragma once

#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace voxbridge::bench {

inline constexpr std::size_t kMaxStamps = 100000;

struct ConnStamps {
  std::string call_id;
  std::vector<std::int64_t> deltas;  // steady ns: first audio of each response
  std::vector<std::int64_t> onsets;  // steady ns: input audio carrying the start of caller speech
  double quiet_ms = 1e9;             // audio below the onset level since the last loud sample
  std::uint64_t appends = 0;
  std::uint64_t responses = 0;

  /// The call id from instructions holding "call_id=<ID>" (ID at most 36 characters); else kept.
  void take_call_id(std::string_view instructions);
  /// A response's first audio is being handed to the socket at `at_ns`.
  void response_started(std::int64_t at_ns);
  /// An input audio message read at `at_ns`: `samples` samples of `sample_ms` each, magnitudes
  /// from `magnitude(i)` (|sample|, linear 16-bit scale). Records an onset when the first
  /// sample >= `level` follows at least 100 ms below it.
  template <class Magnitude>
  void input_audio(std::int64_t at_ns, std::size_t samples, double sample_ms, int level,
                   Magnitude magnitude) {
    ++appends;
    std::size_t loud = samples;  // the first loud sample's position, or samples if none
    for (std::size_t i = 0; i < samples && loud == samples; ++i)
      if (magnitude(i) >= level) loud = i;
    if (loud == samples) {
      quiet_ms += static_cast<double>(samples) * sample_ms;
      return;
    }
    if (quiet_ms + static_cast<double>(loud) * sample_ms >= 100.0 && onsets.size() < kMaxStamps)
      onsets.push_back(at_ns);
    std::size_t last = loud;  // quiet from the last loud sample on
    for (std::size_t i = samples; i-- > loud;) {
      if (magnitude(i) >= level) {
        last = i;
        break;
      }
    }
    quiet_ms = static_cast<double>(samples - 1 - last) * sample_ms;
  }
};

class Stamps {
 public:
  ConnStamps& at(std::size_t conn);
  /// After the mock is gone.
  const std::deque<std::unique_ptr<ConnStamps>>& all() const { return conns_; }

 private:
  std::mutex mu_;
  std::deque<std::unique_ptr<ConnStamps>> conns_;
};

std::int64_t now_ns();

struct Cpu {
  double user = 0, system = 0;
};
/// This process's CPU time so far.
Cpu own_cpu();

/// A whole non-negative decimal number.
bool number(std::string_view s, int& out);

/// {"cpu_user_s", "cpu_system_s", "wall_s", "connections", "conns": [{"conn", "call_id",
/// "appends", "responses", "deltas", "onsets"}]}, as bench/run_load.py reads it.
void write_stamps(const std::string& path, const Stamps& stamps, const Cpu& cpu, double wall_s,
                  std::size_t connections);

/// The options both mocks take (see their usage text); defaults as set before parsing.
struct MockArgs {
  int port = 0;
  bool tls = false;
  std::string ca_out, api_key, stamps;
  int reply_ms = 1000, chunk_ms = 100, chunk_interval_ms = 20, threads = 1, onset_level = 64;
};
/// Parses argv into `args`; an option not shared goes to `extra(option, value)` (false: unknown
/// or bad). Returns -1 to go on, or the exit code: 0 after --help (usage printed), 2 on a bad
/// argument (said on stderr with the usage).
int parse_mock_args(int argc, char** argv, const char* name, const char* usage, MockArgs& args,
                    const std::function<bool(std::string_view, std::string_view)>& extra);

/// SIGINT, SIGTERM and SIGUSR1 blocked on this thread (call before starting the mock: its
/// threads inherit the mask), to be taken by wait_for_exit.
sigset_t block_exit_signals();

/// Waits for SIGINT or SIGTERM; on SIGUSR1 prints the CPU time so far and the mock's
/// connection_count() and open_count().
template <class Mock>
void wait_for_exit(const sigset_t& set, const Mock& mock) {
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig != SIGUSR1) return;
    const Cpu c = own_cpu();
    std::printf("cpu user %.3f s, system %.3f s, connections %zu open %zu\n", c.user, c.system,
                mock.connection_count(), mock.open_count());
    std::fflush(stdout);
  }
}

/// Prints "<name>: N connections, N responses timed, N speech onsets; cpu ..." to stdout.
void print_summary(const char* name, const Stamps& stamps, const Cpu& cpu, double wall_s,
                   std::size_t connections);

/// Runs `Mock` (MockRealtime or MockGeminiLive) with `o`, every response `args.reply_ms` of
/// tone, until SIGINT or SIGTERM; then prints the summary and writes args.stamps. Call from
/// main, before any other thread starts (the signals are blocked here). Returns main's code.
template <class Mock>
int serve(const char* name, const typename Mock::Options& o, const MockArgs& args,
          const Stamps& stamps) {
  const sigset_t set = block_exit_signals();
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t connections = 0;
  {
    Mock mock(o);
    mock.set_default_script(Mock::Script::speech("Thanks for calling.", args.reply_ms));
    if (!args.ca_out.empty())
      std::filesystem::copy_file(mock.ca_file(), args.ca_out,
                                 std::filesystem::copy_options::overwrite_existing);
    std::printf("listening 127.0.0.1:%u%s\n", static_cast<unsigned>(mock.port()),
                o.tls ? " (tls)" : "");
    std::fflush(stdout);
    wait_for_exit(set, mock);
    connections = mock.connection_count();
  }
  const Cpu cpu = own_cpu();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  print_summary(name, stamps, cpu, wall, connections);
  if (!args.stamps.empty()) write_stamps(args.stamps, stamps, cpu, wall, connections);
  return 0;
}

}  // namespace voxbridge::bench
