// Exact 2:1 sample-rate conversion (8 <-> 16, 16 <-> 32, 24 <-> 48 kHz) with one half-band FIR.
//
// A half-band low-pass has every other tap zero and its centre at one half, so doubling the rate
// needs only the odd taps for every second output (the others are the input itself), and
// halving it needs the odd taps plus the centre for each output. With the taps symmetric, each
// output costs kTaps multiplications: about a quarter of what a general polyphase resampler
// spends on the same ratio. 4 * kTaps - 1 taps, Kaiser window: flat within 0.003 dB up to 0.2125
// of the high rate (3.4 kHz at 16 kHz) and at least 70 dB down from 0.2875 (4.6 kHz) on.
//
// Private to vb_audio: Resampler picks it for 2:1 ratios.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace voxbridge::audio::detail {

class HalfBand {
 public:
  static constexpr std::size_t kTaps = 16;  // odd taps on one side of the centre

  enum class Direction { up, down };
  /// `skip_leading_zeros`: start with the first input sample instead of the filter's zero
  /// history (no delay, fewer outputs at first); otherwise every input sample yields exactly two
  /// outputs (up) and every two one (down) from the start.
  HalfBand(Direction d, bool skip_leading_zeros);

  /// Converts all of `in` into `out` (which must hold 2 * in.size() + 2 samples, or
  /// in.size() / 2 + 2); returns the samples written.
  std::size_t process(std::span<const std::int16_t> in, std::span<std::int16_t> out);
  void reset();
  /// Delay of the output behind the input, in output samples.
  int output_latency() const;

 private:
  static constexpr std::size_t kChunk = 256;               // input samples converted per pass
  static constexpr std::size_t kHistory = 4 * kTaps;       // the most a pass leaves behind
  static constexpr std::size_t kWork = kHistory + kChunk;  // history, then the chunk
  /// Converts what `x` (have_ samples, centre of the next output at next_) allows into `out`;
  /// returns the samples written and moves the history the next pass needs to the front.
  std::size_t compute(float* x, std::int16_t* out);

  Direction dir_;
  bool skip_;
  std::array<float, kTaps> taps_{};  // up: doubled (unity gain at the higher rate)
  // Between calls a converter keeps only the history its next window reaches back into (at
  // most kHistory samples): with thousands of calls on a thread, that is what stays in cache.
  // The chunk being converted and the per-output sums live on the stack of process().
  std::array<float, kHistory> history_{};
  std::size_t have_ = 0;  // samples of history (during a pass: in the work buffer)
  std::size_t next_ = 0;  // centre of the next output's window
};

}  // namespace voxbridge::audio::detail
