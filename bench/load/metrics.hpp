// What the load generator counts: the steady window every measurement is confined to, the live
// counters behind the once-a-second progress line, and the per-thread totals merged at the end.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "histogram.hpp"

namespace voxbridge::loadgen {

using Clock = std::chrono::steady_clock;

/// The steady window, [start, end), set once by the controller and read by every io thread.
class Window {
 public:
  void set(Clock::time_point start, Clock::time_point end);
  bool contains(Clock::time_point t) const {
    const auto ns = t.time_since_epoch().count();
    return ns >= start_.load(std::memory_order_acquire) &&
           ns < end_.load(std::memory_order_relaxed);
  }
  Clock::time_point start() const;
  Clock::time_point end() const;

 private:
  static constexpr Clock::rep kNever = std::numeric_limits<Clock::rep>::max();
  std::atomic<Clock::rep> start_{kNever};
  std::atomic<Clock::rep> end_{kNever};
};

/// Counters one io thread bumps and the controller reads (relaxed); cache-line aligned so the
/// threads do not share lines.
struct alignas(64) LiveCounters {
  std::atomic<std::uint64_t> connected{0};  ///< calls up right now
  std::atomic<std::uint64_t> failed{0};     ///< calls that failed (connect or later)
  std::atomic<std::uint64_t> frames_sent{0};
  std::atomic<std::uint64_t> frames_received{0};
  std::atomic<std::uint64_t> underrun_frames{0};
  std::atomic<std::uint64_t> long_gaps{0};  ///< returned frames more than 30 ms after the last
  std::atomic<std::uint64_t> completed{0};  ///< churn: calls we hung up after their length

  static void bump(std::atomic<std::uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }
};

/// Why a call failed; every one of these makes the run fail.
enum class Failure { connect, closed_by_server, server_hangup, io_error, protocol_error };
inline constexpr std::size_t kFailureKinds = 5;
const char* failure_name(Failure f);

/// Count, sum, min and max of a per-call quantity.
struct PerCall {
  std::uint64_t calls = 0;
  std::uint64_t sum = 0;
  std::uint64_t min = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max = 0;

  void add(std::uint64_t v);
  void merge(const PerCall& other);
  double mean() const {
    return calls == 0 ? 0.0 : static_cast<double>(sum) / static_cast<double>(calls);
  }
};

/// --stamps: one call's turns and replies, on the steady clock (ns since its epoch).
struct CallStamps {
  std::string uuid;
  std::vector<std::int64_t> voice;  ///< the first frame of each turn of voice, as it was sent
  /// The arrival (kernel stamp) of each returned frame that starts a reply: a sample at
  /// kReplyOnsetPeak or more after kReplyOnsetQuietFrames frames below it.
  std::vector<std::int64_t> reply;
};

/// Everything one io thread measured. Histograms hold nanoseconds.
struct Totals {
  Histogram jitter;         ///< |inter-arrival - 20 ms| of returned frames (kernel stamps)
  Histogram read_delay;     ///< arrival -> our read of it (we read on our calls' ticks)
  Histogram latency;        ///< marker frame sent -> first returned frame carrying it
  Histogram onset_latency;  ///< marker onset sent -> the onset's place in the returned audio
  Histogram send_lateness;  ///< our own sends behind their deadline (load generator health)
  Histogram reply;          ///< conversation: last voice frame sent -> first loud returned frame
  std::uint64_t calls_connected = 0;
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t frames_expected = 0;
  std::uint64_t frames_dropped = 0;
  /// Of frames_dropped: slots missing between a call's first and last frame in the window (a
  /// frame really lost); the rest are slots at the window's edges with no frame, which a frame
  /// arriving just past the edge also leaves.
  std::uint64_t frames_dropped_inside = 0;
  std::uint64_t underrun_frames = 0;
  std::uint64_t markers_sent = 0;
  std::uint64_t markers_returned = 0;
  std::uint64_t markers_lost = 0;
  std::uint64_t replies_missed = 0;  ///< conversation: speech with no reply before the next
  /// Conversation: speech that ended while the agent was still talking (its reply then goes on
  /// rather than starts, so it is not a reply time and is not in `reply`).
  std::uint64_t replies_over_agent = 0;
  std::uint64_t odd_frames = 0;      ///< returned frames that are not 320-byte slin8
  std::uint64_t frames_skipped = 0;  ///< sends abandoned because the server stopped reading
  std::uint64_t failures[kFailureKinds] = {};
  // Call churn (--call-seconds).
  std::uint64_t calls_completed = 0;   ///< hung up by us after their length
  std::uint64_t connects_refused = 0;  ///< of failures[connect]: ECONNREFUSED
  std::uint64_t calls_with_drops = 0;  ///< calls with dropped frames in the window
  std::uint64_t max_dropped_in_call = 0;
  PerCall completed_sent;      ///< frames each completed call sent, over its whole life
  PerCall completed_received;  ///< frames each completed call received, over its whole life
  std::vector<std::string> first_errors;  ///< the first few failure messages
  std::vector<CallStamps> stamps;         ///< --stamps only: every call's, whole life

  void fail(Failure f, std::string message);
  std::uint64_t total_failures() const;
  void merge(const Totals& other);
};

}  // namespace voxbridge::loadgen
