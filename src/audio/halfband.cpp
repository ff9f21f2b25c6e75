#include "halfband.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

namespace voxbridge::audio::detail {

namespace {

constexpr double kBeta = 7.0;  // Kaiser window shape: ~70 dB stop band for 63 taps

double bessel_i0(double x) {
  double sum = 1.0, term = 1.0;
  for (int k = 1; k < 40; ++k) {
    term *= (x / (2.0 * k)) * (x / (2.0 * k));
    sum += term;
  }
  return sum;
}

/// The odd taps h[1], h[3], ... h[2K-1] of the half-band filter (centre 0.5, sum of all odd taps
/// on both sides exactly 0.5 so that DC passes at unity).
std::array<double, HalfBand::kTaps> design() {
  std::array<double, HalfBand::kTaps> h{};
  const double half = 2.0 * HalfBand::kTaps;
  double sum = 0;
  for (std::size_t k = 0; k < HalfBand::kTaps; ++k) {
    const double j = 2.0 * static_cast<double>(k) + 1.0;
    const double w = bessel_i0(kBeta * std::sqrt(1.0 - (j / half) * (j / half))) / bessel_i0(kBeta);
    h[k] = std::sin(std::numbers::pi * j / 2.0) / (std::numbers::pi * j) * w;
    sum += 2.0 * h[k];
  }
  for (auto& v : h) v *= 0.5 / sum;
  return h;
}

/// Rounds to the nearest integer and saturates to 16 bits, without branches (so the loops
/// that call it vectorize): adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits.
inline std::int16_t to_pcm(float v) {
  const float r = std::min(std::max(v, -32768.0f), 32767.0f) + 12582912.0f;
  std::int32_t bits;
  std::memcpy(&bits, &r, sizeof bits);
  return static_cast<std::int16_t>(bits - 0x4B400000);
}

}  // namespace

HalfBand::HalfBand(Direction d, bool skip_leading_zeros) : dir_(d), skip_(skip_leading_zeros) {
  const auto h = design();
  for (std::size_t k = 0; k < kTaps; ++k) {
    taps_[k] = static_cast<float>(dir_ == Direction::up ? 2.0 * h[k] : h[k]);
  }
  reset();
}

void HalfBand::reset() {
  history_.fill(0.0f);
  // The window of an output reaches kTaps input samples (up) or 2 * kTaps - 1 (down) to each
  // side of its centre. Zero history in front of the first input sample either lets the first
  // output centre on that sample (skip: no delay) or on the history, so that outputs start at
  // once and keep the exact ratio (the delay is then the history's length minus the centre).
  if (dir_ == Direction::up) {
    next_ = kTaps - 1;
    have_ = skip_ ? kTaps - 1 : 2 * kTaps - 1;
  } else {
    next_ = 2 * kTaps - 1;
    have_ = skip_ ? 2 * kTaps - 1 : 4 * kTaps - 3;
  }
}

int HalfBand::output_latency() const {
  if (skip_) return 0;
  return dir_ == Direction::up ? static_cast<int>(2 * kTaps) : static_cast<int>(kTaps - 1);
}

namespace {

/// Eight floats in one AVX register (two SSE registers in the default clone).
typedef float v8sf __attribute__((vector_size(32)));
constexpr std::size_t kLanes = 8;

}  // namespace

__attribute__((target_clones("avx2", "default"))) std::size_t HalfBand::compute(float* x,
                                                                                std::int16_t* out) {
  // Outputs are computed eight at a time, each block's sums held in a register over all the
  // taps (the inputs of neighbouring outputs are neighbouring samples: plain unaligned loads).
  alignas(32) std::array<float, kWork> acc;
  std::size_t n = 0;
  if (dir_ == Direction::up) {
    // Pair at centre c: x[c] itself, then the midpoint between x[c] and x[c + 1].
    if (next_ + kTaps >= have_) return 0;
    const std::size_t count = have_ - kTaps - next_;
    const float* base = x + next_;
    std::size_t i = 0;
    for (; i + kLanes <= count; i += kLanes) {
      v8sf sum{};
      for (std::size_t k = 0; k < kTaps; ++k) {
        v8sf a, b;
        std::memcpy(&a, base + i - k, sizeof a);
        std::memcpy(&b, base + i + 1 + k, sizeof b);
        sum += taps_[k] * (a + b);
      }
      std::memcpy(acc.data() + i, &sum, sizeof sum);
    }
    for (; i < count; ++i) {
      float sum = 0.0f;
      // base + i - k, not base[i - k]: the history before `base` is read at negative offsets,
      // which i - k as a size_t would wrap (undefined pointer arithmetic; UBSan's fuzz run).
      const float* at = base + i;
      for (std::size_t k = 0; k < kTaps; ++k) sum += taps_[k] * (*(at - k) + at[1 + k]);
      acc[i] = sum;
    }
    for (i = 0; i < count; ++i) {
      out[2 * i] = to_pcm(base[i]);
      out[2 * i + 1] = to_pcm(acc[i]);
    }
    n = 2 * count;
    next_ += count;
  } else {
    // Output j has its centre at c = next_ + 2j; its taps touch only the samples of the other
    // parity, gathered first into `odd` (odd[m] = x[next_ - (2K - 1) + 2m]).
    if (next_ + 2 * kTaps - 1 >= have_) return 0;
    const std::size_t count = (have_ - (2 * kTaps - 1) - next_ + 1) / 2;
    alignas(32) std::array<float, kWork> odd;
    const float* first = x + next_ - (2 * kTaps - 1);
    for (std::size_t m = 0; m < count + 2 * kTaps - 1; ++m) odd[m] = first[2 * m];
    for (std::size_t j = 0; j < count; ++j) acc[j] = 0.5f * x[next_ + 2 * j];
    std::size_t j = 0;
    for (; j + kLanes <= count; j += kLanes) {
      v8sf sum;
      std::memcpy(&sum, acc.data() + j, sizeof sum);
      for (std::size_t k = 0; k < kTaps; ++k) {
        v8sf a, b;
        std::memcpy(&a, odd.data() + (kTaps - 1 - k) + j, sizeof a);
        std::memcpy(&b, odd.data() + (kTaps + k) + j, sizeof b);
        sum += taps_[k] * (a + b);
      }
      std::memcpy(acc.data() + j, &sum, sizeof sum);
    }
    for (; j < count; ++j) {
      float sum = acc[j];
      for (std::size_t k = 0; k < kTaps; ++k) {
        sum += taps_[k] * (odd[kTaps - 1 - k + j] + odd[kTaps + k + j]);
      }
      acc[j] = sum;
    }
    for (j = 0; j < count; ++j) out[j] = to_pcm(acc[j]);
    n = count;
    next_ += 2 * count;
  }
  // Keep only the history the next window needs at the front.
  const std::size_t keep_from = next_ - (dir_ == Direction::up ? kTaps - 1 : 2 * kTaps - 1);
  if (keep_from > 0) {
    std::memmove(x, x + keep_from, (have_ - keep_from) * sizeof(float));
    have_ -= keep_from;
    next_ -= keep_from;
  }
  return n;
}

std::size_t HalfBand::process(std::span<const std::int16_t> in, std::span<std::int16_t> out) {
  alignas(32) std::array<float, kWork> work;
  std::memcpy(work.data(), history_.data(), have_ * sizeof(float));
  std::size_t written = 0;
  std::size_t at = 0;
  while (at < in.size()) {
    const std::size_t room = work.size() - have_;
    const std::size_t n = std::min(in.size() - at, room);
    for (std::size_t i = 0; i < n; ++i) work[have_ + i] = static_cast<float>(in[at + i]);
    have_ += n;
    at += n;
    // Bound the writes by what `out` can take (max_output() sized it for the whole input).
    const std::size_t per = dir_ == Direction::up ? 2 * n + 2 : n / 2 + 2;
    if (written + per > out.size()) break;
    written += compute(work.data(), out.data() + written);
  }
  // A pass leaves at most kHistory samples: what the next window reaches back into, plus
  // fewer input samples than one more output needs.
  have_ = std::min(have_, history_.size());
  std::memcpy(history_.data(), work.data(), have_ * sizeof(float));
  return written;
}

}  // namespace voxbridge::audio::detail
