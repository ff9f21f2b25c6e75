// What the simulated callers say and how the echo that comes back is judged.
//
// Every caller sends the same two 20 ms slin8 frames: a quiet 400 Hz tone (speech level, and
// never a run of zero samples) and, once per second, a loud 1 kHz burst, the latency marker. The
// server's DSP path resamples both ways, so the echo is not byte-identical; the marker is found
// again by amplitude, to the sample, and a run of zeros inside the tone means the server's
// playout ran dry (an underrun) while the caller was talking.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "voxbridge/audiosocket/protocol.hpp"

namespace voxbridge::loadgen {

inline constexpr int kRateHz = 8000;
inline constexpr std::chrono::milliseconds kFramePeriod{20};
inline constexpr std::size_t kFrameSamples = 160;
inline constexpr std::size_t kFrameBytes = 2 * kFrameSamples;
inline constexpr std::size_t kMessageBytes = audiosocket::kHeaderBytes + kFrameBytes;
/// One marker frame every this many frames (once per second).
inline constexpr std::uint64_t kMarkerEveryFrames = 50;
/// Duration of one sample, for placing the marker's onset inside a returned frame.
inline constexpr std::chrono::nanoseconds kSamplePeriod{1'000'000'000 / kRateHz};

using Message = std::array<std::uint8_t, kMessageBytes>;

/// The two complete kind-0x10 messages (header + payload) callers send; shared by all calls.
struct TestSignal {
  Message quiet;
  Message marker;
  Message silence;
  std::vector<Message> voice;  ///< 1 s of a synthetic voice (VAD says speech), 50 frames
  /// The last voice frame loud enough to count as speech (mean |sample| > 500, what the stub's
  /// ASR counts): the end of the caller's speech is the end of this frame.
  std::size_t last_voiced = 0;
  static TestSignal make();
};

/// Conversation scenario: a cycle of kCycleFrames frames, the first voice.size() of them voice.
inline constexpr std::uint64_t kCycleFrames = 300;  // 6 s
/// A returned frame this loud (RMS) is the agent speaking.
inline constexpr double kReplyRms = 1000.0;
/// Speech that ends within this time of the agent's last loud frame ended over the agent's
/// voice (the pauses between its words are shorter): what follows is not a new reply.
inline constexpr auto kAgentTalkingWithin = std::chrono::milliseconds(300);
/// Dialogue scenario: the caller speaks again once the agent has been quiet this long after
/// its reply, or once this long has passed without a reply.
inline constexpr auto kTurnPause = std::chrono::milliseconds(1000);
inline constexpr auto kReplyTimeout = std::chrono::seconds(10);
double frame_rms(std::span<const std::uint8_t> payload);
/// --stamps: a returned frame with a sample this loud, after this many quieter frames, starts a
/// reply (the agent's silence between replies is quieter; the mock's tone peaks at 8000).
inline constexpr int kReplyOnsetPeak = 500;
inline constexpr std::uint64_t kReplyOnsetQuietFrames = 5;
/// The largest |sample| of a slin payload.
int frame_peak(std::span<const std::uint8_t> payload);

/// What one returned frame holds.
struct FrameAnalysis {
  /// Index of the first sample at marker level, or -1 when the marker is not in this frame.
  int marker_onset = -1;
  /// Longest run of exactly-zero samples (padding the server inserted on an underrun).
  std::size_t longest_zero_run = 0;
  /// Any sample at speech level (the echo of the tone has begun).
  bool audible = false;
};

/// Judges a returned slin payload (16-bit little-endian samples).
FrameAnalysis analyse_frame(std::span<const std::uint8_t> payload);

/// A zero run this long (4 ms) inside the echo of continuous tone is an underrun.
inline constexpr std::size_t kUnderrunZeroRun = 32;

}  // namespace voxbridge::loadgen
