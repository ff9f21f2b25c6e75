// Private to the session's sources: what its log lines share (the flood gate for warnings
// about connections that never became calls, and how an exception reads in the log).
// Thread: each io thread has its own gate; the rest is plain functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include "voxbridge/session/call_media.hpp"

namespace voxbridge::session::detail {

/// Warnings about connections that never became calls (no UUID in time, junk before the
/// UUID) are what a flood produces: at most 10 a second per io thread are written, and the
/// next one written says how many were left out. The metrics count every one.
class FloodGate {
 public:
  /// True if this warning may be written; `skipped` then says how many were not before it.
  bool allow(Clock::time_point now, std::uint64_t& skipped) {
    if (now - window_ >= std::chrono::seconds(1)) {
      window_ = now;
      written_ = 0;
    }
    if (written_ >= 10) {
      ++skipped_;
      return false;
    }
    ++written_;
    skipped = std::exchange(skipped_, 0);
    return true;
  }

 private:
  Clock::time_point window_{};
  unsigned written_ = 0;
  std::uint64_t skipped_ = 0;
};

/// This io thread's gate.
FloodGate& flood_gate();

/// What an exception says, for the log (shortened: it may carry a provider's or model's text).
std::string exception_text(const std::exception_ptr& e);

/// " (N more like it not logged)", or nothing when none were skipped.
std::string skipped_note(std::uint64_t skipped);

}  // namespace voxbridge::session::detail
