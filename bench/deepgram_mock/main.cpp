// voxbridge-deepgram-mock: the tests' Deepgram Live Audio mock (tests/support/mock_deepgram.hpp)
// as a process of its own, for load tests of voxbridge's Deepgram recognizer (bench/run_load.py
// --scenario deepgram; see bench/README.md).
//
// Behaviour: the mock's deterministic recognition (a 20 ms block at or above --voiced-rms is
// voiced; the load generator's voice has blocks of RMS 330-1,080, so the benchmark passes 250),
// every utterance "hello", each Results held --result-delay-ms (the service's own processing
// time, subtracted in the report). Nothing is recorded but counts, so memory does not grow with
// the run. At SIGTERM or SIGINT it prints its CPU time and exits; SIGUSR1 prints it so far.
//
// Thread: main waits for signals; the mock's --threads io threads serve the sockets.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string_view>

#include "stamps.hpp"
#include "support/mock_deepgram.hpp"

namespace {

using voxbridge::bench::number;
using voxbridge::testing::MockDeepgram;

const char* kUsage =
    "usage: voxbridge-deepgram-mock [options]\n"
    "  --port N             port on 127.0.0.1 (default 0: any; the port is printed)\n"
    "  --tls                wss:// with a throwaway certificate for localhost\n"
    "  --ca-out PATH        with --tls: write the certificate (the CA to trust) here\n"
    "  --api-key KEY        the key clients must send (default dg-test-key)\n"
    "  --threads N          io threads (default 1)\n"
    "  --voiced-rms N       a 20 ms block this loud is voiced (default 1000)\n"
    "  --result-delay-ms MS each Results held this long (default 0)\n";

}  // namespace

int main(int argc, char** argv) {
  MockDeepgram::Options o;
  o.record_messages = false;
  o.max_kept_audio_bytes = 0;
  o.no_delay = true;
  o.idle_timeout = std::chrono::milliseconds(600000);
  voxbridge::bench::MockArgs args;
  args.api_key = o.api_key;
  int voiced_rms = 1000;
  int result_delay_ms = 0;
  const int rc = voxbridge::bench::parse_mock_args(
      argc, argv, "voxbridge-deepgram-mock", kUsage, args,
      [&](std::string_view a, std::string_view v) {
        if (a == "--voiced-rms") return number(v, voiced_rms) && voiced_rms > 0;
        if (a == "--result-delay-ms") return number(v, result_delay_ms) && result_delay_ms >= 0;
        return false;
      });
  if (rc >= 0) return rc;
  o.port = static_cast<unsigned short>(args.port);
  o.tls = args.tls;
  o.api_key = args.api_key;
  o.io_threads = args.threads;
  o.voiced_rms = voiced_rms;
  o.result_delay = std::chrono::milliseconds(result_delay_ms);

  const sigset_t set = voxbridge::bench::block_exit_signals();
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t connections = 0;
  {
    MockDeepgram mock(o);
    if (!args.ca_out.empty()) {
      std::filesystem::copy_file(mock.ca_file(), args.ca_out,
                                 std::filesystem::copy_options::overwrite_existing);
    }
    std::printf("listening 127.0.0.1:%u%s\n", static_cast<unsigned>(mock.port()),
                o.tls ? " (tls)" : "");
    std::fflush(stdout);
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      const auto c = voxbridge::bench::own_cpu();
      std::printf("cpu user %.3f s, system %.3f s, open %zu\n", c.user, c.system,
                  mock.open_connections());
      std::fflush(stdout);
      if (sig != SIGUSR1) break;
    }
    connections = mock.connections().size();
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto c = voxbridge::bench::own_cpu();
  std::printf(
      "voxbridge-deepgram-mock: %zu connections in %.1f s; cpu user %.3f s, system %.3f s\n",
      connections, wall, c.user, c.system);
  return 0;
}
