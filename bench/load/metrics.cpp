#include "metrics.hpp"

#include <algorithm>

namespace voxbridge::loadgen {
namespace {
constexpr std::size_t kKeptErrors = 5;
}

void Window::set(Clock::time_point start, Clock::time_point end) {
  end_.store(end.time_since_epoch().count(), std::memory_order_relaxed);
  start_.store(start.time_since_epoch().count(), std::memory_order_release);
}

Clock::time_point Window::start() const {
  return Clock::time_point(Clock::duration(start_.load(std::memory_order_acquire)));
}

Clock::time_point Window::end() const {
  return Clock::time_point(Clock::duration(end_.load(std::memory_order_acquire)));
}

const char* failure_name(Failure f) {
  switch (f) {
    case Failure::connect:
      return "connect";
    case Failure::closed_by_server:
      return "closed_by_server";
    case Failure::server_hangup:
      return "server_hangup";
    case Failure::io_error:
      return "io_error";
    case Failure::protocol_error:
      return "protocol_error";
  }
  return "?";
}

void PerCall::add(std::uint64_t v) {
  ++calls;
  sum += v;
  min = std::min(min, v);
  max = std::max(max, v);
}

void PerCall::merge(const PerCall& o) {
  calls += o.calls;
  sum += o.sum;
  min = std::min(min, o.min);
  max = std::max(max, o.max);
}

void Totals::fail(Failure f, std::string message) {
  ++failures[static_cast<std::size_t>(f)];
  if (first_errors.size() < kKeptErrors) first_errors.push_back(std::move(message));
}

std::uint64_t Totals::total_failures() const {
  std::uint64_t n = 0;
  for (auto f : failures) n += f;
  return n;
}

void Totals::merge(const Totals& o) {
  jitter.merge(o.jitter);
  read_delay.merge(o.read_delay);
  latency.merge(o.latency);
  onset_latency.merge(o.onset_latency);
  send_lateness.merge(o.send_lateness);
  reply.merge(o.reply);
  replies_missed += o.replies_missed;
  replies_over_agent += o.replies_over_agent;
  calls_connected += o.calls_connected;
  frames_sent += o.frames_sent;
  frames_received += o.frames_received;
  frames_expected += o.frames_expected;
  frames_dropped += o.frames_dropped;
  frames_dropped_inside += o.frames_dropped_inside;
  underrun_frames += o.underrun_frames;
  markers_sent += o.markers_sent;
  markers_returned += o.markers_returned;
  markers_lost += o.markers_lost;
  odd_frames += o.odd_frames;
  frames_skipped += o.frames_skipped;
  for (std::size_t i = 0; i < kFailureKinds; ++i) failures[i] += o.failures[i];
  calls_completed += o.calls_completed;
  connects_refused += o.connects_refused;
  calls_with_drops += o.calls_with_drops;
  max_dropped_in_call = std::max(max_dropped_in_call, o.max_dropped_in_call);
  completed_sent.merge(o.completed_sent);
  completed_received.merge(o.completed_received);
  stamps.insert(stamps.end(), o.stamps.begin(), o.stamps.end());
  for (const auto& e : o.first_errors) {
    if (first_errors.size() < kKeptErrors) first_errors.push_back(e);
  }
}

}  // namespace voxbridge::loadgen
