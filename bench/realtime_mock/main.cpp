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
// What it measures for the benchmark, on CLOCK_MONOTONIC (steady_clock: the same clock as the
// load generator's on this machine):
// - per connection, the call's AudioSocket UUID, read from the session's instructions (the
//   benchmark's config says "call_id=<{call_id}>", which voxbridge fills in per call);
// - "deltas": when the first response.output_audio.delta of each response was handed to the
//   socket;
// - "onsets": when an input_audio_buffer.append arrived (the mock's read of the WebSocket
//   message, after TLS) whose audio holds the start of caller speech: a sample at or above
//   --onset-level after at least 100 ms of appends below it (the load generator's silence is
//   exact zeros).
// At SIGTERM or SIGINT it writes them with its own CPU time (getrusage) to --stamps FILE (JSON)
// and prints a one-line summary; SIGUSR1 prints the CPU time so far.
//
// Thread: main waits for signals; the mock's --threads io threads call the observer, each
// connection on its own strand, so a connection's record is written by one thread at a time
// and read by main only after the mock is destroyed (threads joined).
// Bounds: a connection keeps at most kMaxStamps deltas and onsets each.
#include <pthread.h>
#include <sys/resource.h>

#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "support/mock_realtime.hpp"
#include "voxbridge/audio/g711.hpp"

namespace {

using voxbridge::testing::MockRealtime;

constexpr std::size_t kMaxStamps = 100000;
constexpr std::string_view kIdTag = "call_id=<";

struct ConnStamps {
  std::string call_id;
  std::vector<std::int64_t> deltas;  // steady ns: first delta of each response
  std::vector<std::int64_t> onsets;  // steady ns: append carrying the start of caller speech
  double quiet_ms = 1e9;             // audio below the onset level since the last loud sample
  std::uint64_t appends = 0;
  std::uint64_t responses = 0;
};

class Stamps {
 public:
  ConnStamps& at(std::size_t conn) {
    std::lock_guard lock(mu_);
    while (conns_.size() <= conn) conns_.push_back(std::make_unique<ConnStamps>());
    return *conns_[conn];
  }
  /// After the mock is gone.
  const std::deque<std::unique_ptr<ConnStamps>>& all() const { return conns_; }

 private:
  std::mutex mu_;
  std::deque<std::unique_ptr<ConnStamps>> conns_;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Cpu {
  double user = 0, system = 0;
};
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

}  // namespace

int main(int argc, char** argv) {
  MockRealtime::Options o;
  o.record_appends = false;
  o.record_sent = false;
  o.max_kept_audio_bytes = 0;
  o.no_delay = true;  // else the mock's kernel holds deltas back under Nagle (bench/README.md)
  int reply_ms = 1000, onset_level = 64, port = 0;
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
      else if (a == "--model")
        o.model = v;
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
      else if (a == "--stamps")
        stamps_path = v;
      else
        ok = false;
    }
    if (!ok) {
      std::cerr << "voxbridge-realtime-mock: bad argument near '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  if (!ca_out.empty() && !o.tls) {
    std::cerr << "voxbridge-realtime-mock: --ca-out needs --tls\n";
    return 2;
  }
  o.port = static_cast<unsigned short>(port);

  Stamps stamps;
  o.observer.session = [&stamps](std::size_t conn, const boost::json::object& session) {
    const auto* ins = session.if_contains("instructions");
    if (!ins || !ins->is_string()) return;
    const std::string_view text = ins->as_string();
    const auto at = text.find(kIdTag);
    if (at == std::string_view::npos) return;
    const auto id = text.substr(at + kIdTag.size());
    stamps.at(conn).call_id = std::string(id.substr(0, std::min<std::size_t>(36, id.find('>'))));
  };
  o.observer.append = [&stamps, onset_level](std::size_t conn,
                                             const std::vector<std::uint8_t>& audio,
                                             const std::string& format) {
    const std::int64_t at = now_ns();
    auto& c = stamps.at(conn);
    ++c.appends;
    const bool pcm = format == "audio/pcm";
    const std::size_t samples = pcm ? audio.size() / 2 : audio.size();
    const double sample_ms = pcm ? 1.0 / 24.0 : 1.0 / 8.0;
    // The first loud sample's position, or samples if none.
    std::size_t loud = samples;
    for (std::size_t i = 0; i < samples && loud == samples; ++i) {
      int v = pcm ? static_cast<std::int16_t>(audio[2 * i] | (audio[2 * i + 1] << 8))
                  : (format == "audio/pcmu" ? voxbridge::audio::ulaw_to_linear(audio[i])
                                            : voxbridge::audio::alaw_to_linear(audio[i]));
      if (v < 0) v = -v;
      if (v >= onset_level) loud = i;
    }
    if (loud == samples) {
      c.quiet_ms += static_cast<double>(samples) * sample_ms;
      return;
    }
    if (c.quiet_ms + static_cast<double>(loud) * sample_ms >= 100.0 && c.onsets.size() < kMaxStamps)
      c.onsets.push_back(at);
    // Quiet from the last loud sample on.
    std::size_t last = samples;
    for (std::size_t i = samples; i-- > loud;) {
      int v = pcm ? static_cast<std::int16_t>(audio[2 * i] | (audio[2 * i + 1] << 8))
                  : (format == "audio/pcmu" ? voxbridge::audio::ulaw_to_linear(audio[i])
                                            : voxbridge::audio::alaw_to_linear(audio[i]));
      if (v < 0) v = -v;
      if (v >= onset_level) {
        last = i;
        break;
      }
    }
    c.quiet_ms = static_cast<double>(samples - 1 - last) * sample_ms;
  };
  o.observer.audio_delta = [&stamps](std::size_t conn, std::size_t chunk) {
    if (chunk != 0) return;
    const std::int64_t at = now_ns();
    auto& c = stamps.at(conn);
    ++c.responses;
    if (c.deltas.size() < kMaxStamps) c.deltas.push_back(at);
  };

  // Signals are taken by sigwait on this thread; the mock's threads inherit the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  const auto t0 = std::chrono::steady_clock::now();
  std::size_t connections = 0;
  {
    MockRealtime mock(o);
    mock.set_default_script(MockRealtime::Script::speech("Thanks for calling.", reply_ms));
    if (!ca_out.empty())
      std::filesystem::copy_file(mock.ca_file(), ca_out,
                                 std::filesystem::copy_options::overwrite_existing);
    std::printf("listening 127.0.0.1:%u%s\n", static_cast<unsigned>(mock.port()),
                o.tls ? " (tls)" : "");
    std::fflush(stdout);
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGUSR1) {
        const Cpu c = own_cpu();
        std::printf("cpu user %.3f s, system %.3f s, connections %zu open %zu\n", c.user, c.system,
                    mock.connection_count(), mock.open_count());
        std::fflush(stdout);
        continue;
      }
      break;
    }
    connections = mock.connection_count();
  }
  const Cpu cpu = own_cpu();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::size_t deltas = 0, onsets = 0;
  for (const auto& c : stamps.all()) {
    deltas += c->deltas.size();
    onsets += c->onsets.size();
  }
  std::printf(
      "voxbridge-realtime-mock: %zu connections, %zu responses timed, %zu speech onsets; cpu "
      "user %.3f s, system %.3f s over %.1f s (%.1f %% of a core)\n",
      connections, deltas, onsets, cpu.user, cpu.system, wall,
      100.0 * (cpu.user + cpu.system) / wall);
  if (!stamps_path.empty()) write_stamps(stamps_path, stamps, cpu, wall, connections);
  return 0;
}
