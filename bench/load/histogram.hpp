// A log-linear histogram of non-negative integer samples (nanoseconds here): exact below 1024,
// then 512 buckets per power of two, so every percentile is within 0.2% of the true value.
// Fixed size (no allocation per sample); one per thread, merged at the end.
#pragma once

#include <cstdint>
#include <vector>

namespace voxbridge::loadgen {

class Histogram {
 public:
  Histogram();

  void add(std::uint64_t value);
  void merge(const Histogram& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  /// The value below which `percent` % of the samples lie (0 when empty); `percent` in [0, 100].
  std::uint64_t percentile(double percent) const;

 private:
  std::vector<std::uint64_t> buckets_;
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace voxbridge::loadgen
