// voxbridge-riva-mock: the tests' mock of an NVIDIA Riva server (tests/support/mock_riva.hpp:
// StreamingRecognize and SynthesizeOnline) as a process of its own, for load tests of
// voxbridge's Riva backend (bench/run_load.py --scenario riva; see bench/README.md).
//
// Behaviour: each recognition stream hears "hello" (the mock's default text) in the caller's
// speech, with interim results while it speaks and a final one after Riva's stop history (800 ms
// of silence); each sentence is answered with the mock's tone for its text (60 ms a character)
// at the rate asked, in 200 ms chunks at once, faster than real time as Riva sends it. The
// audio heard is not kept. At SIGTERM or SIGINT it prints its CPU time and exits; SIGUSR1 prints
// it so far.
//
// Thread: main waits for signals; gRPC's threads serve the streams.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "stamps.hpp"
#include "support/mock_riva.hpp"

namespace {

using voxbridge::testing::MockRiva;

const char* kUsage =
    "usage: voxbridge-riva-mock [options]\n"
    "  --port N             port on 127.0.0.1 (default 0: any; the port is printed)\n"
    "  --tls                TLS with a throwaway certificate for 127.0.0.1\n"
    "  --ca-out PATH        with --tls: write the certificate (the CA to trust) here\n"
    "  --voiced-rms N       a 20 ms block at or over this RMS is speech (default 500)\n";

}  // namespace

int main(int argc, char** argv) {
  MockRiva::Options o;
  o.keep_audio = false;
  voxbridge::bench::MockArgs args;
  const int rc = voxbridge::bench::parse_mock_args(
      argc, argv, "voxbridge-riva-mock", kUsage, args,
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
  o.api_key.clear();  // a self-hosted Riva: no NVCF metadata

  const sigset_t set = voxbridge::bench::block_exit_signals();
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t asr = 0, tts = 0;
  {
    MockRiva mock(o);
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
    asr = mock.asr_streams().size();
    tts = mock.tts_streams().size();
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto c = voxbridge::bench::own_cpu();
  std::printf(
      "voxbridge-riva-mock: %zu recognition and %zu synthesis streams in %.1f s; cpu user %.3f s, "
      "system %.3f s\n",
      asr, tts, wall, c.user, c.system);
  return 0;
}
