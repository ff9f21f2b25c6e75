#include "voxbridge/pipeline/caller_listener.hpp"

#include <algorithm>
#include <cstdlib>

namespace voxbridge::pipeline {

namespace {

/// A 10 ms block whose peak stays under this (-50 dBFS) holds no voice, whatever the VAD's
/// hangover says: digital silence, a muted phone, a quiet line.
constexpr std::int16_t kHushPeak = 100;

std::int16_t peak_of(std::span<const std::int16_t> x) {
  int p = 0;
  for (const std::int16_t s : x) p = std::max(p, std::abs(static_cast<int>(s)));
  return static_cast<std::int16_t>(std::min(p, 32767));
}

std::size_t word_count(std::string_view s) {
  std::size_t n = 0;
  bool in = false;
  for (char c : s) {
    const bool space = c == ' ' || c == '\t' || c == '\n';
    if (!space && !in) ++n;
    in = !space;
  }
  return n;
}

}  // namespace

FarEndPeaks::FarEndPeaks(int rate_hz)
    : n10_(static_cast<std::size_t>(rate_hz / 100)), peaks_(kBlocks, 0) {}

void FarEndPeaks::queued(std::span<const std::int16_t> audio) {
  for (const std::int16_t s : audio) {
    acc_ = std::max<int>(acc_, std::abs(static_cast<int>(s)));
    if (++fill_ == n10_) {
      peaks_[blocks_ % kBlocks] = static_cast<std::int16_t>(std::min(acc_, 32767));
      ++blocks_;
      fill_ = 0;
      acc_ = 0;
    }
  }
  total_ += audio.size();
}

std::int16_t FarEndPeaks::peak(std::size_t waiting, std::chrono::milliseconds window) const {
  // Blocks of 10 ms, indexed by their position in everything queued for playout; the one
  // playing now is (queued in total - still waiting) / block.
  const std::uint64_t playing = (total_ - std::min<std::uint64_t>(total_, waiting)) / n10_;
  const auto span = static_cast<std::uint64_t>(window.count() / 10);
  std::int16_t p = 0;
  for (std::uint64_t b = playing > span ? playing - span : 0; b <= playing && b < blocks_; ++b) {
    p = std::max(p, peaks_[b % kBlocks]);
  }
  return p;
}

bool louder_than_echo(std::span<const std::int16_t> block, const FarEndPeaks& far,
                      std::size_t waiting, double ratio, std::chrono::milliseconds window) {
  return peak_of(block) > ratio * far.peak(waiting, window);
}

CallerListener::CallerListener(const PipelineSpec& spec, int internal_rate_hz,
                               std::function<void()> started, std::function<void()> ended)
    : spec_(spec),
      rate_hz_(internal_rate_hz),
      n10_(static_cast<std::size_t>(internal_rate_hz / 100)),
      detector_(spec.detector),
      started_(std::move(started)),
      ended_(std::move(ended)) {}

vad::VadOptions CallerListener::vad_options(int rate_hz) const {
  return vad::VadOptions{rate_hz, spec_.vad.aggressiveness, spec_.vad.noise_suppression,
                         spec_.vad.narrowband};
}

void CallerListener::use_leg_rate(int rate) {
  const bool on_leg = spec_.vad.narrowband && rate == 8000;
  if (!vad_ || on_leg != vad_on_leg_) {
    vad_on_leg_ = on_leg;
    vad_.emplace(vad_options(on_leg ? rate : rate_hz_));
  }
}

CallerListener::Frame CallerListener::hear(std::span<const std::int16_t> leg,
                                           std::span<const std::int16_t> internal,
                                           bool agent_audible, const FarEndPeaks& far,
                                           std::size_t waiting) {
  if (!vad_) vad_.emplace(vad_options(rate_hz_));
  // The VAD takes the leg's own audio where its rate is the VAD's: no resampling there and
  // back (and none of its filter delay before the endpoint).
  const std::span<const std::int16_t> heard = vad_on_leg_ && !leg.empty() ? leg : internal;
  const std::size_t v10 = vad_->frame_samples();
  Frame f;
  for (std::size_t k = 0; (k + 1) * v10 <= heard.size(); ++k) {
    const auto block = heard.subspan(k * v10, v10);
    f.voiced = vad_->process(block) > 0;
    f.hushed = peak_of(block) < kHushPeak;
    if (f.voiced && agent_audible) {
      // Double talk or echo? The agent's own voice comes back from the line weaker than it
      // left; only the caller speaking over it passes (peaks at the internal rate, as the
      // agent's are kept).
      const std::size_t at = std::min(k * n10_, internal.size());
      f.voiced = louder_than_echo(internal.subspan(at, std::min(n10_, internal.size() - at)), far,
                                  waiting, spec_.echo_ratio, spec_.echo_window);
    }
    const auto ev = detector_.update(f.voiced);
    if (ev == vad::SpeechDetector::Event::started && started_) started_();
    if (ev == vad::SpeechDetector::Event::ended && ended_) ended_();
    // Barge-in counts the caller's voice heard over the agent, not speech that began before
    // the agent did (the endpointing silence of the previous utterance is still "speech").
    if (detector_.in_speech() && agent_audible) {
      if (f.voiced && overlap_units_++ == 0) overlap_started_ = Clock::now();
    } else {
      overlap_units_ = 0;
    }
  }
  return f;
}

bool CallerListener::barge_in_due() const {
  return spec_.barge_in && overlap_units_ * 10 >= spec_.barge_in_after.count();
}

bool CallerListener::barge_in_words(std::string_view interim) const {
  return spec_.barge_in && spec_.barge_in_words > 0 && word_count(interim) >= spec_.barge_in_words;
}

}  // namespace voxbridge::pipeline
