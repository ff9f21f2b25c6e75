// Command line of voxbridge-load.
#pragma once

#include <sys/types.h>
#include <cstdint>
#include <optional>
#include <string>

namespace voxbridge::loadgen {

/// What the callers do.
enum class Scenario {
  echo,          ///< a tone with a loud marker each second; the echo is measured (echo agent)
  conversation,  ///< 1 s of voice every 6 s; the time to the agent's reply is measured
  listen,        ///< voice all the time (a pipeline agent keeps an ASR stream open)
  dialogue,      ///< 1 s of voice once the agent has finished and paused: turn-taking
};

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 5001;
  std::size_t calls = 100;
  double ramp_calls_per_s = 100;  ///< mean rate of the (Poisson) call arrivals
  /// Length of the steady window (all calls up), in seconds.
  double duration_s = 30;
  /// Settling time between the last call connecting and the steady window, in seconds.
  double warmup_s = 2;
  std::size_t threads = 1;
  std::optional<pid_t> server_pid;
  std::string json_path;
  std::uint64_t seed = 1;
  bool progress = true;
  Scenario scenario = Scenario::echo;
  /// Call churn: each call hangs up this many seconds (+-20 %, uniformly) after it connected and
  /// a new call takes its place at once, so `calls` stay up. 0 = no churn (calls last the run).
  double call_seconds = 0;
  /// Conversation and dialogue: write each call's UUID, when each of its turns' first voice
  /// frame left and when each reply's first frame arrived, to this file (JSON) for a
  /// correlation with the other side's clock (bench/run_load.py --scenario realtime).
  std::string stamps_path;
};

/// Parses argv. Returns nullopt with `error` set on a bad command line, or with `error` empty
/// when --help was asked for (the usage text is then the answer).
std::optional<Options> parse_options(int argc, const char* const* argv, std::string& error);
std::string usage();

}  // namespace voxbridge::loadgen
