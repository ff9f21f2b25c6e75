// The waits between attempts to reach a peer (AMI, ARI, a webhook receiver): each step twice
// the last, from `initial` up to `max`, and each wait drawn at random between half and all of
// its step, so many voxbridges restarting at once do not reach Asterisk in step.
//
// Thread: none of its own, no locks; one owner calls it. The owner waits with its own timer.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace voxbridge::net {

class Backoff {
 public:
  using Clock = std::chrono::steady_clock;
  /// An attempt that lasted longer than this (a connection that held) starts again from
  /// `initial` (see after()).
  static constexpr std::chrono::seconds kHeld{10};

  /// The draws come from std::random_device.
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);
  /// The draws come from `seed` (tests: a repeatable sequence).
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, std::uint32_t seed);

  /// The wait before the next attempt, uniform in [step / 2, step]; the step then doubles, up
  /// to `max`. The first step is `initial`.
  std::chrono::milliseconds next();
  /// The next step is `initial` again.
  void reset() { step_ = initial_; }
  /// next() after an attempt that lasted `lasted`: reset() first if it lasted over kHeld.
  std::chrono::milliseconds after(Clock::duration lasted);

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds step_;
  std::mt19937 rng_;
};

}  // namespace voxbridge::net
