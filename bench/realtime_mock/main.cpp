// voxbridge-realtime-mock: the tests' OpenAI Realtime mock (tests/support/mock_realtime.hpp) as a
// process of its own, for load tests of voxbridge's Realtime backend (bench/run_load.py
// --scenario realtime; see bench/README.md).
//
// Behaviour: every response speaks --reply-ms of the mock's 440 Hz tone (sent 5x faster than
// real time, --chunk-ms per delta). voxbridge's greeting asks for the first; the mock's server
// VAD emulation answers each caller turn (voice, then the session's silence_duration_ms of
// silence). Nothing is recorded (record_appends / record_sent off, no audio kept), so memory
// does not grow with the run.
//
// What it measures for the benchmark (bench/mock_stamps/stamps.hpp), on CLOCK_MONOTONIC:
// - per connection, the call's AudioSocket UUID, read from the session's instructions;
// - "deltas": when the first response.output_audio.delta of each response was handed to the
//   socket;
// - "onsets": when an input_audio_buffer.append arrived whose audio holds the start of caller
//   speech: a sample at or above --onset-level after at least 100 ms of appends below it.
// At SIGTERM or SIGINT it writes them with its own CPU time (getrusage) to --stamps FILE (JSON)
// and prints a one-line summary; SIGUSR1 prints the CPU time so far.
//
// Thread: main waits for signals; the mock's --threads io threads call the observer, each
// connection on its own strand, so a connection's record is written by one thread at a time
// and read by main only after the mock is destroyed (threads joined).
// Bounds: a connection keeps at most bench::kMaxStamps deltas and onsets each.
#include <csignal>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "stamps.hpp"
#include "support/mock_realtime.hpp"
#include "voxbridge/audio/g711.hpp"

namespace {

using voxbridge::bench::Stamps;
using voxbridge::testing::MockRealtime;

const char* kUsage =
    "usage: voxbridge-realtime-mock [options]\n"
    "  --port N             port on 127.0.0.1 (default 0: any; the port is printed)\n"
    "  --tls                wss:// with a throwaway certificate for localhost\n"
    "  --ca-out PATH        with --tls: write the certificate (the CA to trust) here\n"
    "  --api-key KEY        the key clients must send (default sk-mock-0123456789)\n"
    "  --model NAME         the expected ?model= (default gpt-realtime)\n"
    "  --reply-ms MS        tone per response (default 1000)\n"
    "  --chunk-ms MS        audio per delta (default 100)\n"
    "  --chunk-interval-ms MS  between deltas (default 20)\n"
    "  --threads N          io threads (default 1)\n"
    "  --onset-level N      caller speech starts at a sample this loud (default 64)\n"
    "  --stamps FILE        at exit: CPU time and per-connection stamps as JSON\n";

}  // namespace

int main(int argc, char** argv) {
  MockRealtime::Options o;
  o.record_appends = false;
  o.record_sent = false;
  o.max_kept_audio_bytes = 0;
  o.no_delay = true;  // else the mock's kernel holds deltas back under Nagle (bench/README.md)
  voxbridge::bench::MockArgs args;
  args.api_key = o.api_key;
  args.chunk_ms = o.chunk_ms;
  args.chunk_interval_ms = o.chunk_interval_ms;
  const int rc =
      voxbridge::bench::parse_mock_args(argc, argv, "voxbridge-realtime-mock", kUsage, args,
                                        [&](std::string_view a, std::string_view v) {
                                          if (a != "--model") return false;
                                          o.model = v;
                                          return true;
                                        });
  if (rc >= 0) return rc;
  o.port = static_cast<unsigned short>(args.port);
  o.tls = args.tls;
  o.api_key = args.api_key;
  o.chunk_ms = args.chunk_ms;
  o.chunk_interval_ms = args.chunk_interval_ms;
  o.io_threads = args.threads;
  const int onset_level = args.onset_level;

  Stamps stamps;
  o.observer.session = [&stamps](std::size_t conn, const boost::json::object& session) {
    const auto* ins = session.if_contains("instructions");
    if (ins && ins->is_string()) stamps.at(conn).take_call_id(ins->as_string());
  };
  o.observer.append = [&stamps, onset_level](std::size_t conn,
                                             const std::vector<std::uint8_t>& audio,
                                             const std::string& format) {
    const std::int64_t at = voxbridge::bench::now_ns();
    auto& c = stamps.at(conn);
    if (format == "audio/pcm") {  // 24 kHz s16le
      c.input_audio(at, audio.size() / 2, 1.0 / 24.0, onset_level, [&audio](std::size_t i) {
        const int v = static_cast<std::int16_t>(audio[2 * i] | (audio[2 * i + 1] << 8));
        return v < 0 ? -v : v;
      });
      return;
    }
    const bool ulaw = format == "audio/pcmu";
    c.input_audio(at, audio.size(), 1.0 / 8.0, onset_level, [&audio, ulaw](std::size_t i) {
      const int v = ulaw ? voxbridge::audio::ulaw_to_linear(audio[i])
                         : voxbridge::audio::alaw_to_linear(audio[i]);
      return v < 0 ? -v : v;
    });
  };
  o.observer.audio_delta = [&stamps](std::size_t conn, std::size_t chunk) {
    if (chunk == 0) stamps.at(conn).response_started(voxbridge::bench::now_ns());
  };

  return voxbridge::bench::serve<MockRealtime>("voxbridge-realtime-mock", o, args, stamps);
}
