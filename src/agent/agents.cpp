#include <cmath>
#include <numbers>
#include <stdexcept>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/audio/wav.hpp"

namespace voxbridge::agent {
namespace {

/// Returns the caller's audio, optionally delayed; `hangup_digit` ends the call.
class EchoAgent final : public Agent {
 public:
  EchoAgent(const AgentSpec& spec, int rate_hz)
      : delay_samples_(static_cast<std::size_t>(rate_hz) *
                       static_cast<std::size_t>(spec.echo_delay.count()) / 1000),
        frame_samples_(static_cast<std::size_t>(rate_hz) / 50),
        trim_after_frames_(static_cast<std::uint32_t>(spec.echo_trim_after.count() / 20)),
        drop_late_(spec.echo_drop_late),
        hangup_digit_(spec.hangup_digit) {}

  void on_start(CallControl& control, const CallInfo&) override {
    control_ = &control;
    if (delay_samples_ > 0) started_ = false;
  }

  void on_audio(std::span<const std::int16_t> samples) override {
    if (control_ == nullptr || hanging_up_) return;
    if (!started_) {
      // The delay is silence queued ahead of the first echoed audio.
      std::int16_t zeros[160] = {};
      std::size_t left = delay_samples_;
      while (left > 0) {
        const std::size_t n = std::min<std::size_t>(left, 160);
        control_->play({zeros, n});
        left -= n;
      }
      started_ = true;
    }
    if (samples.size() != frame_samples_) whole_frames_ = false;
    samples_since_tick_ += samples.size();
    if (late_owed_ && whole_frames_ && samples_since_tick_ > frame_samples_) {
      // The tick before played silence where a frame of the caller's was due, and here it is,
      // late, with the next one: its slot is gone. Drop one so the echo stays on time instead
      // of running a frame behind until the trim.
      late_owed_ = false;
      ++dropped_late_;
      return;
    }
    if (trim_after_frames_ > 0) {
      if (control_->queued_samples() >= delay_samples_ + frame_samples_) {
        if (++standing_frames_ >= trim_after_frames_) {
          standing_frames_ = 0;
          ++trimmed_;
          return;  // drop this piece: the standing backlog shrinks by one frame
        }
      } else {
        standing_frames_ = 0;
      }
    }
    control_->play(samples);
  }

  void on_tick() override {
    if (control_ == nullptr) return;
    // This tick underran if nothing arrived since the last one and less than a frame was left.
    late_owed_ =
        drop_late_ && heard_ && samples_since_tick_ == 0 && queued_after_tick_ < frame_samples_;
    if (samples_since_tick_ > 0) heard_ = true;
    samples_since_tick_ = 0;
    queued_after_tick_ = control_->queued_samples();
  }

  void on_dtmf(char digit) override {
    if (control_ != nullptr && hangup_digit_ != '\0' && digit == hangup_digit_) {
      hanging_up_ = true;
      control_->flush();
      control_->hangup("hangup digit pressed", false);
    }
  }

  void on_end(std::string_view) override { control_ = nullptr; }

 private:
  CallControl* control_ = nullptr;
  std::size_t delay_samples_;
  std::size_t frame_samples_;
  std::uint32_t trim_after_frames_;
  std::uint32_t standing_frames_ = 0;
  std::uint64_t trimmed_ = 0;
  // Late frames (drop_late): audio since the last tick, what that tick left queued, whether
  // the caller has been heard and sends whole frames, and whether a late frame is owed.
  bool drop_late_;
  std::size_t samples_since_tick_ = 0;
  std::size_t queued_after_tick_ = 0;
  bool heard_ = false;
  bool whole_frames_ = true;
  bool late_owed_ = false;
  std::uint64_t dropped_late_ = 0;
  char hangup_digit_;
  bool started_ = true;
  bool hanging_up_ = false;
};

/// Plays a prompt (a WAV or a tone), then echoes, hangs up or stays silent.
class PlaybackAgent final : public Agent {
 public:
  PlaybackAgent(const AgentSpec& spec, int rate_hz,
                std::shared_ptr<const std::vector<std::int16_t>> prompt)
      : spec_(spec),
        prompt_(std::move(prompt)),
        pause_samples_(static_cast<std::size_t>(rate_hz) *
                       static_cast<std::size_t>(spec.pause.count()) / 1000),
        echo_(spec, rate_hz) {}

  void on_start(CallControl& control, const CallInfo& info) override {
    control_ = &control;
    echo_.on_start(control, info);
    feed();
  }
  void on_audio(std::span<const std::int16_t> samples) override {
    if (done_ && spec_.then == AgentSpec::Then::echo) echo_.on_audio(samples);
  }
  void on_dtmf(char digit) override { echo_.on_dtmf(digit); }
  void on_tick() override { feed(); }
  void on_end(std::string_view reason) override {
    echo_.on_end(reason);
    control_ = nullptr;
  }

