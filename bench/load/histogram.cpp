#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace voxbridge::loadgen {
namespace {

constexpr unsigned kSubBits = 9;  // 512 buckets per octave above 1024
constexpr unsigned kLinearBits = kSubBits + 1;
constexpr std::size_t kBuckets = (64 - kLinearBits + 1) << kSubBits;

// Values below 2^10 map to themselves; above, the top 10 significant bits select the bucket:
// index = shift * 512 + (value >> shift), with shift = bit_width(value) - 10.
std::size_t bucket_of(std::uint64_t v) {
  const unsigned width = static_cast<unsigned>(std::bit_width(v));
  const unsigned shift = width > kLinearBits ? width - kLinearBits : 0;
  return (static_cast<std::size_t>(shift) << kSubBits) + static_cast<std::size_t>(v >> shift);
}

// The middle of the range of values that map to bucket `i`.
std::uint64_t value_of(std::size_t i) {
  const std::size_t linear = std::size_t{1} << kLinearBits;
  if (i < linear) return i;
  const std::size_t shift = (i >> kSubBits) - 1;
  const std::uint64_t low = static_cast<std::uint64_t>(i - (shift << kSubBits)) << shift;
  return low + ((std::uint64_t{1} << shift) >> 1);
}

}  // namespace

Histogram::Histogram() : buckets_(kBuckets, 0) {}

void Histogram::add(std::uint64_t value) {
  ++buckets_[bucket_of(value)];
  ++count_;
  max_ = std::max(max_, value);
}

void Histogram::merge(const Histogram& other) {
  for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

std::uint64_t Histogram::percentile(double percent) const {
  if (count_ == 0) return 0;
  const double clamped = std::clamp(percent, 0.0, 100.0);
  const auto rank = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(std::ceil(clamped / 100.0 * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(value_of(i), max_);
  }
  return max_;
}

}  // namespace voxbridge::loadgen
