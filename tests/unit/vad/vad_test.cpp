#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

#include "voxbridge/vad/vad.hpp"

namespace voxbridge::vad {
namespace {

using namespace std::chrono_literals;

/// A vowel-like voice: harmonics of a gliding 110-140 Hz pitch shaped by three formants, in
/// syllables of `syllable_ms` with short gaps. Peak around `level`.
std::vector<std::int16_t> voice(int rate, double seconds, double level = 8000.0) {
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

std::vector<std::int16_t> white_noise(int rate, double seconds, double rms, unsigned seed = 7) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> d(0.0, rms);
  std::vector<std::int16_t> v(static_cast<std::size_t>(rate * seconds));
  for (auto& s : v) s = static_cast<std::int16_t>(std::clamp(d(gen), -32768.0, 32767.0));
  return v;
}

/// Mains hum with its harmonics (50 Hz), as a bad line carries it.
std::vector<std::int16_t> hum(int rate, double seconds, double level) {
  std::vector<std::int16_t> v(static_cast<std::size_t>(rate * seconds));
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double t = static_cast<double>(i) / rate;
    double s = 0;
    for (int h = 1; h <= 7; h += 2) s += std::sin(2 * std::numbers::pi * 50 * h * t) / h;
    v[i] = static_cast<std::int16_t>(level * s);
  }
  return v;
}

double voiced_fraction(const std::vector<std::int16_t>& x, int rate, int aggressiveness = 2) {
  Vad vad({rate, aggressiveness, true});
  std::size_t voiced = 0, frames = 0;
  const std::size_t n = vad.frame_samples();
  for (std::size_t at = 0; at + n <= x.size(); at += n) {
    voiced += vad.process({x.data() + at, n});
    ++frames;
  }
  return static_cast<double>(voiced) / static_cast<double>(frames);
}

TEST(Vad, SilenceIsNotSpeech) {
  const std::vector<std::int16_t> zero(16000 * 2, 0);
  EXPECT_EQ(voiced_fraction(zero, 16000), 0.0);
}

TEST(Vad, AVoiceIsSpeechAtBothTelephoneRates) {
  for (int rate : {8000, 16000}) {
    const double f = voiced_fraction(voice(rate, 3.0), rate);
    EXPECT_GT(f, 0.9) << rate << " Hz";  // measured 0.98 (8 kHz) and 0.96 (16 kHz)
  }
}

TEST(Vad, LineNoiseIsNotSpeech) {
  // Steady noise of a bad line, at the default aggressiveness (2): white noise at -40 and
  // -30 dBFS (measured 2 % of 10 ms frames flagged) and mains hum at -20 dBFS (12 %). Louder
  // white noise (-20 dBFS) is flagged half the time; the speech detector's confirmation time
  // is what keeps such noise from starting speech (see BargeIn tests in the pipeline).
  for (double rms : {330.0, 1000.0}) {
    EXPECT_LT(voiced_fraction(white_noise(16000, 4.0, rms), 16000), 0.05) << "rms " << rms;
  }
  EXPECT_LT(voiced_fraction(hum(16000, 4.0, 3000), 16000), 0.2);
}

TEST(SpeechDetector, ConfirmsStartAfterEnoughVoicedTimeAndEndsAfterTheSilence) {
  SpeechDetector d({120ms, 300ms});
  // 11 voiced frames: not yet 120 ms.
  for (int i = 0; i < 11; ++i) EXPECT_EQ(d.update(true), SpeechDetector::Event::none) << i;
  EXPECT_EQ(d.update(true), SpeechDetector::Event::started);
  EXPECT_EQ(d.speech_length(), 120ms);
  // Short gaps (consonants) do not end it.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(d.update(i % 5 != 0), SpeechDetector::Event::none);
  for (int i = 0; i < 29; ++i) EXPECT_EQ(d.update(false), SpeechDetector::Event::none) << i;
  EXPECT_EQ(d.update(false), SpeechDetector::Event::ended);
  EXPECT_FALSE(d.in_speech());
}

TEST(SpeechDetector, ScatteredClicksNeverStartSpeech) {
  SpeechDetector d({120ms, 300ms});
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(d.update(i % 3 == 0), SpeechDetector::Event::none) << i;  // 1 in 3 voiced
  }
}

TEST(SpeechDetector, StartCountsFromTheFirstVoicedFrameOfTheWindow) {
  SpeechDetector d({100ms, 300ms});
  d.update(true);
  d.update(false);
  for (int i = 0; i < 8; ++i) d.update(true);
  EXPECT_EQ(d.update(true), SpeechDetector::Event::started);  // 10 voiced within 11 frames
  EXPECT_EQ(d.speech_length(), 110ms);
}

TEST(PreRoll, KeepsTheLastSamplesOldestFirst) {
  PreRoll p(5);
  const std::vector<std::int16_t> a{1, 2, 3}, b{4, 5, 6, 7};
  p.push(a);
  p.push(b);
  std::vector<std::int16_t> out;
  p.drain(out);
  EXPECT_EQ(out, (std::vector<std::int16_t>{3, 4, 5, 6, 7}));
  EXPECT_EQ(p.size(), 0u);
  const std::vector<std::int16_t> big{1, 2, 3, 4, 5, 6, 7, 8};
  p.push(big);
  p.drain(out);
  EXPECT_EQ(out, (std::vector<std::int16_t>{4, 5, 6, 7, 8}));
}

}  // namespace
}  // namespace voxbridge::vad
