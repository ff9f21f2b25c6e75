// The settings of one agent ([agent-NAME] section) as plain data: config fills it, the agent
// factories read it.
#pragma once

#include <chrono>
#include <string>

namespace voxbridge::agent {

/// Settings of the built-in agents (from an [agent-NAME] section).
struct AgentSpec {
  /// pipeline: the gRPC conversation pipeline (vb_pipeline builds it; its settings live in
  /// config::Config::pipelines under the same name).
  /// speech: one speech-to-speech gRPC agent stream (config::Config::speech_agents).
  enum class Type { echo, playback, pipeline, speech };
  std::string name = "echo";
  Type type = Type::echo;
  // echo
  std::chrono::milliseconds echo_delay{0};
  /// Echo only: a backlog of a whole frame or more beyond the delay that stands this long (the
  /// queue never drained below it) is trimmed by one frame, so a one-off stall cannot leave the
  /// echo permanently late. Backlog that comes and goes (jitter) is kept. 0 = never trim.
  std::chrono::milliseconds echo_trim_after{1000};
  /// Echo: a caller's frame that comes after its tick already played silence is dropped, so
  /// the echo does not run a frame behind from then on.
  bool echo_drop_late = false;
  char hangup_digit = '#';  ///< '\0' = none
  // playback
  std::string file;  ///< WAV; empty = tone
  int tone_hz = 440;
  std::chrono::milliseconds tone_duration{1000};
  enum class Then { echo, hangup, silence } then = Then::echo;
  std::chrono::milliseconds pause{0};  ///< silence after the prompt before echo/hangup
};

}  // namespace voxbridge::agent
