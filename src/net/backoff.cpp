#include "voxbridge/net/backoff.hpp"

#include <algorithm>

namespace voxbridge::net {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : Backoff(initial, max, std::random_device{}()) {}

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
                 std::uint32_t seed)
    : initial_(initial), max_(max), step_(initial), rng_(seed) {}

std::chrono::milliseconds Backoff::next() {
  std::uniform_int_distribution<std::chrono::milliseconds::rep> draw(step_.count() / 2,
                                                                     step_.count());
  const std::chrono::milliseconds wait{draw(rng_)};
  step_ = std::min(step_ * 2, max_);
  return wait;
}

std::chrono::milliseconds Backoff::after(Clock::duration lasted) {
  if (lasted > kHeld) reset();
  return next();
}

}  // namespace voxbridge::net
