// Stateful sample-rate converter for one direction of one call.
//
// Exact 2:1 ratios (8 <-> 16, 16 <-> 32, 24 <-> 48 kHz: the telephone leg against voxbridge's
// internal 16 kHz) at quality <= kHalfBandMaxQuality use voxbridge's own half-band filter (flat to
// 3.4 kHz of a 16 kHz stream, >= 70 dB stop band, about a quarter of SpeexDSP's work for the same
// ratio); every other ratio and quality uses SpeexDSP.
//
// State carries across frames, so a stream cut into frames of any size sounds exactly like the
// stream converted in one piece (no clicks at frame edges). Created once per call (allocates
// then); process() allocates nothing. Owned and used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <memory>

struct SpeexResamplerState_;

namespace voxbridge::audio {

namespace detail {
class HalfBand;
}

class Resampler {
 public:
  /// Highest quality at which 2:1 ratios use the half-band filter (above it: SpeexDSP).
  static constexpr int kHalfBandMaxQuality = 5;

  /// quality: 0 (fastest) .. 10 (best), SpeexDSP's scale. Rates from 8000 to 192000 Hz.
  /// `skip_leading_zeros` trims the filter's start-up delay (lower latency, but the first outputs
  /// are short); without it every call yields exactly in * out_rate / in_rate samples once the
  /// fraction is whole, which outbound 20 ms frames rely on.
  Resampler(int in_rate_hz, int out_rate_hz, int quality, bool skip_leading_zeros = true);
  ~Resampler();
  Resampler(const Resampler&) = delete;
  Resampler& operator=(const Resampler&) = delete;
  Resampler(Resampler&& other) noexcept;
  Resampler& operator=(Resampler&& other) noexcept;

  /// Converts all of `in`; returns the samples written to `out`. `out` must hold at least
  /// max_output(in.size()) samples. With equal rates this is a copy.
  std::size_t process(std::span<const std::int16_t> in, std::span<std::int16_t> out);
  /// Upper bound on the output for `in_samples` input samples.
  std::size_t max_output(std::size_t in_samples) const;
  /// Forget the history (after a flush, so old audio does not ring into new audio).
  void reset();

  int in_rate_hz() const { return in_rate_; }
  int out_rate_hz() const { return out_rate_; }
  /// Filter delay in output samples (what a round trip must be aligned by).
  int output_latency() const;
  /// True if the half-band filter does the work (tests, benchmarks).
  bool uses_half_band() const { return hb_ != nullptr; }

 private:
  SpeexResamplerState_* st_ = nullptr;
  std::unique_ptr<detail::HalfBand> hb_;
  int in_rate_;
  int out_rate_;
  bool skip_zeros_;
};

}  // namespace voxbridge::audio
