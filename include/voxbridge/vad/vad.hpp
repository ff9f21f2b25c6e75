// Voice activity on the caller's audio: WebRTC's detector (from Debian's
// libwebrtc-audio-processing, with its high-pass filter and optional noise suppression in
// front), a speech detector that turns per-10 ms decisions into speech start / end with
// configurable confirmation and silence times, and a pre-roll buffer so the first syllable before
// the start was confirmed still reaches ASR. One instance per call, on its io thread; nothing
// here allocates after construction.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace webrtc {
class AudioProcessing;
class AudioFrame;
}  // namespace webrtc

namespace voxbridge::audio {
class Resampler;
}

namespace voxbridge::vad {

struct VadOptions {
  int rate_hz = 16000;  ///< of the audio given to process(): 8000 to 48000
  /// 0 (flags the most as speech) .. 3 (flags the least): WebRTC's likelihood setting reversed.
  int aggressiveness = 2;
  bool noise_suppression = true;
  /// Analyze the telephone band only: the audio is decimated to 8 kHz before the high-pass
  /// filter, noise suppression and detector. WebRTC's detector works at 8 kHz anyway, so its
  /// decisions barely change, and the noise suppressor costs half as much. When false, rates
  /// other than 8, 16, 32 and 48 kHz are refused.
  bool narrowband = true;
};

/// WebRTC voice detection on 10 ms frames.
class Vad {
 public:
  explicit Vad(const VadOptions& o);
  ~Vad();
  Vad(const Vad&) = delete;
  Vad& operator=(const Vad&) = delete;

  /// Samples per 10 ms frame (at VadOptions::rate_hz).
  std::size_t frame_samples() const { return frame_; }
  /// Classifies `samples` (a whole number of 10 ms frames); returns how many were voiced.
  std::size_t process(std::span<const std::int16_t> samples);
  /// The decision for the last 10 ms frame processed.
  bool last_voiced() const { return last_; }

 private:
  bool analyze(const std::int16_t* frame);

  std::unique_ptr<webrtc::AudioProcessing> apm_;
  std::unique_ptr<webrtc::AudioFrame> frame_buf_;
  std::size_t frame_;                            // input samples per 10 ms
  std::size_t analysis_frame_;                   // samples per 10 ms at the analysis rate
  std::unique_ptr<audio::Resampler> decimator_;  // to 8 kHz (narrowband), else null
  std::vector<std::int16_t> decimated_;          // decimator output, analysis frames pending
  std::size_t pending_ = 0;                      // samples of decimated_ not yet analyzed
  bool last_ = false;
};

/// Turns a stream of voiced / unvoiced 10 ms decisions into speech segments.
struct DetectorOptions {
  /// Voiced time within the last `start_ms + 100 ms` that confirms speech has started.
  std::chrono::milliseconds start_ms{120};
  /// Unvoiced time, in a row, that ends speech (the endpointing silence).
  std::chrono::milliseconds end_silence_ms{600};
};

class SpeechDetector {
 public:
  enum class Event { none, started, ended };
  explicit SpeechDetector(const DetectorOptions& o);
  /// One 10 ms decision.
  Event update(bool voiced);
  bool in_speech() const { return in_speech_; }
  /// Length of the current speech so far (0 outside speech), counted from its first voiced frame.
  std::chrono::milliseconds speech_length() const;
  void reset();

 private:
  int start_units_;
  int window_units_;
  int end_units_;
  std::uint64_t history_ = 0;  // last 64 decisions, newest in bit 0
  bool in_speech_ = false;
  int silence_run_ = 0;
  int speech_units_ = 0;
};

/// The last `capacity` samples, oldest first on read.
class PreRoll {
 public:
  explicit PreRoll(std::size_t capacity) : buf_(capacity) {}
  void push(std::span<const std::int16_t> samples);
  /// Copies the held samples, oldest first, into `out` (resized); then empties.
  void drain(std::vector<std::int16_t>& out);
  std::size_t size() const { return size_; }
  void clear() { size_ = 0; }

 private:
  std::vector<std::int16_t> buf_;
  std::size_t head_ = 0;  // next write position
  std::size_t size_ = 0;
};

}  // namespace voxbridge::vad
