#include "voxbridge/vad/vad.hpp"

#include "voxbridge/audio/resampler.hpp"

#include <webrtc/modules/audio_processing/include/audio_processing.h>
#include <webrtc/modules/interface/module_common_types.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>

namespace voxbridge::vad {

namespace {
constexpr int kNarrowbandHz = 8000;
}

Vad::Vad(const VadOptions& o)
    : apm_(webrtc::AudioProcessing::Create()),
      frame_buf_(std::make_unique<webrtc::AudioFrame>()),
      frame_(static_cast<std::size_t>(o.rate_hz / 100)) {
  int analysis_hz = o.rate_hz;
  if (o.narrowband) {
    if (o.rate_hz < 8000 || o.rate_hz > 48000 || o.rate_hz % 100 != 0) {
      throw std::invalid_argument("VAD rate " + std::to_string(o.rate_hz) +
                                  " Hz: must be 8000 to 48000, whole 10 ms frames");
    }
    analysis_hz = kNarrowbandHz;
    if (o.rate_hz != kNarrowbandHz) {
      // Quality 3: the half-band filter for 16 kHz, SpeexDSP otherwise; its pass band covers
      // the telephone band the detector looks at.
      decimator_ = std::make_unique<audio::Resampler>(o.rate_hz, kNarrowbandHz, 3);
      decimated_.resize(decimator_->max_output(frame_) + kNarrowbandHz / 100);
    }
  } else if (o.rate_hz != 8000 && o.rate_hz != 16000 && o.rate_hz != 32000 && o.rate_hz != 48000) {
    throw std::invalid_argument("VAD rate " + std::to_string(o.rate_hz) +
                                " Hz: must be 8000, 16000, 32000 or 48000");
  }
  analysis_frame_ = static_cast<std::size_t>(analysis_hz / 100);
  apm_->high_pass_filter()->Enable(true);
  if (o.noise_suppression) {
    apm_->noise_suppression()->set_level(webrtc::NoiseSuppression::kModerate);
    apm_->noise_suppression()->Enable(true);
  }
  static constexpr webrtc::VoiceDetection::Likelihood kByAggressiveness[] = {
      webrtc::VoiceDetection::kHighLikelihood, webrtc::VoiceDetection::kModerateLikelihood,
      webrtc::VoiceDetection::kLowLikelihood, webrtc::VoiceDetection::kVeryLowLikelihood};
  apm_->voice_detection()->set_likelihood(kByAggressiveness[std::clamp(o.aggressiveness, 0, 3)]);
  apm_->voice_detection()->set_frame_size_ms(10);
  apm_->voice_detection()->Enable(true);
  frame_buf_->sample_rate_hz_ = analysis_hz;
  frame_buf_->num_channels_ = 1;
  frame_buf_->samples_per_channel_ = analysis_frame_;
}

Vad::~Vad() = default;

bool Vad::analyze(const std::int16_t* frame) {
  std::memcpy(frame_buf_->data_, frame, analysis_frame_ * sizeof(std::int16_t));
  frame_buf_->vad_activity_ = webrtc::AudioFrame::kVadUnknown;
  apm_->ProcessStream(frame_buf_.get());
  last_ = apm_->voice_detection()->stream_has_voice();
  return last_;
}

std::size_t Vad::process(std::span<const std::int16_t> samples) {
  std::size_t voiced = 0;
  for (std::size_t at = 0; at + frame_ <= samples.size(); at += frame_) {
    const auto in = samples.subspan(at, frame_);
    if (!decimator_) {
      if (analyze(in.data())) ++voiced;
      continue;
    }
    // Exact ratios give one analysis frame per input frame; 44.1 kHz gives 79 to 81
    // samples, so decisions are made as whole 10 ms frames fill up.
    pending_ +=
        decimator_->process(in, {decimated_.data() + pending_, decimated_.size() - pending_});
    std::size_t used = 0;
    while (pending_ - used >= analysis_frame_) {
      if (analyze(decimated_.data() + used)) ++voiced;
      used += analysis_frame_;
    }
    if (used > 0) {
      std::memmove(decimated_.data(), decimated_.data() + used,
                   (pending_ - used) * sizeof(std::int16_t));
      pending_ -= used;
    }
  }
  return voiced;
}

SpeechDetector::SpeechDetector(const DetectorOptions& o)
    : start_units_(std::max<int>(1, static_cast<int>(o.start_ms.count() / 10))),
      window_units_(std::min(64, start_units_ + 10)),
      end_units_(std::max<int>(1, static_cast<int>(o.end_silence_ms.count() / 10))) {}

SpeechDetector::Event SpeechDetector::update(bool voiced) {
  history_ = (history_ << 1) | (voiced ? 1u : 0u);
  if (!in_speech_) {
    const std::uint64_t mask =
        window_units_ >= 64 ? ~0ull : ((1ull << static_cast<unsigned>(window_units_)) - 1);
    if (voiced && std::popcount(history_ & mask) >= start_units_) {
      in_speech_ = true;
      silence_run_ = 0;
      // Speech began at the oldest voiced decision of the window.
      speech_units_ = static_cast<int>(std::bit_width(history_ & mask));
      return Event::started;
    }
    return Event::none;
  }
  ++speech_units_;
  silence_run_ = voiced ? 0 : silence_run_ + 1;
  if (silence_run_ >= end_units_) {
    in_speech_ = false;
    speech_units_ = 0;
    history_ = 0;
    return Event::ended;
  }
  return Event::none;
}

std::chrono::milliseconds SpeechDetector::speech_length() const {
  return std::chrono::milliseconds(in_speech_ ? speech_units_ * 10 : 0);
}

void SpeechDetector::reset() {
  history_ = 0;
  in_speech_ = false;
  silence_run_ = 0;
  speech_units_ = 0;
}

void PreRoll::push(std::span<const std::int16_t> samples) {
  const std::size_t cap = buf_.size();
  if (cap == 0) return;
  if (samples.size() >= cap) samples = samples.last(cap);
  for (const std::int16_t s : samples) {
    buf_[head_] = s;
    head_ = head_ + 1 == cap ? 0 : head_ + 1;
  }
  size_ = std::min(cap, size_ + samples.size());
}

void PreRoll::drain(std::vector<std::int16_t>& out) {
  out.resize(size_);
  const std::size_t cap = buf_.size();
  std::size_t from = (head_ + cap - size_) % (cap == 0 ? 1 : cap);
  for (std::size_t i = 0; i < size_; ++i) {
    out[i] = buf_[from];
    from = from + 1 == cap ? 0 : from + 1;
  }
  size_ = 0;
}

}  // namespace voxbridge::vad
