#include "test_signal.hpp"

#include "support/test_audio.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numbers>

namespace voxbridge::loadgen {
namespace {

// Tone: 400 Hz has a period of 20 samples, so 8 whole periods fill a frame and consecutive
// frames join without a click. Marker: 1 kHz (8 samples per period), starting at its peak so the
// onset is sharp; loud enough that no echo of the tone (or its resampling ripple) reaches half
// of it.
constexpr double kToneHz = 400.0;
constexpr double kToneAmplitude = 1000.0;  // about -30 dBFS
constexpr double kMarkerHz = 1000.0;
constexpr double kMarkerAmplitude = 16000.0;  // about -6 dBFS
constexpr int kMarkerThreshold = 8000;
constexpr int kAudibleThreshold = 200;

Message make_message(double hz, double amplitude, double phase) {
  std::array<std::uint8_t, kFrameBytes> payload{};
  for (std::size_t i = 0; i < kFrameSamples; ++i) {
    const double t = static_cast<double>(i) / kRateHz;
    const auto s = static_cast<std::int16_t>(
        std::lround(amplitude * std::sin(2.0 * std::numbers::pi * hz * t + phase)));
    const auto u = static_cast<std::uint16_t>(s);
    payload[2 * i] = static_cast<std::uint8_t>(u & 0xFF);
    payload[2 * i + 1] = static_cast<std::uint8_t>(u >> 8);
  }
  Message m{};
  audiosocket::encode(audiosocket::Kind::slin8, payload, m);
  return m;
}

}  // namespace

int frame_peak(std::span<const std::uint8_t> payload) {
  int peak = 0;
  for (std::size_t i = 0; i + 1 < payload.size(); i += 2) {
    int v = static_cast<std::int16_t>(payload[i] | (payload[i + 1] << 8));
    if (v < 0) v = -v;
    peak = std::max(peak, v);
  }
  return peak;
}

double frame_rms(std::span<const std::uint8_t> payload) {
  double e = 0;
  const std::size_t n = payload.size() / 2;
  for (std::size_t i = 0; i < n; ++i) {
    const auto s = static_cast<std::int16_t>(payload[2 * i] | payload[2 * i + 1] << 8);
    e += static_cast<double>(s) * s;
  }
  return n == 0 ? 0 : std::sqrt(e / static_cast<double>(n));
}

TestSignal TestSignal::make() {
  TestSignal t{make_message(kToneHz, kToneAmplitude, 0.0),
               make_message(kMarkerHz, kMarkerAmplitude, std::numbers::pi / 2),
               make_message(0.0, 0.0, 0.0),
               {}};
  // The tests' synthetic voice (WebRTC's VAD flags nearly all of it as speech), 1 s at 8 kHz.
  const std::vector<std::int16_t> voice = testing::voice(kRateHz, 1.0, 8000.0);
  std::array<std::uint8_t, kFrameBytes> payload{};
  for (std::size_t f = 0; f < 50; ++f) {
    long sum = 0;
    for (std::size_t i = 0; i < kFrameSamples; ++i) {
      const std::int16_t v = voice[f * kFrameSamples + i];
      const auto u = static_cast<std::uint16_t>(v);
      payload[2 * i] = static_cast<std::uint8_t>(u & 0xFF);
      payload[2 * i + 1] = static_cast<std::uint8_t>(u >> 8);
      sum += std::abs(v);
    }
    Message m{};
    audiosocket::encode(audiosocket::Kind::slin8, payload, m);
    if (sum / static_cast<long>(kFrameSamples) > 500) t.last_voiced = f;
    t.voice.push_back(m);
  }
  return t;
}

FrameAnalysis analyse_frame(std::span<const std::uint8_t> payload) {
  FrameAnalysis a;
  std::size_t run = 0;
  const std::size_t samples = payload.size() / 2;
  for (std::size_t i = 0; i < samples; ++i) {
    const int s = static_cast<std::int16_t>(payload[2 * i] | payload[2 * i + 1] << 8);
    const int mag = std::abs(s);
    if (s == 0) {
      if (++run > a.longest_zero_run) a.longest_zero_run = run;
    } else {
      run = 0;
    }
    if (mag >= kAudibleThreshold) a.audible = true;
    if (mag >= kMarkerThreshold && a.marker_onset < 0) a.marker_onset = static_cast<int>(i);
  }
  return a;
}

}  // namespace voxbridge::loadgen
