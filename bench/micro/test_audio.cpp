#include "test_audio.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

namespace voxbridge::micro {

std::vector<std::int16_t> speech_like(std::size_t samples, int rate_hz) {
  std::mt19937 rng(42);
  std::normal_distribution<double> noise(0.0, 300.0);
  std::vector<std::int16_t> out(samples);
  const double pitch = 140.0;  // a voice's fundamental, with decaying harmonics
  for (std::size_t i = 0; i < samples; ++i) {
    const double t = static_cast<double>(i) / rate_hz;
    double v = noise(rng);
    for (int h = 1; h <= 8; ++h) {
      v += 6000.0 / h * std::sin(2.0 * std::numbers::pi * pitch * h * t);
    }
    out[i] = static_cast<std::int16_t>(std::lround(std::clamp(v, -32768.0, 32767.0)));
  }
  return out;
}

std::vector<std::uint8_t> to_slin_bytes(const std::vector<std::int16_t>& samples) {
  std::vector<std::uint8_t> out;
  out.reserve(2 * samples.size());
  for (const auto s : samples) {
    const auto u = static_cast<std::uint16_t>(s);
    out.push_back(static_cast<std::uint8_t>(u & 0xFF));
    out.push_back(static_cast<std::uint8_t>(u >> 8));
  }
  return out;
}

}  // namespace voxbridge::micro
