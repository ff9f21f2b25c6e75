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
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "stamps.hpp"
#include "support/mock_gemini_live.hpp"

namespace {

using voxbridge::bench::Cpu;
using voxbridge::bench::number;
using voxbridge::bench::own_cpu;
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
  int reply_ms = 1000, onset_level = 64, port = 0, voiced_rms = 1000;
  std::string ca_out, stamps_path;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const bool has = i + 1 < argc;
    bool ok = true;
    if (a == "--tls") {
      o.tls = true;
    } else if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (!has) {
      ok = false;
    } else {
      const std::string_view v = argv[++i];
      if (a == "--port")
        ok = number(v, port) && port <= 65535;
      else if (a == "--ca-out")
        ca_out = v;
      else if (a == "--api-key")
        o.api_key = v;
      else if (a == "--reply-ms")
        ok = number(v, reply_ms) && reply_ms > 0;
      else if (a == "--chunk-ms")
        ok = number(v, o.chunk_ms) && o.chunk_ms > 0;
      else if (a == "--chunk-interval-ms")
        ok = number(v, o.chunk_interval_ms);
      else if (a == "--threads")
        ok = number(v, o.io_threads) && o.io_threads > 0;
      else if (a == "--onset-level")
        ok = number(v, onset_level) && onset_level > 0;
      else if (a == "--voiced-rms")
        ok = number(v, voiced_rms) && voiced_rms > 0;
      else if (a == "--stamps")
        stamps_path = v;
      else
        ok = false;
    }
    if (!ok) {
      std::cerr << "voxbridge-gemini-mock: bad argument near '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  if (!ca_out.empty() && !o.tls) {
    std::cerr << "voxbridge-gemini-mock: --ca-out needs --tls\n";
    return 2;
  }
  o.port = static_cast<unsigned short>(port);
  o.voiced_rms = voiced_rms;

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

  // Signals are taken by sigwait on this thread; the mock's threads inherit the mask.
  const sigset_t set = voxbridge::bench::block_exit_signals();
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t connections = 0;
  {
    MockGeminiLive mock(o);
    mock.set_default_script(MockGeminiLive::Script::speech("Thanks for calling.", reply_ms));
    if (!ca_out.empty())
      std::filesystem::copy_file(mock.ca_file(), ca_out,
                                 std::filesystem::copy_options::overwrite_existing);
    std::printf("listening 127.0.0.1:%u%s\n", static_cast<unsigned>(mock.port()),
                o.tls ? " (tls)" : "");
    std::fflush(stdout);
    voxbridge::bench::wait_for_exit(set, mock);
    connections = mock.connection_count();
  }
  const Cpu cpu = own_cpu();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  voxbridge::bench::print_summary("voxbridge-gemini-mock", stamps, cpu, wall, connections);
  if (!stamps_path.empty())
    voxbridge::bench::write_stamps(stamps_path, stamps, cpu, wall, connections);
  return 0;
}
