// The audio of a speech-to-speech agent's stream, both ways: which formats the stream carries,
// the caller's audio turned into what the agent takes, the agent's audio turned back into PCM at
// the internal rate, and the echo gate on the way to the agent.
//
// Formats: LINEAR16 at the configured input and output rates, or, when the agent takes the
// leg's own codec (SpeechAgentSpec::leg_codec) and the leg is G.711, MULAW or ALAW at 8000 Hz
// both ways. The G.711 bytes are re-encoded from the leg's decoded 8 kHz audio, which gives the
// leg's bytes back exactly (G.711 decode -> encode is the identity), except mu-law's negative
// zero 0x7F, which comes back as 0xFF (both are silence).
//
// Echo gate: while agent audio plays (and for echo_window after the playout queue ran dry), each
// 10 ms block of caller audio that is no louder than the echo of the agent's voice (the
// pipeline's louder_than_echo(), caller_listener.hpp) goes to the agent as silence of the same
// length, so the line's echo does not reach the agent's VAD; a caller speaking over the agent
// passes unchanged, and so does what follows it for 100 ms (a double-talk hangover: the quiet
// ends of the caller's syllables are not cut out of their words).
//
// One per call, owned by the speech agent, on the call's io thread. Buffers grow to the largest
// frame seen, then the per-frame calls allocate nothing; agent audio is bounded by the caller
// (the speech agent caps what it holds).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "voxbridge/audio/g711.hpp"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/common/v1/common.pb.h"
#include "voxbridge/pipeline/caller_listener.hpp"

namespace voxbridge::pipeline {

class AgentAudio {
 public:
  struct Options {
    int internal_rate_hz = 16000;
    int input_rate_hz = 16000;   ///< LINEAR16 sent to the agent
    int output_rate_hz = 16000;  ///< LINEAR16 asked of the agent
    int quality = 3;             ///< resampler quality
    bool leg_codec = false;      ///< a G.711 leg's own codec both ways
    bool echo_gate = true;
    double echo_ratio = 0.5;
    std::chrono::milliseconds echo_window{200};
  };

  explicit AgentAudio(const Options& options);

  /// Chooses the stream's formats, once, when it opens: `leg_codec` is what
  /// CallControl::caller_codec() says ("ulaw", "alaw", "slin"; empty = not known yet).
  void choose(std::string_view leg_codec);
  bool chosen() const { return output_.has_value(); }
  /// True if the stream carries G.711 (choose() saw a G.711 leg and leg_codec is on).
  bool g711() const { return law_.has_value(); }
  const common::v1::AudioFormat& input_format() const { return in_format_; }
  const common::v1::AudioFormat& output_format() const { return out_format_; }

  /// The caller's audio as the leg carries it (Agent::on_leg_audio, 8 kHz on a G.711 leg): if
  /// the agent takes the leg's codec, sets `bytes` to the message to send (valid until the next
  /// call) and returns true; false if this piece is not what the agent takes. `waiting`: agent
  /// audio samples still in the playout queue (CallControl::queued_samples()).
  bool caller_leg(std::span<const std::int16_t> leg, int rate_hz, std::size_t waiting,
                  std::string_view& bytes);
  /// The caller's audio at the internal rate (Agent::on_audio): as caller_leg(), when the agent
  /// takes LINEAR16.
  bool caller(std::span<const std::int16_t> internal, std::size_t waiting, std::string_view& bytes);
  /// Agent audio (bytes in output_format()) appended to `out` as PCM at the internal rate.
  void agent(std::string_view bytes, std::vector<std::int16_t>& out);
  /// Agent audio just handed to playout: the echo gate's far end.
  void played(std::span<const std::int16_t> audio) { far_.queued(audio); }
  /// The playout queue was flushed: the agent's audio starts afresh (no ringing of the old into
  /// the new), and there is no echo tail to gate.
  void cleared();
  /// 10 ms blocks of caller audio the echo gate turned to silence so far.
  std::uint64_t gated_blocks() const { return gated_; }

 private:
  /// Copies `x` into gate_buf_ with each 10 ms block (at `rate_hz`) that is only echo zeroed.
  std::span<const std::int16_t> gate(std::span<const std::int16_t> x, int rate_hz,
                                     std::size_t waiting);

  Options o_;
  std::optional<audio::G711Law> law_;  // set: the stream carries G.711
  std::optional<int> output_;          // the agent's rate, once chosen
  common::v1::AudioFormat in_format_, out_format_;
  audio::Resampler to_agent_;                   // internal -> input rate (LINEAR16)
  std::optional<audio::Resampler> from_agent_;  // output rate -> internal, once chosen
  FarEndPeaks far_;
  long tail_blocks_ = 0;  // 10 ms blocks the gate stays on after the queue ran dry
  long talk_blocks_ = 0;  // 10 ms blocks it stays open after the caller was heard over the agent
  std::uint64_t gated_ = 0;
  std::vector<std::int16_t> gate_buf_, pcm_;
  std::string bytes_;
};

}  // namespace voxbridge::pipeline
