// Per-call recordings: a stereo WAV (caller left, agent right, time-aligned on the call's clock,
// silence where nobody spoke) and a JSONL transcript (one line per event, in order), written by
// a writer thread of the recorder's own, never on the io threads. Files are
// <directory>/YYYY-MM-DD/<uuid>.wav and <uuid>.jsonl (UTC date of the call's start); a UUID
// that already has files there (a replay) gets <uuid>-2.wav and so on: an existing file is never
// truncated, and a symlink in the recordings directory is never followed. Retention deletes them
// by age, then by total size (oldest first).
//
// Threading: one Recorder per process; start_call, stats, sweep_now and flush may be called from
// any thread. A CallRecording belongs to its call's io thread and is not thread-safe. Its
// per-frame calls (caller, agent, tick) never allocate, never wait for the disk and take no lock
// per frame: they copy into a block of about one second taken from a pool the Recorder allocates
// once, and hand full blocks to the writer through a bounded queue (one short lock per block). When
// the pool is empty (the disk is too slow) or the writer gets an error (full disk, I/O error), that
// call's recording stops: one warning naming the UUID and the reason, one count in
// RecorderStats::calls_failed, the files closed with what was written and a valid header. The call,
// and other calls' recordings, go on.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace voxbridge::recording {

struct RecorderOptions {
  std::filesystem::path directory;      ///< root of the recordings; created if missing
  int sample_rate_hz = 16000;           ///< mono int16 per side, both sides at this rate
  std::chrono::milliseconds frame{20};  ///< one tick of the call's clock
  /// How far (in frames) a side may run behind or ahead of the call's clock before it is padded
  /// with silence (behind) or trimmed (ahead). Covers the jitter of caller frames (two in one
  /// tick, none in the next) without inserting silence.
  int slack_frames = 3;
  /// The pool, all calls together: each recording call holds the block it is filling, the rest
  /// wait for the writer. Allocated once (untouched pages cost no memory until used).
  std::size_t queue_blocks = 1024;
  std::chrono::milliseconds block{1000};  ///< audio gathered per call before one hand-off
  std::size_t queue_events = 4096;        ///< transcript lines waiting for the writer, all calls
  std::chrono::seconds max_age{0};        ///< retention: delete files older than this; 0 = keep
  std::uint64_t max_total_bytes = 0;  ///< retention: delete oldest files beyond this; 0 = no limit
  std::chrono::seconds sweep_interval{300};  ///< retention runs at start and then this often
  /// Creates a file for writing, returning a descriptor or -1 with errno set (EEXIST: the name
  /// is taken, the next one is tried). Default: open(2) O_CREAT|O_EXCL|O_NOFOLLOW|O_WRONLY|
  /// O_CLOEXEC, mode 0640. Runs on the writer thread. Tests use it to hand back /dev/full
  /// (ENOSPC) or to stall the writer.
  std::function<int(const std::filesystem::path&)> open_file;
};

/// Counters, updated on any thread, read from any thread.
struct RecorderStats {
  std::atomic<std::uint64_t> calls_recorded{0};  ///< recordings started
  std::atomic<std::uint64_t> calls_failed{0};    ///< stopped by a disk error or a full queue
  std::atomic<std::uint64_t> blocks_dropped{0};  ///< audio blocks discarded unwritten
  std::atomic<std::uint64_t> bytes_written{0};   ///< both files, headers included
  std::atomic<std::uint64_t> files_removed{0};   ///< by retention
};

namespace detail {
struct Core;
struct CallState;
struct Item;
}  // namespace detail

class CallRecording;

/// Process-wide; owns the writer thread and the block pool.
class Recorder {
 public:
  explicit Recorder(RecorderOptions options);
  /// Writes everything queued, closes every open file (valid WAV headers), joins the writer.
  /// Recordings still alive afterwards are inactive; destroying them later is safe.
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  /// Starts recording a call (any thread). `uuid` names the files (characters outside
  /// [A-Za-z0-9._-] become '_'); `started` picks the date directory. Returns null if neither
  /// audio nor transcript is wanted. When no block is free the recording returned is already
  /// stopped (warning, calls_failed).
  std::unique_ptr<CallRecording> start_call(
      std::string_view uuid, bool audio, bool transcript,
      std::chrono::system_clock::time_point started = std::chrono::system_clock::now());

  const RecorderStats& stats() const;
  /// Runs retention on the writer thread now; returns when it is done.
  void sweep_now();
  /// Returns once everything queued before the call is on disk (or dropped).
  void flush();

 private:
  std::shared_ptr<detail::Core> core_;
};

/// One call's recording. Owned by the call on its io thread; not thread-safe.
///
/// The call's clock starts at 0 with start_call and advances one frame with each tick(). Audio a
/// side delivers is laid down back to back from where that side left off, so sample i of each
/// channel is call time i / rate as long as the side keeps pace. A side that falls behind the
/// clock by more than slack_frames (a gap: nobody sent anything) is padded with silence up to the
/// clock, and kept padded on every tick until it delivers again, so audio after a gap lands at
/// its own time. A side that runs ahead of the clock by more than slack_frames is trimmed.
class CallRecording {
 public:
  ~CallRecording();  ///< hands the tail to the writer, which fixes the header and closes files
  CallRecording(const CallRecording&) = delete;
  CallRecording& operator=(const CallRecording&) = delete;

  /// Caller audio as it arrives (usually one frame per tick, sometimes two or none).
  void caller(std::span<const std::int16_t> pcm) { put(0, pcm); }
  /// What the call sent to Asterisk this tick (silence included).
  void agent(std::span<const std::int16_t> pcm) { put(1, pcm); }
  /// The call's clock advanced by one frame.
  void tick();
  /// One transcript line (JSON, without the newline; newlines inside become spaces). Rare; may
  /// allocate. Ignored unless the transcript was asked for.
  void event(std::string json_line);

  /// False once stopped by an error, a full queue or the Recorder's shutdown.
  bool active() const;
  /// The files: the names asked for until the writer has created them (flush() waits for
  /// that), then the ones it got (<uuid>-2.wav... for a replayed UUID). Empty without audio.
  std::filesystem::path wav_path() const;
  std::filesystem::path transcript_path() const;  ///< empty without a transcript

 private:
  friend class Recorder;
  CallRecording(std::shared_ptr<detail::Core> core, std::shared_ptr<detail::CallState> state);

  void put(int side, std::span<const std::int16_t> pcm);
  void pad(int side, std::int64_t to);
  void maybe_hand_off();
  void stop(const char* reason);  // io side: give the block back, close the files
  bool check_active();

  std::shared_ptr<detail::Core> core_;
  std::shared_ptr<detail::CallState> state_;
  detail::Item* block_ = nullptr;  // being filled; from the pool
  std::int64_t base_ = 0;          // call time (samples) of the block's first sample
  std::int64_t clock_ = 0;         // call time (samples) of the clock
  std::int64_t pos_[2] = {0, 0};   // next sample of each side
  bool idle_[2] = {false, false};  // padded on every tick until the side delivers again
  bool closed_ = false;            // close handed to the writer (or never needed)
};

}  // namespace voxbridge::recording
