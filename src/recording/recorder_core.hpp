// Private to recording/: what the recorder's parts share. The work is split by role:
//   recorder.cpp        Recorder and CallRecording: the public API; the io threads fill blocks
//                       from the pool and hand them to the writer (one short lock per block)
//   writer.cpp          Core: the block pool, the work queue and the writer thread's loop
//   call_files.cpp      a call's files: their names, creating them (O_EXCL, replayed UUIDs get
//                       <uuid>-2...), closing them
//   wav_file.cpp        the WAV format: header, audio blocks, the sizes fixed at close
//   transcript_file.cpp the JSONL transcript: one line per event
//   retention.cpp       deleting old recordings by age, then by total size
// Everything but recorder.cpp runs on the writer thread. Core is shared (shared_ptr) by the
// Recorder and every CallRecording; a CallState by its CallRecording and, from open to close,
// by the writer (Core::open_calls), so whichever lets go last frees it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "voxbridge/recording/recorder.hpp"

namespace voxbridge::recording::detail {

/// A unit of work for the writer, on an intrusive FIFO: pushing never allocates and never fails
/// for lack of room (the bounds are the block pool and the event count).
struct Item {
  enum class Kind : std::uint8_t { open, audio, event, close, flush, sweep };
  Kind kind = Kind::audio;
  Item* next = nullptr;
  CallState* call = nullptr;
  std::int16_t* samples = nullptr;   // audio: interleaved stereo (caller, agent)
  std::size_t frames = 0;            // audio: stereo frames to write
  std::string line;                  // event
  std::shared_ptr<CallState> owner;  // open: the writer's reference, dropped at close
  bool done = false;                 // flush, sweep: set by the writer
};

struct CallState {
  std::string uuid;
  // Written by the writer when it opens the files (a replayed UUID gets another name), under
  // Core::mu; read there or on the writer thread.
  std::filesystem::path wav_path;
  std::filesystem::path jsonl_path;
  bool audio = false;
  bool transcript = false;
  std::atomic<bool> stopped{false};
  Item open_item;
  Item close_item;
  // Writer thread only.
  int wav_fd = -1;
  int jsonl_fd = -1;
  std::uint64_t data_bytes = 0;  // sample bytes on disk
};

/// The shared state of one Recorder: options, counters, the block pool and the writer's queue
/// (under `mu`), and what the writer thread alone touches (the open calls).
struct Core {
  explicit Core(RecorderOptions o);

  RecorderOptions opts;
  RecorderStats stats;
  std::int64_t frame_samples = 0;   // per side, one tick
  std::int64_t slack_samples = 0;   // per side
  std::int64_t block_frames = 0;    // handed off when full
  std::int64_t block_capacity = 0;  // plus room for a side ahead of the other, and the tail
  std::unique_ptr<std::int16_t[]> arena;
  std::vector<Item> pool;

  std::mutex mu;
  std::condition_variable wake;  // the writer
  std::condition_variable done;  // flush() and sweep_now()
  Item* free_list = nullptr;
  Item* head = nullptr;
  Item* tail = nullptr;
  std::size_t events_queued = 0;
  bool stopping = false;
  bool closed = false;  // the writer has finished; nothing more is taken

  // Writer thread only.
  std::unordered_map<CallState*, std::shared_ptr<CallState>> open_calls;
  std::thread writer;

  // All under `mu`.
  void enqueue(Item* it) {
    it->next = nullptr;
    if (tail) {
      tail->next = it;
    } else {
      head = it;
    }
    tail = it;
  }
  Item* take_block() {
    Item* b = free_list;
    if (b) free_list = b->next;
    return b;
  }
  void give_block(Item* b) {
    b->next = free_list;
    free_list = b;
  }

  /// First stop of a call: one warning, one count. Any thread.
  void fail(CallState& c, std::string_view reason);
  /// Waits for a marker item to come through the writer. Any thread but the writer.
  void round_trip(Item::Kind kind);

  // The writer thread (writer.cpp).
  void run();
  void process(Item* it);
  // call_files.cpp
  void open_files(CallState& c);
  void close_files(CallState& c);
  void write_failed(CallState& c, const std::filesystem::path& path, int err);
  // wav_file.cpp
  void start_wav(CallState& c);
  void write_audio(CallState& c, Item& block);
  void finish_wav(CallState& c);
  // transcript_file.cpp
  void write_event(CallState& c, Item& event);
  // retention.cpp
  void sweep();
};

// call_files.cpp
/// The date directory of a call that started at `t`: YYYY-MM-DD (UTC).
std::string date_dir(std::chrono::system_clock::time_point t);
/// True for a name date_dir() makes.
bool is_date_dir(const std::string& s);
/// A UUID made safe as a file name: [A-Za-z0-9._-] only, not hidden, at most 128 characters.
std::string file_name(std::string_view uuid);
/// RecorderOptions::open_file's default: a new file or nothing.
int default_open(const std::filesystem::path& path);

/// Writes all of it unless an error comes first; returns 0 or errno, `written` what got out.
int write_all(int fd, const void* data, std::size_t n, std::size_t& written);
std::string errno_text(int err);

}  // namespace voxbridge::recording::detail
