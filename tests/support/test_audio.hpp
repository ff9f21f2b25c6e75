// Deterministic test signals shared by the VAD and pipeline tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

namespace voxbridge::testing {

/// A vowel-like voice: harmonics of a gliding 110-140 Hz pitch shaped by three formants, in
/// syllables (2.5 per second). Peak around `level`.
inline std::vector<std::int16_t> voice(int rate, double seconds, double level = 8000.0) {
  std::vector<std::int16_t> v(static_cast<std::size_t>(rate * seconds));
  const double formants[] = {700, 1220, 2600};
  double phase = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double t = static_cast<double>(i) / rate;
    const double f0 = 125 + 15 * std::sin(2 * std::numbers::pi * 0.7 * t);
    phase += 2 * std::numbers::pi * f0 / rate;
    double s = 0;
    for (int h = 1; f0 * h < rate / 2.0 - 200 && h < 40; ++h) {
      double gain = 0;
      for (double f : formants) {
        const double d = (f0 * h - f) / 150.0;
        gain += 1.0 / (1.0 + d * d);
      }
      s += gain / h * std::sin(h * phase);
    }
    const double env = std::pow(std::abs(std::sin(2 * std::numbers::pi * 2.5 * t)), 0.5);
    v[i] = static_cast<std::int16_t>(std::clamp(level * 0.5 * s * env, -32768.0, 32767.0));
  }
  return v;
}

inline std::vector<std::int16_t> white_noise(int rate, double seconds, double rms,
                                             unsigned seed = 7) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> d(0.0, rms);
  std::vector<std::int16_t> v(static_cast<std::size_t>(rate * seconds));
  for (auto& s : v) s = static_cast<std::int16_t>(std::clamp(d(gen), -32768.0, 32767.0));
  return v;
}

/// Mains hum with its odd harmonics (50 Hz), as a bad line carries it.
inline std::vector<std::int16_t> hum(int rate, double seconds, double level) {
  std::vector<std::int16_t> v(static_cast<std::size_t>(rate * seconds));
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double t = static_cast<double>(i) / rate;
    double s = 0;
    for (int h = 1; h <= 7; h += 2) s += std::sin(2 * std::numbers::pi * 50 * h * t) / h;
    v[i] = static_cast<std::int16_t>(level * s);
  }
  return v;
}

inline std::vector<std::int16_t> silence(int rate, double seconds) {
  return std::vector<std::int16_t>(static_cast<std::size_t>(rate * seconds), 0);
}

inline void append(std::vector<std::int16_t>& to, const std::vector<std::int16_t>& more) {
  to.insert(to.end(), more.begin(), more.end());
}

/// RMS of x over [from_s, to_s) at `rate` (clipped to the signal).
inline double rms(const std::vector<std::int16_t>& x, int rate, double from_s, double to_s) {
  const auto a = std::min(x.size(), static_cast<std::size_t>(from_s * rate));
  const auto b = std::min(x.size(), static_cast<std::size_t>(to_s * rate));
  if (b <= a) return 0;
  double e = 0;
  for (std::size_t i = a; i < b; ++i) e += static_cast<double>(x[i]) * x[i];
  return std::sqrt(e / static_cast<double>(b - a));
}

/// Seconds from `from_s` to the first 20 ms block whose RMS exceeds `level` (-1 if none).
inline double onset_after(const std::vector<std::int16_t>& x, int rate, double from_s,
                          double level) {
  const auto block = static_cast<std::size_t>(rate / 50);
  for (auto i = static_cast<std::size_t>(from_s * rate); i + block <= x.size(); i += block) {
    const double t = static_cast<double>(i) / rate;
    if (rms(x, rate, t, t + 0.02) > level) return t - from_s;
  }
  return -1;
}

/// Seconds from `from_s` to the first 20 ms block whose RMS falls below `level`, or to the end
/// of `x` if none does.
inline double offset_after(const std::vector<std::int16_t>& x, int rate, double from_s,
                           double level) {
  const auto block = static_cast<std::size_t>(rate / 50);
  auto i = static_cast<std::size_t>(from_s * rate);
  for (; i + block <= x.size(); i += block) {
    const double t = static_cast<double>(i) / rate;
    if (rms(x, rate, t, t + 0.02) < level) return t - from_s;
  }
  return static_cast<double>(x.size()) / rate - from_s;
}

}  // namespace voxbridge::testing
