// The pipeline's ears: voice activity (VAD with endpointing), the echo gate that tells the
// caller speaking over the agent from the agent's own voice coming back from the line, and the
// barge-in decision. One per call, on the call's io thread; hear() runs once per frame and
// allocates nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "voxbridge/pipeline/pipeline.hpp"
#include "voxbridge/vad/vad.hpp"

namespace voxbridge::pipeline {

/// Peaks of what the agent handed to playout, in 10 ms blocks in queue order (the last ten
/// seconds), so that the listener can compare the caller's level with the agent's at the block
/// playing now.
class FarEndPeaks {
 public:
  explicit FarEndPeaks(int rate_hz);
  /// Audio just handed to playout.
  void queued(std::span<const std::int16_t> audio);
  /// The highest peak of the `window` before the block playing now, `waiting` samples being
  /// still in the playout queue.
  std::int16_t peak(std::size_t waiting, std::chrono::milliseconds window) const;

 private:
  static constexpr std::size_t kBlocks = 1024;
  std::size_t n10_;
  std::vector<std::int16_t> peaks_;
  std::uint64_t blocks_ = 0;
  std::size_t fill_ = 0;
  int acc_ = 0;
  std::uint64_t total_ = 0;
};

/// The echo gate's decision for one block of caller audio (10 ms, at any rate) while the agent is
/// audible, a Geigel double-talk test: true if its peak exceeds `ratio` x the agent's peak over
/// the `window` before the block playing now (`waiting` samples still queued), i.e. the caller
/// speaks over the agent; false if it may be only the agent's own voice coming back from the
/// line, weaker than it left. Shared by the pipeline's listener and the speech-to-speech agent.
bool louder_than_echo(std::span<const std::int16_t> block, const FarEndPeaks& far,
                      std::size_t waiting, double ratio, std::chrono::milliseconds window);

class CallerListener {
 public:
  using Clock = std::chrono::steady_clock;

  /// What one frame held: the VAD's view of its last 10 ms block.
  struct Frame {
    bool voiced = false;  ///< voice (after the echo gate)
    bool hushed = false;  ///< below -50 dBFS: no voice whatever the VAD's hangover says
  };

  /// `started` and `ended` run inside hear(), in order, when the caller's speech is confirmed
  /// and when its endpointing silence has passed.
  CallerListener(const PipelineSpec& spec, int internal_rate_hz, std::function<void()> started,
                 std::function<void()> ended);

  /// The caller's leg carries `rate` (its first audio, or a format change): an 8 kHz leg is
  /// analysed as it is when the VAD works on the telephone band anyway.
  void use_leg_rate(int rate);
  /// One frame: `leg` as the leg carries it (may be empty) and `internal` the same audio at the
  /// internal rate. While `agent_audible`, voice counts only if it is louder than
  /// echo_ratio x the agent's peak (`far`, `waiting` samples still queued).
  Frame hear(std::span<const std::int16_t> leg, std::span<const std::int16_t> internal,
             bool agent_audible, const FarEndPeaks& far, std::size_t waiting);

  bool in_speech() const { return detector_.in_speech(); }
  /// The caller has spoken over the agent long enough to interrupt it (barge_in_after).
  bool barge_in_due() const;
  /// Or an interim transcript said over the agent has enough words (barge_in_words).
  bool barge_in_words(std::string_view interim) const;
  /// Voice heard over the agent so far, in ms, and when it began.
  long overlap_ms() const { return overlap_units_ * 10; }
  Clock::time_point overlap_started() const { return overlap_started_; }

 private:
  vad::VadOptions vad_options(int rate_hz) const;

  const PipelineSpec& spec_;
  int rate_hz_;
  std::size_t n10_;
  std::optional<vad::Vad> vad_;  // made at the first audio, at the rate it will hear
  bool vad_on_leg_ = false;      // it hears the leg's audio (8 kHz), not the internal rate's
  vad::SpeechDetector detector_;
  std::function<void()> started_, ended_;
  long overlap_units_ = 0;  // 10 ms blocks of voice over the agent
  Clock::time_point overlap_started_{};
};

}  // namespace voxbridge::pipeline