 private:
  void feed() {
    if (control_ == nullptr || done_) return;
    const auto& p = *prompt_;
    while (pos_ < p.size() && !control_->playout_full()) {
      const std::size_t n = control_->play(std::span<const std::int16_t>(p).subspan(
          pos_, std::min<std::size_t>(p.size() - pos_, 320)));
      if (n == 0) return;
      pos_ += n;
    }
    if (pos_ < p.size()) return;
    std::int16_t zeros[160] = {};
    while (paused_ < pause_samples_ && !control_->playout_full()) {
      const std::size_t n =
          control_->play({zeros, std::min<std::size_t>(pause_samples_ - paused_, 160)});
      if (n == 0) return;
      paused_ += n;
    }
    if (paused_ < pause_samples_) return;
    done_ = true;
    if (spec_.then == AgentSpec::Then::hangup) control_->hangup("playback finished", true);
  }

  AgentSpec spec_;
  std::shared_ptr<const std::vector<std::int16_t>> prompt_;
  std::size_t pause_samples_;
  EchoAgent echo_;
  CallControl* control_ = nullptr;
  std::size_t pos_ = 0;
  std::size_t paused_ = 0;
  bool done_ = false;
};

}  // namespace

std::vector<std::int16_t> load_prompt(const std::string& file, int rate_hz, int quality) {
  std::string err;
  audio::WavData wav = audio::read_wav(file, err);
  if (!err.empty()) throw std::runtime_error(err);
  if (wav.rate_hz < 8000 || wav.rate_hz > 192000) {
    throw std::runtime_error(file + ": sample rate " + std::to_string(wav.rate_hz) +
                             " Hz is outside 8000..192000");
  }
  audio::Resampler rs(wav.rate_hz, rate_hz, quality);
  std::vector<std::int16_t> prompt(rs.max_output(wav.samples.size()) +
                                   static_cast<std::size_t>(rs.output_latency()));
  const std::size_t n = rs.process(wav.samples, prompt);
  // Push the filter's tail out with silence so the prompt's last milliseconds are not lost.
  std::vector<std::int16_t> tail_in(static_cast<std::size_t>(wav.rate_hz) / 100, 0);
  std::vector<std::int16_t> tail_out(rs.max_output(tail_in.size()));
  const std::size_t t = rs.process(tail_in, tail_out);
  prompt.resize(n);
  prompt.insert(prompt.end(), tail_out.begin(), tail_out.begin() + static_cast<std::ptrdiff_t>(t));
  return prompt;
}

AgentFactory::AgentFactory(AgentSpec spec, int internal_rate_hz, int resampler_quality)
    : spec_(std::move(spec)), rate_hz_(internal_rate_hz) {
  if (spec_.type != AgentSpec::Type::playback) return;
  std::vector<std::int16_t> prompt;
  if (!spec_.file.empty()) {
    try {
      prompt = load_prompt(spec_.file, rate_hz_, resampler_quality);
    } catch (const std::exception& e) {
      throw std::runtime_error("agent " + spec_.name + ": " + e.what());
    }
  } else {
    const auto n = static_cast<std::size_t>(rate_hz_) *
                   static_cast<std::size_t>(spec_.tone_duration.count()) / 1000;
    prompt.resize(n);
    const std::size_t ramp =
        static_cast<std::size_t>(rate_hz_) / 200;  // 5 ms fade in/out, no click
    for (std::size_t i = 0; i < n; ++i) {
      double gain = 1.0;
      if (i < ramp) gain = static_cast<double>(i) / static_cast<double>(ramp);
      if (n - i < ramp) gain = static_cast<double>(n - i) / static_cast<double>(ramp);
      prompt[i] = static_cast<std::int16_t>(std::lround(
          8000.0 * gain *
          std::sin(2.0 * std::numbers::pi * spec_.tone_hz * static_cast<double>(i) / rate_hz_)));
    }
  }
  prompt_ = std::make_shared<const std::vector<std::int16_t>>(std::move(prompt));
}

std::unique_ptr<Agent> AgentFactory::create() const {
  if (spec_.type == AgentSpec::Type::pipeline || spec_.type == AgentSpec::Type::speech) {
    throw std::logic_error("agent " + spec_.name + ": pipeline agents come from PipelineFactory");
  }
  if (spec_.type == AgentSpec::Type::playback) {
    return std::make_unique<PlaybackAgent>(spec_, rate_hz_, prompt_);
  }
  return std::make_unique<EchoAgent>(spec_, rate_hz_);
}

}  // namespace voxbridge::agent
