// voxbridge-vosk-mock: the tests' mock of a Vosk server (tests/support/mock_vosk.hpp:
// vosk.stt.v1.SttService/StreamingRecognize as vosk-server's grpc/stt_server.py answers it) as a
// process of its own, for load tests of voxbridge's Vosk backend (bench/run_load.py --scenario
// vosk; see bench/README.md).
//
// Behaviour: each stream hears "hello" (the mock's default text) in the caller's speech, a
// partial chunk per audio message while it speaks and a final chunk at Kaldi's endpoint (rule 2:
// 0.5 s of silence after speech), as vosk-server answers. The audio heard is not kept. At
// SIGTERM or SIGINT it prints its CPU time and exits; SIGUSR1 prints it so far.
//
// Thread: main waits for signals; gRPC's threads serve the streams.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string_view>

#include "stamps.hpp"
#include "support/mock_vosk.hpp"

namespace {

using voxbridge::testing::MockVosk;

const char* kUsage =
    "usage: voxbridge-vosk-mock [options]\n"
    "  --port N             port on 127.0.0.1 (default 0: any; the port is printed)\n"
    "  --tls                TLS with a throwaway certificate for 127.0.0.1\n"
    "  --ca-out PATH        with --tls: write the certificate (the CA to trust) here\n"
    "  --voiced-rms N       a 20 ms block at or over this RMS is speech (default 500)\n";

}  // namespace

int main(int argc, char** argv) {
  MockVosk::Options o;
  o.keep_audio = false;
  voxbridge::bench::MockArgs args;
  const int rc = voxbridge::bench::parse_mock_args(
      argc, argv, "voxbridge-vosk-mock", kUsage, args,
      [&o](std::string_view option, std::string_view value) {
        int n = 0;
        if (option != "--voiced-rms" || !voxbridge::bench::number(value, n) || n <= 0) {
          return false;
        }
        o.speech_rms = n;
        return true;
      });
  if (rc >= 0) return rc;
  o.port = static_cast<std::uint16_t>(args.port);
  o.tls = args.tls;

  const sigset_t set = voxbridge::bench::block_exit_signals();
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t streams = 0;
  {
    MockVosk mock(o);
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
      std::printf("cpu user %.3f s, system %.3f s\n", c.user, c.system);
      std::fflush(stdout);
      if (sig != SIGUSR1) break;
    }
    streams = mock.stream_count();
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto c = voxbridge::bench::own_cpu();
  std::printf("voxbridge-vosk-mock: %zu streams in %.1f s; cpu user %.3f s, system %.3f s\n",
              streams, wall, c.user, c.system);
  return 0;
}
