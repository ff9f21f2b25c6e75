#include "options.hpp"

#include <charconv>
#include <string_view>
#include <system_error>

namespace voxbridge::loadgen {
namespace {

template <typename T>
bool parse_number(std::string_view text, T& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

bool split_host_port(std::string_view text, std::string& host, unsigned short& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned value = 0;
  if (!parse_number(text.substr(colon + 1), value) || value == 0 || value > 65535) return false;
  host = std::string(h);
  port = static_cast<unsigned short>(value);
  return true;
}

}  // namespace

std::string usage() {
  return "usage: voxbridge-load [options]\n"
         "Places N concurrent AudioSocket calls the way Asterisk's dialplan app does (UUID, then\n"
         "320-byte slin8 frames every 20 ms) and measures the echo that comes back.\n"
         "\n"
         "  --to HOST:PORT        server to call (default 127.0.0.1:5001)\n"
         "  --calls N             concurrent calls (default 100)\n"
         "  --ramp CALLS_PER_S    mean rate of call arrivals (Poisson) while ramping up\n"
         "                        (default 100)\n"
         "  --duration S          steady window with every call up, seconds (default 30)\n"
         "  --warmup S            wait between the last connect and the window (default 2)\n"
         "  --threads N           io threads, one io_context each (default 1)\n"
         "  --server-pid PID      measure this process's CPU and RSS\n"
         "  --json FILE           also write the results as JSON\n"
         "  --seed N              seed for the per-call phases and UUIDs (default 1)\n"
         "  --scenario S          echo (default: tone + latency markers, against the echo\n"
         "                        agent), conversation (1 s of voice every 6 s; measures the\n"
         "                        reply's start after the end of speech, against a pipeline\n"
         "                        agent), listen (voice all the time: a live ASR stream per "
         "call),\n"
         "                        dialogue (turn-taking: 1 s of voice, then silence until the\n"
         "                        agent's reply has ended and 1 s has passed; for agents whose\n"
         "                        replies are long, like the offline receptionist)\n"
         "  --call-seconds S      call churn: each call hangs up S seconds (+-20 %) after it\n"
         "                        connected and a new call replaces it at once (a failed call\n"
         "                        after 1 s); default: calls last the whole run\n"
         "  --stamps FILE         conversation, dialogue: each call's UUID, the times its turns\n"
         "                        began to leave and its replies began to arrive (steady clock,\n"
         "                        ns; kernel receive stamps) as JSON, for bench/run_load.py\n"
         "  --no-progress         no live line on stderr\n"
         "\n"
         "Exit status: 0 on success, 1 if any connection failed, 2 on a bad command line.\n";
}

std::optional<Options> parse_options(int argc, const char* const* argv, std::string& error) {
  Options o;
  error.clear();
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return std::nullopt;
    if (arg == "--no-progress") {
      o.progress = false;
      continue;
    }
    if (i + 1 >= argc) {
      error = std::string(arg) + ": missing value (or unknown option)";
      return std::nullopt;
    }
    const std::string_view value = argv[++i];
    bool ok = true;
    if (arg == "--to") {
      ok = split_host_port(value, o.host, o.port);
    } else if (arg == "--calls") {
      ok = parse_number(value, o.calls) && o.calls > 0;
    } else if (arg == "--ramp") {
      ok = parse_number(value, o.ramp_calls_per_s) && o.ramp_calls_per_s > 0;
    } else if (arg == "--duration") {
      ok = parse_number(value, o.duration_s) && o.duration_s > 0;
    } else if (arg == "--warmup") {
      ok = parse_number(value, o.warmup_s) && o.warmup_s >= 0;
    } else if (arg == "--threads") {
      ok = parse_number(value, o.threads) && o.threads > 0 && o.threads <= 256;
    } else if (arg == "--server-pid") {
      pid_t pid = 0;
      ok = parse_number(value, pid) && pid > 0;
      o.server_pid = pid;
    } else if (arg == "--json") {
      o.json_path = std::string(value);
      ok = !o.json_path.empty();
    } else if (arg == "--stamps") {
      o.stamps_path = std::string(value);
      ok = !o.stamps_path.empty();
    } else if (arg == "--seed") {
      ok = parse_number(value, o.seed);
    } else if (arg == "--call-seconds") {
      ok = parse_number(value, o.call_seconds) && o.call_seconds > 0;
    } else if (arg == "--scenario") {
      if (value == "echo") {
        o.scenario = Scenario::echo;
      } else if (value == "conversation") {
        o.scenario = Scenario::conversation;
      } else if (value == "listen") {
        o.scenario = Scenario::listen;
      } else if (value == "dialogue") {
        o.scenario = Scenario::dialogue;
      } else {
        ok = false;
      }
    } else {
      error = "unknown option " + std::string(arg);
      return std::nullopt;
    }
    if (!ok) {
      error = std::string(arg) + ": bad value '" + std::string(value) + "'";
      return std::nullopt;
    }
  }
  return o;
}

}  // namespace voxbridge::loadgen
