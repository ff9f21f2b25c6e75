// Real-time playout for one call: a fixed-capacity sample ring with watermarks, and a deadline
// pacer that decides when each 20 ms frame leaves.
//
// Asterisk plays whatever it receives at once, with no jitter buffer, so the server owns the
// clock: frame n leaves at start + n * frame. The pacer never sends two frames in one tick to
// catch up after a stall (late deadlines are skipped and counted), and an empty queue yields
// silence without moving the timeline. Time is passed in, so tests drive it with a fake clock.
// Single-threaded (the call's io thread); the ring is allocated once at construction.
//
// Memory: the ring is its own anonymous mapping, so only the pages a call has used are resident,
// and a burst (a reply queued ahead of playout, a backlog after a stall) gives its pages back to
// the system when the queue drains or the call ends. A malloc'd ring would keep them resident in
// the heap for whichever call reuses the block, and the server's RSS would ratchet up with every
// stall instead of following the audio actually queued.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace voxbridge::playout {

using Clock = std::chrono::steady_clock;

/// Fixed ring of samples at the call's internal rate.
class PlayoutQueue {
 public:
  /// `capacity` samples; `high_watermark` is where producers should pause (backpressure), and
  /// `low_watermark` where they may resume.
  PlayoutQueue(std::size_t capacity, std::size_t low_watermark, std::size_t high_watermark);
  PlayoutQueue(const PlayoutQueue&) = delete;
  PlayoutQueue& operator=(const PlayoutQueue&) = delete;

  /// Appends as much of `samples` as fits; returns the count taken. The rest is counted as
  /// overflow (producers that respect the high watermark never see it).
  std::size_t push(std::span<const std::int16_t> samples);
  /// Appends `n` samples of silence (as much as fits).
  std::size_t push_silence(std::size_t n);
  /// Moves up to out.size() samples into `out`; returns the count.
  std::size_t pop(std::span<std::int16_t> out);
  /// Drops everything queued (barge-in); returns the samples dropped.
  std::size_t clear();
  /// Bytes of the ring resident in RAM now (mincore): for tests and diagnostics, not the
  /// per-frame path.
  std::size_t resident_bytes() const;

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t free_space() const { return capacity_ - size_; }
  bool above_high_watermark() const { return size_ >= high_; }
  bool below_low_watermark() const { return size_ <= low_; }
  std::uint64_t overflow_samples() const { return overflow_; }

 private:
  static constexpr std::size_t kCompactBelow = 1024;  // samples moved to the front after a pop
  /// Pages kept resident at the front after a drain (a small standing queue lives there), and
  /// the least a release must return to be worth its system call.
  static constexpr std::size_t kKeepBytes = 8192;
  static constexpr std::size_t kMinReleaseBytes = 16384;
  struct Unmap {
    std::size_t
        bytes;  // no default member initializer: unique_ptr needs it default-constructible here
    void operator()(std::int16_t* p) const;
  };
  void note_written(std::size_t tail, std::size_t n);
  void release_drained();

  std::unique_ptr<std::int16_t[], Unmap> ring_;
  std::size_t capacity_;
  std::size_t touched_ = 0;  // samples from the front of the ring written since the last release
  std::size_t low_;
  std::size_t high_;
  std::size_t head_ = 0;  // next sample to pop
  std::size_t size_ = 0;
  std::uint64_t overflow_ = 0;
};

/// Deadline arithmetic for a fixed frame period.
class Pacer {
 public:
  explicit Pacer(Clock::duration frame = std::chrono::milliseconds(20)) : frame_(frame) {}

  /// Anchors the timeline at `t0`: frame n is due at t0 + n * frame, the first at n = 1.
  void start(Clock::time_point t0);
  /// When the next frame is due.
  Clock::time_point next_deadline() const { return start_ + frame_ * static_cast<long>(next_); }
  /// The timer fired at `now`: returns true if a frame is due (exactly one, never more) and
  /// moves to the next deadline after `now`; deadlines that passed unserved are counted late.
  bool on_timer(Clock::time_point now);
  /// Moves the rest of the timeline by `d` (PhaseAligner): the next deadline is `d` later.
  void shift(Clock::duration d) { start_ += d; }

  std::uint64_t frames_sent() const { return sent_; }
  std::uint64_t late_ticks() const { return late_; }
  Clock::duration frame() const { return frame_; }
  Clock::time_point start_time() const { return start_; }

 private:
  Clock::duration frame_;
  Clock::time_point start_{};
  std::uint64_t next_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t late_ = 0;
};

/// Queue + pacer: what a session calls on every tick.
class Playout {
 public:
  struct Options {
    int rate_hz = 16000;
    std::chrono::milliseconds frame{20};
    std::chrono::milliseconds capacity{2000};
    std::chrono::milliseconds low_watermark{200};
    std::chrono::milliseconds high_watermark{1000};
  };
  explicit Playout(const Options& opts);

  void start(Clock::time_point t0) { pacer_.start(t0); }
  Clock::time_point next_deadline() const { return pacer_.next_deadline(); }
  /// Moves the rest of the timeline by `d` (see Pacer::shift).
  void shift_timeline(Clock::duration d) { pacer_.shift(d); }

  /// On a timer wake-up at `now`: if a frame is due, fills `out` (frame_samples() long) with
  /// queued audio, padding with silence on underrun, and returns true.
  bool tick(Clock::time_point now, std::span<std::int16_t> out);
  /// Queues audio for playout (what agents' CallControl::play lands in); returns the samples
  /// taken.
  std::size_t push(std::span<const std::int16_t> samples);
  /// Empties the queue now; the next tick plays silence (barge-in within one tick).
  void flush();

  PlayoutQueue& queue() { return queue_; }
  const PlayoutQueue& queue() const { return queue_; }
  const Pacer& pacer() const { return pacer_; }
  std::size_t frame_samples() const { return frame_samples_; }
  int rate_hz() const { return rate_hz_; }
  /// Holes inside audio: a tick ran dry while audio was playing and more audio arrived within
  /// the next tick. The end of an utterance (no audio follows) is not an underrun.
  std::uint64_t underruns() const { return underruns_; }
  std::uint64_t flushes() const { return flushes_; }

 private:
  int rate_hz_;
  std::size_t frame_samples_;
  PlayoutQueue queue_;
  Pacer pacer_;
  bool playing_ = false;      // full frames have been playing since the last dry tick/flush
  bool dry_pending_ = false;  // ran dry while playing; an underrun if audio comes right back
  std::uint64_t dry_tick_ = 0;
  std::uint64_t underruns_ = 0;
  std::uint64_t flushes_ = 0;
};

}  // namespace voxbridge::playout
