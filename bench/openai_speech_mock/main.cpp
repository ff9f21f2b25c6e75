// voxbridge-openai-speech-mock: the tests' mock of OpenAI's speech API
// (tests/support/mock_openai_speech.hpp) as a process of its own, for load tests of voxbridge's
// OpenAI-compatible recognizer and voice (bench/run_load.py --scenario openai-speech; see
// bench/README.md).
//
// Behaviour: every transcription answers "hello" at once (200, json); every speech answers the
// mock's tone for the text (60 ms a character, 24 kHz pcm) in 100 ms chunks at once, faster
// than real time as the services send it. The audio of the transcriptions is not kept, so
// memory grows only by a small record per request. At SIGTERM or SIGINT it prints its CPU time
// and exits; SIGUSR1 prints it so far.
//
// Thread: main waits for signals; the mock's --threads io threads serve the connections.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string_view>

#include "stamps.hpp"
#include "support/mock_openai_speech.hpp"

namespace {

using voxbridge::testing::MockOpenAiSpeech;

const char* kUsage =
    "usage: voxbridge-openai-speech-mock [options]\n"
    "  --port N             port on 127.0.0.1 (default 0: any; the port is printed)\n"
    "  --tls                https:// with a throwaway certificate for 127.0.0.1\n"
    "  --ca-out PATH        with --tls: write the certificate (the CA to trust) here\n"
    "  --api-key KEY        the key clients must send (default test-key)\n"
    "  --threads N          io threads (default 1)\n";

}  // namespace

int main(int argc, char** argv) {
  MockOpenAiSpeech::Options o;
  o.keep_audio = false;
  voxbridge::bench::MockArgs args;
  args.api_key = o.api_key;
  const int rc =
      voxbridge::bench::parse_mock_args(argc, argv, "voxbridge-openai-speech-mock", kUsage, args,
                                        [](std::string_view, std::string_view) { return false; });
  if (rc >= 0) return rc;
  o.port = static_cast<std::uint16_t>(args.port);
  o.tls = args.tls;
  o.api_key = args.api_key;
  o.threads = args.threads;

  const sigset_t set = voxbridge::bench::block_exit_signals();
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t connections = 0, requests = 0;
  {
    MockOpenAiSpeech mock(o);
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
      std::printf("cpu user %.3f s, system %.3f s, requests %zu\n", c.user, c.system,
                  mock.requests());
      std::fflush(stdout);
      if (sig != SIGUSR1) break;
    }
    connections = mock.connections();
    requests = mock.requests();
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto c = voxbridge::bench::own_cpu();
  std::printf(
      "voxbridge-openai-speech-mock: %zu connections, %zu requests in %.1f s; cpu user %.3f s, "
      "system %.3f s\n",
      connections, requests, wall, c.user, c.system);
  return 0;
}
