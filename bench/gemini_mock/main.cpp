// voxbridge-gemini-mock: the tests' Gemini Live mock (tests/support/mock_gemini_live.hpp) as a
// process of its own, for load tests of voxbridge's Gemini Live backend (bench/run_load.py
// --scenario gemini; see bench/README.md).
//
// Behaviour: every model turn speaks --reply-ms of the mock's 440 Hz tone at 24 kHz (sent 5x
// faster than real time, --chunk-ms per serverContent). The mock's activity detection answers
// each caller turn (voice, then the setup's silenceDurationMs of silence, default 500 ms);
// --voiced-rms sets its level (the load generator's synthetic voice has 20 ms blocks of RMS
// 330-1,080, so the benchmark passes 500: at the mock's default 1,000 it never hears a turn).
// Nothing is recorded (record_audio_messages, record_sent off, no audio kept), so memory does
// not grow with the run.
//
// What it measures for the benchmark (bench/mock_stamps/stamps.hpp), on CLOCK_MONOTONIC:
// - per connection, the call's AudioSocket UUID, read from the setup's systemInstruction text
//   (the benchmark's config says "call_id=<{call_id}>", which voxbridge fills in per call);
// - "deltas": when the first serverContent audio of each model turn was handed to the socket;
// - "onsets": when a realtimeInput arrived whose audio holds the start of caller speech: a
//   sample at or above --onset-level after at least 100 ms of audio below it.
// At SIGTERM or SIGINT it writes them with its own CPU time to --stamps FILE (JSON) and prints a
// one-line summary; SIGUSR1 prints the CPU time so far.
//
// Thread: main waits for signals; the mock's --threads io threads call the observer, each
// connection on its own strand (see stamps.hpp).
// Bounds: a connection keeps at most bench::kMaxStamps deltas and onsets each.
#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "stamps.hpp"
#include "support/mock_gemini_live.hpp"

namespace {

using voxbridge::bench::number;
using voxbridge::bench::Stamps;
using voxbridge::testing::MockGeminiLive;

const char* kUsage =
    "usage: voxbridge-gemini-mock [options]\n"
    "  --port N             port on 127.0.0.1 (default 0: any; the port is printed)\n"
    "  --tls                wss:// with a throwaway certificate for localhost\n"
    "  --ca-out PATH        with --tls: write the certificate (the CA to trust) here\n"
    "  --api-key KEY        the key clients must send (default AIzaMock-0123456789)\n"
    "  --reply-ms MS        tone per model turn (default 1000)\n"
    "  --chunk-ms MS        audio per serverContent (default 100)\n"
    "  --chunk-interval-ms MS  between two (default 20)\n"
    "  --threads N          io threads (default 1)\n"
    "  --onset-level N      caller speech starts at a sample this loud (default 64)\n"
    "  --voiced-rms N       activity detection: a 20 ms block this loud is voiced (default "
    "1000)\n"
    "  --stamps FILE        at exit: CPU time and per-connection stamps as JSON\n";

}  // namespace

int main(int argc, char** argv) {
  MockGeminiLive::Options o;
  o.record_audio_messages = false;
  o.record_sent = false;
  o.max_kept_audio_bytes = 0;
  o.no_delay = true;  // else the mock's kernel holds messages back under Nagle (bench/README.md)
  voxbridge::bench::MockArgs args;
  args.api_key = o.api_key;
  args.chunk_ms = o.chunk_ms;
  args.chunk_interval_ms = o.chunk_interval_ms;
  int voiced_rms = 1000;
  const int rc =
      voxbridge::bench::parse_mock_args(argc, argv, "voxbridge-gemini-mock", kUsage, args,
                                        [&](std::string_view a, std::string_view v) {
                                          if (a != "--voiced-rms") return false;
                                          return number(v, voiced_rms) && voiced_rms > 0;
                                        });
  if (rc >= 0) return rc;
  o.port = static_cast<unsigned short>(args.port);
  o.tls = args.tls;
  o.api_key = args.api_key;
  o.chunk_ms = args.chunk_ms;
  o.chunk_interval_ms = args.chunk_interval_ms;
  o.io_threads = args.threads;
  o.voiced_rms = voiced_rms;
  const int onset_level = args.onset_level;

  Stamps stamps;
  o.observer.setup = [&stamps](std::size_t conn, const boost::json::object& setup) {
    // systemInstruction: a Content, {"parts": [{"text": ...}, ...]} (checked by the mock).
    const auto* si = setup.if_contains("systemInstruction");
    if (!si || !si->is_object()) return;
    const auto* parts = si->as_object().if_contains("parts");
    if (!parts || !parts->is_array()) return;
    for (const auto& p : parts->as_array()) {
      const auto* t = p.is_object() ? p.as_object().if_contains("text") : nullptr;
      if (t && t->is_string()) stamps.at(conn).take_call_id(t->as_string());
    }
  };
  o.observer.input_audio = [&stamps, onset_level](std::size_t conn,
                                                  const std::vector<std::uint8_t>& pcm, int rate) {
    const std::int64_t at = voxbridge::bench::now_ns();
    stamps.at(conn).input_audio(
        at, pcm.size() / 2, 1000.0 / rate, onset_level, [&pcm](std::size_t i) {
          const int v = static_cast<std::int16_t>(pcm[2 * i] | (pcm[2 * i + 1] << 8));
          return v < 0 ? -v : v;
        });
  };
  o.observer.audio_chunk = [&stamps](std::size_t conn, std::size_t chunk) {
    if (chunk == 0) stamps.at(conn).response_started(voxbridge::bench::now_ns());
  };

  return voxbridge::bench::serve<MockGeminiLive>("voxbridge-gemini-mock", o, args, stamps);
}
