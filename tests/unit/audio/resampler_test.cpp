#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>
#include <utility>
#include <vector>

#include "support/test_audio.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/audio/resampler.hpp"

namespace voxbridge::audio {
namespace {

std::vector<std::int16_t> sine(double hz, int rate, std::size_t n, double amp = 10000.0) {
  std::vector<std::int16_t> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<std::int16_t>(
        std::lround(amp * std::sin(2.0 * std::numbers::pi * hz * static_cast<double>(i) / rate)));
  }
  return v;
}

std::vector<std::int16_t> run_in_frames(Resampler& rs, const std::vector<std::int16_t>& in,
                                        std::size_t frame) {
  std::vector<std::int16_t> out;
  std::vector<std::int16_t> buf(rs.max_output(frame));
  for (std::size_t i = 0; i < in.size(); i += frame) {
    const std::size_t n = std::min(frame, in.size() - i);
    const std::size_t m = rs.process({in.data() + i, n}, buf);
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(m));
  }
  return out;
}

/// The sine at `hz` that best fits y[from, to): a * sin + b * cos (least squares).
std::pair<double, double> fit_sine(const std::vector<std::int16_t>& y, double hz, int rate,
                                   std::size_t from, std::size_t to) {
  double ss = 0, sc = 0, cc = 0, ys = 0, yc = 0;
  for (std::size_t i = from; i < to; ++i) {
    const double w = 2.0 * std::numbers::pi * hz * static_cast<double>(i) / rate;
    const double s = std::sin(w), c = std::cos(w);
    ss += s * s;
    cc += c * c;
    sc += s * c;
    ys += y[i] * s;
    yc += y[i] * c;
  }
  const double det = ss * cc - sc * sc;
  return {(ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det};
}

/// Amplitude of the component at `hz` in y[from, to).
double amplitude_at(const std::vector<std::int16_t>& y, double hz, int rate, std::size_t from,
                    std::size_t to) {
  const auto [a, b] = fit_sine(y, hz, rate, from, to);
  return std::hypot(a, b);
}

/// SNR of `y` against the best-fitting sine at `hz` (amplitude and phase fitted by least squares).
double snr_against_sine(const std::vector<std::int16_t>& y, double hz, int rate, std::size_t from,
                        std::size_t to) {
  const auto [a, b] = fit_sine(y, hz, rate, from, to);
  double sig = 0, noise = 0;
  for (std::size_t i = from; i < to; ++i) {
    const double w = 2.0 * std::numbers::pi * hz * static_cast<double>(i) / rate;
    const double fit = a * std::sin(w) + b * std::cos(w);
    sig += fit * fit;
    noise += (y[i] - fit) * (y[i] - fit);
  }
  return 10.0 * std::log10(sig / std::max(noise, 1e-9));
}

TEST(Resampler, OneKilohertzSurvives8To16To8WithSnrAbove40dB) {
  for (int quality : {0, 2, 5, 6, 8}) {        // 2 is voxbridge's default; 6+ is SpeexDSP
    const auto in = sine(1000.0, 8000, 8000);  // 1 s
    Resampler up(8000, 16000, quality), down(16000, 8000, quality, false);
    const auto mid = run_in_frames(up, in, 160);
    const auto out = run_in_frames(down, mid, 320);
    ASSERT_GT(out.size(), 7000u);
    // Skip the filters' start-up (their delay), then judge a steady 0.5 s window: the frequency
    // is the fitted one, so a high SNR also proves the tone kept its frequency.
    const double snr = snr_against_sine(out, 1000.0, 8000, 1000, 5000);
    EXPECT_GE(snr, 40.0) << "quality " << quality << ": SNR " << snr << " dB";
    // Level preserved within 0.5 dB.
    double e_in = 0, e_out = 0;
    for (std::size_t i = 1000; i < 5000; ++i) {
      e_in += double(in[i]) * in[i];
      e_out += double(out[i]) * out[i];
    }
    EXPECT_NEAR(10 * std::log10(e_out / e_in), 0.0, 0.5) << "quality " << quality;
  }
}

TEST(Resampler, TwoToOneRatiosUseTheHalfBandFilterUpToItsQuality) {
  EXPECT_TRUE(Resampler(8000, 16000, 2).uses_half_band());
  EXPECT_TRUE(Resampler(16000, 8000, 2, false).uses_half_band());
  EXPECT_TRUE(Resampler(24000, 48000, 0).uses_half_band());
  EXPECT_TRUE(Resampler(32000, 16000, Resampler::kHalfBandMaxQuality).uses_half_band());
  EXPECT_FALSE(Resampler(8000, 16000, Resampler::kHalfBandMaxQuality + 1).uses_half_band());
  EXPECT_FALSE(Resampler(8000, 24000, 2).uses_half_band());
  EXPECT_FALSE(Resampler(16000, 16000, 2).uses_half_band());
}

TEST(Resampler, HalfBandUpsamplingKeepsEveryInputSampleExactly) {
  // Every second output of a half-band interpolator is the input sample itself, bit for bit,
  // delayed by the filter (output_latency() output samples); the others lie in between.
  const auto in = sine(1234.0, 8000, 1600, 12000.0);
  Resampler up(8000, 16000, 2, false);
  const auto out = run_in_frames(up, in, 160);
  ASSERT_EQ(out.size(), 2 * in.size());
  const auto delay = static_cast<std::size_t>(up.output_latency());
  ASSERT_EQ(delay % 2, 0u);
  for (std::size_t n = 0; 2 * n + delay < out.size(); ++n) {
    ASSERT_EQ(out[2 * n + delay], in[n]) << "input sample " << n;
  }
  for (std::size_t i = 0; i < delay; i += 2) EXPECT_EQ(out[i], 0) << i;  // the zero history
}

TEST(Resampler, HalfBandPassesTheTelephoneBandAndRejectsImagesAndAliases) {
  // Up, 8 -> 16 kHz: a 3.4 kHz tone keeps its level (within 0.05 dB); its image at 4.6 kHz
  // is at least 65 dB down.
  {
    const auto in = sine(3400.0, 8000, 8000, 16000.0);
    Resampler up(8000, 16000, 2);
    const auto out = run_in_frames(up, in, 160);
    const double kept = amplitude_at(out, 3400.0, 16000, 2000, 14000);
    const double image = amplitude_at(out, 4600.0, 16000, 2000, 14000);
    EXPECT_NEAR(20 * std::log10(kept / 16000.0), 0.0, 0.05);
    EXPECT_LT(20 * std::log10(image / 16000.0), -65.0);
  }
  // Down, 16 -> 8 kHz: a 5 kHz tone (above the new Nyquist) would alias to 3 kHz; it is at
  // least 65 dB down, while a 3 kHz tone passes at its level.
  for (const double hz : {5000.0, 3000.0}) {
    const auto in = sine(hz, 16000, 16000, 16000.0);
    Resampler down(16000, 8000, 2, false);
    const auto out = run_in_frames(down, in, 320);
    const double at3k = amplitude_at(out, 3000.0, 8000, 1000, 7000);
    if (hz == 5000.0) {
      EXPECT_LT(20 * std::log10(at3k / 16000.0), -65.0);
    } else {
      EXPECT_NEAR(20 * std::log10(at3k / 16000.0), 0.0, 0.05);
    }
  }
}

TEST(Resampler, HalfBandDownsamplingDelayIsTheReportedLatency) {
  // An impulse comes out centred (largest sample) exactly output_latency() samples later.
  std::vector<std::int16_t> in(640, 0);
  in[100] = 20000;
  Resampler down(16000, 8000, 2, false);
  const auto out = run_in_frames(down, in, 320);
  ASSERT_EQ(out.size(), 320u);
  const auto peak =
      static_cast<std::size_t>(std::max_element(out.begin(), out.end()) - out.begin());
  EXPECT_EQ(peak, 50u + static_cast<std::size_t>(down.output_latency()));
  EXPECT_EQ(out[peak], 10000);  // the centre tap is one half
}

TEST(Resampler, WrongFrequencyGivesLowSnr) {
  // The SNR measure is not trivially high: against a 1.1 kHz reference the same audio fails.
  const auto in = sine(1000.0, 8000, 8000);
  EXPECT_LT(snr_against_sine(in, 1100.0, 8000, 1000, 5000), 3.0);
}

TEST(Resampler, FrameBoundariesAreSeamless) {
  // The same stream cut into 20 ms frames or 7-sample pieces gives exactly the same samples as
  // one call: state carries across frames, so there is nothing at the edges to click.
  const auto in = sine(440.0, 8000, 4000);
  Resampler whole(8000, 16000, 3), framed(8000, 16000, 3), odd(8000, 16000, 3);
  const auto a = run_in_frames(whole, in, in.size());
  const auto b = run_in_frames(framed, in, 160);
  const auto c = run_in_frames(odd, in, 7);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(a.size(), c.size());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  // And the output has no jumps: the largest step between neighbours stays that of a 440 Hz sine.
  int max_step = 0;
  for (std::size_t i = 100; i < b.size(); ++i)
    max_step = std::max(max_step, std::abs(b[i] - b[i - 1]));
  EXPECT_LT(max_step, 10000 * 2 * std::numbers::pi * 440 / 16000 * 1.1);
}

TEST(Resampler, WithoutSkippingZerosOutputsExactlyTheRatioPerFrame) {
  for (int rate : {8000, 12000, 16000, 24000, 32000, 44100, 48000}) {
    Resampler rs(16000, rate, 3, false);
    std::vector<std::int16_t> in(320, 100), out(rs.max_output(320));
    for (int f = 0; f < 10; ++f) {
      EXPECT_EQ(rs.process(in, out), static_cast<std::size_t>(rate / 50)) << rate;
    }
  }
}

TEST(Resampler, EqualRatesCopy) {
  Resampler rs(16000, 16000, 3);
  const std::vector<std::int16_t> in{1, -2, 3, -4};
  std::vector<std::int16_t> out(4);
  EXPECT_EQ(rs.process(in, out), 4u);
  EXPECT_EQ(out, in);
}

TEST(Resampler, SupportsEveryAudioSocketRate) {
  const int rates[] = {8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000};
  for (int from : rates) {
    for (int to : {8000, 16000, 24000, 48000}) {
      Resampler rs(from, to, 3);
      const auto in = sine(440.0, from, static_cast<std::size_t>(from / 5));
      const auto out = run_in_frames(rs, in, static_cast<std::size_t>(from / 50));
      const double expected = static_cast<double>(in.size()) * to / from;
      EXPECT_NEAR(static_cast<double>(out.size()), expected, expected * 0.02 + 40)
          << from << "->" << to;
    }
  }
}

TEST(Resampler, AMuLawReplyThroughTheInternalRateAndBackKeepsItsCodes) {
  // A speech-to-speech service that speaks the leg's G.711 (OpenAI Realtime's audio/pcmu) is
  // decoded, played out at the internal rate (16 kHz) and resampled back to the 8 kHz leg and
  // encoded. Half-band up keeps every sample; the way down passes the telephone band. Measured:
  // 99.2 % of the codes come back identical and the round trip's error is 68 dB below the
  // signal, 31 dB under G.711's own quantization noise (36.8 dB): converting costs nothing
  // audible, so the playout keeps one internal rate (README, "Connect an AI service").
  const auto v = testing::voice(8000, 4.0, 8000);
  std::vector<std::uint8_t> codes(v.size());
  ulaw_encode(v, codes);
  std::vector<std::int16_t> pcm(v.size());
  ulaw_decode(codes, pcm);
  Resampler up(8000, 16000, 2, false), down(16000, 8000, 2, false);
  std::vector<std::int16_t> out, a(up.max_output(160)), b(down.max_output(up.max_output(160)));
  for (std::size_t i = 0; i < pcm.size(); i += 160) {
    const std::size_t n = up.process({pcm.data() + i, 160}, a);
    const std::size_t m = down.process({a.data(), n}, b);
    out.insert(out.end(), b.begin(), b.begin() + static_cast<std::ptrdiff_t>(m));
  }
  const auto d = static_cast<std::size_t>(up.output_latency() / 2 + down.output_latency());
  std::vector<std::uint8_t> back(out.size());
  ulaw_encode(out, back);
  std::size_t same = 0, n = 0;
  double signal = 0, error = 0;
  for (std::size_t i = 800; i + d < out.size(); ++i, ++n) {
    same += back[i + d] == codes[i] ? 1 : 0;
    const double x = pcm[i], y = ulaw_to_linear(back[i + d]);
    signal += x * x;
    error += (x - y) * (x - y);
  }
  EXPECT_GE(static_cast<double>(same) / static_cast<double>(n), 0.99);
  EXPECT_GE(10 * std::log10(signal / error), 60.0);
}

}  // namespace
}  // namespace voxbridge::audio
