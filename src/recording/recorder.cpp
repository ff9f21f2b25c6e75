#include "voxbridge/recording/recorder.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace voxbridge::recording {
namespace detail {

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

namespace {

constexpr std::size_t kHeaderBytes = 44;
constexpr std::uint64_t kMaxDataBytes = 0xFFFFFFFFull - 36 - 3;

void put_le(unsigned char* p, std::uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>((v >> (8 * i)) & 0xFF);
}

void wav_header(unsigned char* h, int rate_hz, std::uint32_t data_bytes) {
  const auto rate = static_cast<std::uint32_t>(rate_hz);
  std::copy_n("RIFF", 4, h);
  put_le(h + 4, 36 + data_bytes, 4);
  std::copy_n("WAVEfmt ", 8, h + 8);
  put_le(h + 16, 16, 4);
  put_le(h + 20, 1, 2);  // PCM
  put_le(h + 22, 2, 2);  // stereo
  put_le(h + 24, rate, 4);
  put_le(h + 28, rate * 4, 4);
  put_le(h + 32, 4, 2);  // block align
  put_le(h + 34, 16, 2);
  std::copy_n("data", 4, h + 36);
  put_le(h + 40, data_bytes, 4);
}

/// Writes all of it unless an error comes first; returns 0 or errno, `written` what got out.
int write_all(int fd, const void* data, std::size_t n, std::size_t& written) {
  written = 0;
  const auto* p = static_cast<const unsigned char*>(data);
  while (written < n) {
    const ssize_t r = ::write(fd, p + written, n - written);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) return EIO;
    written += static_cast<std::size_t>(r);
  }
  return 0;
}

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

std::string date_dir(std::chrono::system_clock::time_point t) {
  const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(t)};
  char buf[24];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

bool is_date_dir(const std::string& s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return false;
  }
  return true;
}

std::string file_name(std::string_view uuid) {
  std::string s(uuid.substr(0, 128));
  for (char& c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) c = '_';
  }
  if (s.empty()) s = "unknown";
  if (s[0] == '.') s[0] = '_';  // no hidden files, no "." or ".."
  return s;
}

int default_open(const std::filesystem::path& path) {
  // A new file or nothing: an existing recording is never truncated, and a symlink planted
  // under the name is not followed (O_EXCL alone refuses it; O_NOFOLLOW says so twice).
  return ::open(path.c_str(), O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0640);
}

/// Names tried for one call's files: <uuid>, then <uuid>-2 ... <uuid>-kMaxNames.
constexpr int kMaxNames = 100;

}  // namespace

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
  void fail(CallState& c, std::string_view reason) {
    if (c.stopped.exchange(true)) return;
    stats.calls_failed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("call uuid={}: recording stopped: {}", c.uuid, reason);
  }

  /// Waits for a marker item to come through the writer.
  void round_trip(Item::Kind kind) {
    Item marker;
    marker.kind = kind;
    std::unique_lock lock(mu);
    if (closed) return;
    enqueue(&marker);
    wake.notify_one();
    done.wait(lock, [&] { return marker.done; });
  }

  void run();
  void process(Item* it);
  void open_files(CallState& c);
  void close_files(CallState& c);
  void write_failed(CallState& c, const std::filesystem::path& path, int err);
  void sweep();
};

Core::Core(RecorderOptions o) : opts(std::move(o)) {
  if (!opts.open_file) opts.open_file = default_open;
  opts.sample_rate_hz = std::max(opts.sample_rate_hz, 1);
  opts.slack_frames = std::max(opts.slack_frames, 0);
  opts.queue_blocks = std::max<std::size_t>(opts.queue_blocks, 1);
  const std::int64_t rate = opts.sample_rate_hz;
  frame_samples = std::max<std::int64_t>(1, rate * opts.frame.count() / 1000);
  slack_samples = frame_samples * opts.slack_frames;
  block_frames = std::max<std::int64_t>(frame_samples, rate * opts.block.count() / 1000);
  // Between hand-offs a side may be up to two slacks and a frame past the block's end (see
  // CallRecording::tick); the rest of the room is a margin.
  block_capacity = block_frames + 2 * slack_samples + 2 * frame_samples;
  const auto per_block = static_cast<std::size_t>(block_capacity) * 2;
  // Not value-initialized: pages nobody has written yet take no memory.
  arena.reset(new std::int16_t[opts.queue_blocks * per_block]);
  pool.resize(opts.queue_blocks);
  for (std::size_t i = 0; i < pool.size(); ++i) {
    pool[i].samples = arena.get() + i * per_block;
    give_block(&pool[i]);
  }
  std::error_code ec;
  std::filesystem::create_directories(opts.directory, ec);
  if (ec) spdlog::warn("recordings: cannot create {}: {}", opts.directory.string(), ec.message());
}

void Core::run() {
  pthread_setname_np(pthread_self(), "vb-recorder");
  const bool retention = opts.max_age.count() > 0 || opts.max_total_bytes > 0;
  const auto interval = std::max(opts.sweep_interval, std::chrono::seconds(1));
  if (retention) sweep();
  auto next_sweep = std::chrono::steady_clock::now() + interval;
  std::unique_lock lock(mu);
  for (;;) {
    if (retention && std::chrono::steady_clock::now() >= next_sweep) {
      lock.unlock();
      sweep();
      lock.lock();
      next_sweep = std::chrono::steady_clock::now() + interval;
      continue;
    }
    if (head) {
      Item* it = head;
      head = it->next;
      if (!head) tail = nullptr;
      if (it->kind == Item::Kind::event) --events_queued;
      lock.unlock();
      process(it);
      lock.lock();
      continue;
    }
    if (stopping) {
      closed = true;
      break;
    }
    if (retention) {
      wake.wait_until(lock, next_sweep);
    } else {
      wake.wait(lock);
    }
  }
  lock.unlock();
  for (auto& [c, owner] : open_calls) {
    c->stopped.store(true);
    close_files(*c);
  }
  open_calls.clear();
}

void Core::process(Item* it) {
  CallState* c = it->call;
  switch (it->kind) {
    case Item::Kind::open:
      open_calls.emplace(c, std::move(it->owner));
      open_files(*c);
      break;
    case Item::Kind::audio: {
      if (c->wav_fd >= 0) {
        const std::size_t bytes = it->frames * 4;
        if constexpr (std::endian::native == std::endian::big) {
          for (std::size_t i = 0; i < it->frames * 2; ++i) {
            const auto u = static_cast<std::uint16_t>(it->samples[i]);
            it->samples[i] = static_cast<std::int16_t>((u << 8) | (u >> 8));
          }
        }
        std::size_t written = 0;
        const int err = write_all(c->wav_fd, it->samples, bytes, written);
        c->data_bytes += written;
        stats.bytes_written.fetch_add(written, std::memory_order_relaxed);
        if (err == 0 && c->data_bytes > kMaxDataBytes) {
          fail(*c, "WAV file reached 4 GiB");
          close_files(*c);
        } else if (err != 0) {
          write_failed(*c, c->wav_path, err);
        }
      } else {
        stats.blocks_dropped.fetch_add(1, std::memory_order_relaxed);
      }
      std::lock_guard lock(mu);
      give_block(it);
      break;
    }
    case Item::Kind::event:
      if (c->jsonl_fd >= 0) {
        char newline = '\n';
        iovec iov[2] = {{it->line.data(), it->line.size()}, {&newline, 1}};
        const std::size_t total = it->line.size() + 1;
        ssize_t r;
        do {
          r = ::writev(c->jsonl_fd, iov, 2);
        } while (r < 0 && errno == EINTR);
        std::size_t written = r < 0 ? 0 : static_cast<std::size_t>(r);
        int err = r < 0 ? errno : 0;
        if (err == 0 && written < total) {
          // Short write: the rest, byte for byte, as far as it goes.
          std::string rest = it->line + '\n';
          std::size_t more = 0;
          err = write_all(c->jsonl_fd, rest.data() + written, total - written, more);
          written += more;
        }
        stats.bytes_written.fetch_add(written, std::memory_order_relaxed);
        if (err != 0) write_failed(*c, c->jsonl_path, err);
      }
      delete it;
      break;
    case Item::Kind::close: {
      close_files(*c);
      // May destroy the call's state (and `it` with it) if the recording is gone already.
      auto owner = std::move(open_calls[c]);
      open_calls.erase(c);
      break;
    }
    case Item::Kind::flush:
    case Item::Kind::sweep: {
      if (it->kind == Item::Kind::sweep) sweep();
      std::lock_guard lock(mu);
      it->done = true;
      done.notify_all();
      break;
    }
  }
}

void Core::open_files(CallState& c) {
  namespace fs = std::filesystem;
  const fs::path asked = c.audio ? c.wav_path : c.jsonl_path;
  const auto dir = asked.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!ec && fs::is_symlink(fs::symlink_status(dir, ec))) {
    fail(c, "cannot record into " + dir.string() + ": it is a symlink");
    return;
  }
  if (ec) {
    fail(c, "cannot create " + dir.string() + ": " + ec.message());
    return;
  }
  // A UUID seen before (a replay, a second call the same day) keeps the first call's files:
  // this call takes the first free name, the same for both of its files.
  const std::string base = asked.stem().string();
  fs::path wav, jsonl;
  for (int n = 1;; ++n) {
    if (n > kMaxNames) {
      fail(c, "cannot open " + asked.string() + ": it and " + std::to_string(kMaxNames - 1) +
                  " more names of this UUID exist already");
      return;
    }
    const std::string name = n == 1 ? base : base + "-" + std::to_string(n);
    if (c.audio) {
      wav = dir / (name + ".wav");
      c.wav_fd = opts.open_file(wav);
      if (c.wav_fd < 0) {
        const int err = errno;
        if (err == EEXIST) continue;
        fail(c, "cannot open " + wav.string() + ": " + errno_text(err));
        return;
      }
    }
    if (c.transcript) {
      jsonl = dir / (name + ".jsonl");
      c.jsonl_fd = opts.open_file(jsonl);
      if (c.jsonl_fd < 0) {
        const int err = errno;
        if (c.wav_fd >= 0) {
          ::close(c.wav_fd);  // created just now, empty: give the name back
          c.wav_fd = -1;
          ::unlink(wav.c_str());
        }
        if (err == EEXIST) continue;
        fail(c, "cannot open " + jsonl.string() + ": " + errno_text(err));
        return;
      }
    }
    break;
  }
  if (wav != c.wav_path || jsonl != c.jsonl_path) {
    spdlog::warn("call uuid={}: {} exists already; recording to {}", c.uuid, asked.string(),
                 (c.audio ? wav : jsonl).string());
    std::lock_guard lock(mu);
    c.wav_path = wav;
    c.jsonl_path = jsonl;
  }
  if (c.audio) {
    unsigned char h[kHeaderBytes];
    wav_header(h, opts.sample_rate_hz, 0);
    std::size_t written = 0;
    const int err = write_all(c.wav_fd, h, sizeof h, written);
    stats.bytes_written.fetch_add(written, std::memory_order_relaxed);
    if (err != 0) write_failed(c, c.wav_path, err);
  }
}

void Core::write_failed(CallState& c, const std::filesystem::path& path, int err) {
  fail(c, "cannot write " + path.string() + ": " + errno_text(err));
  close_files(c);
}

void Core::close_files(CallState& c) {
  if (c.wav_fd >= 0) {
    // Whole stereo frames only; a write cut short mid-frame is cut back.
    const std::uint64_t data = std::min(c.data_bytes, kMaxDataBytes) & ~std::uint64_t{3};
    if (data != c.data_bytes) {
      if (::ftruncate(c.wav_fd, static_cast<off_t>(kHeaderBytes + data)) != 0) {
        // Kept as is: the header below still says how much is valid.
      }
    }
    unsigned char h[kHeaderBytes];
    wav_header(h, opts.sample_rate_hz, static_cast<std::uint32_t>(data));
    // Only the two sizes change; rewriting within the file needs no new disk blocks.
    if (::pwrite(c.wav_fd, h + 4, 4, 4) != 4 || ::pwrite(c.wav_fd, h + 40, 4, 40) != 4) {
      if (!c.stopped.load()) {
        fail(c, "cannot finish the header of " + c.wav_path.string() + ": " + errno_text(errno));
      }
    }
    ::close(c.wav_fd);
    c.wav_fd = -1;
  }
  if (c.jsonl_fd >= 0) {
    ::close(c.jsonl_fd);
    c.jsonl_fd = -1;
  }
}

void Core::sweep() {
  namespace fs = std::filesystem;
  struct File {
    fs::path path;
    fs::file_time_type mtime;
    std::uint64_t size;
  };
  std::unordered_set<std::string> open;
  for (const auto& [c, owner] : open_calls) {
    if (c->wav_fd >= 0) open.insert(c->wav_path.lexically_normal().string());
    if (c->jsonl_fd >= 0) open.insert(c->jsonl_path.lexically_normal().string());
  }
  std::vector<File> files;
  std::vector<fs::path> dirs;
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator d(opts.directory, ec), end; !ec && d != end; d.increment(ec)) {
    std::error_code e;
    if (!d->is_directory(e) || !is_date_dir(d->path().filename().string())) continue;
    dirs.push_back(d->path());
    for (fs::directory_iterator f(d->path(), e), fend; !e && f != fend; f.increment(e)) {
      std::error_code fe;
      const auto ext = f->path().extension();
      if (!f->is_regular_file(fe) || (ext != ".wav" && ext != ".jsonl")) continue;
      const std::uint64_t size = f->file_size(fe);
      if (fe) continue;
      const auto mtime = f->last_write_time(fe);
      if (fe) continue;
      total += size;
      if (open.count(f->path().lexically_normal().string()) != 0) continue;  // still written
      files.push_back({f->path(), mtime, size});
    }
  }
  std::sort(files.begin(), files.end(),
            [](const File& a, const File& b) { return a.mtime < b.mtime; });
  auto remove = [&](const File& f) {
    std::error_code e;
    if (fs::remove(f.path, e)) {
      stats.files_removed.fetch_add(1, std::memory_order_relaxed);
      total -= f.size;
    }
  };
  std::size_t next = 0;
  if (opts.max_age.count() > 0) {
    const auto cutoff = fs::file_time_type::clock::now() - opts.max_age;
    for (; next < files.size() && files[next].mtime < cutoff; ++next) remove(files[next]);
  }
  if (opts.max_total_bytes > 0) {
    for (; next < files.size() && total > opts.max_total_bytes; ++next) remove(files[next]);
  }
  for (const auto& d : dirs) {
    std::error_code e;
    if (fs::is_empty(d, e) && !e) fs::remove(d, e);
  }
}

}  // namespace detail

using detail::CallState;
using detail::Core;
using detail::Item;

Recorder::Recorder(RecorderOptions options) : core_(std::make_shared<Core>(std::move(options))) {
  core_->writer = std::thread([core = core_.get()] { core->run(); });
}

Recorder::~Recorder() {
  {
    std::lock_guard lock(core_->mu);
    core_->stopping = true;
  }
  core_->wake.notify_one();
  core_->writer.join();
}

const RecorderStats& Recorder::stats() const {
  return core_->stats;
}

void Recorder::sweep_now() {
  core_->round_trip(Item::Kind::sweep);
}

void Recorder::flush() {
  core_->round_trip(Item::Kind::flush);
}

std::unique_ptr<CallRecording> Recorder::start_call(std::string_view uuid, bool audio,
                                                    bool transcript,
                                                    std::chrono::system_clock::time_point started) {
  if (!audio && !transcript) return nullptr;
  auto state = std::make_shared<CallState>();
  state->uuid = std::string(uuid);
  state->audio = audio;
  state->transcript = transcript;
  const auto dir = core_->opts.directory / detail::date_dir(started);
  const auto name = detail::file_name(uuid);
  if (audio) state->wav_path = dir / (name + ".wav");
  if (transcript) state->jsonl_path = dir / (name + ".jsonl");
  state->open_item.kind = Item::Kind::open;
  state->open_item.call = state.get();
  state->close_item.kind = Item::Kind::close;
  state->close_item.call = state.get();

  std::unique_ptr<CallRecording> rec(new CallRecording(core_, state));
  Item* block = nullptr;
  bool shut_down = false;
  {
    std::lock_guard lock(core_->mu);
    if (core_->closed) {
      shut_down = true;
    } else {
      if (audio) block = core_->take_block();
      if (!audio || block) {
        state->open_item.owner = state;
        core_->enqueue(&state->open_item);
        core_->wake.notify_one();
      }
    }
  }
  if (shut_down) {
    state->stopped.store(true);
    rec->closed_ = true;
  } else if (audio && !block) {
    core_->fail(*state, "queue full: no free block (the disk is too slow)");
    rec->closed_ = true;
  } else {
    core_->stats.calls_recorded.fetch_add(1, std::memory_order_relaxed);
    rec->block_ = block;
  }
  return rec;
}

CallRecording::CallRecording(std::shared_ptr<Core> core, std::shared_ptr<CallState> state)
    : core_(std::move(core)), state_(std::move(state)) {}

bool CallRecording::active() const {
  return !closed_ && !state_->stopped.load(std::memory_order_relaxed);
}

std::filesystem::path CallRecording::wav_path() const {
  std::lock_guard lock(core_->mu);
  return state_->wav_path;
}

std::filesystem::path CallRecording::transcript_path() const {
  std::lock_guard lock(core_->mu);
  return state_->jsonl_path;
}

bool CallRecording::check_active() {
  if (closed_) return false;
  if (state_->stopped.load(std::memory_order_relaxed)) {
    stop(nullptr);  // the writer stopped it: give the block back
    return false;
  }
  return true;
}

void CallRecording::stop(const char* reason) {
  if (reason) core_->fail(*state_, reason);
  if (block_ && std::max(pos_[0], pos_[1]) > base_) {
    core_->stats.blocks_dropped.fetch_add(1, std::memory_order_relaxed);
  }
  {
    std::lock_guard lock(core_->mu);
    if (block_) core_->give_block(block_);
    if (!core_->closed) {
      core_->enqueue(&state_->close_item);
      core_->wake.notify_one();
    }
  }
  block_ = nullptr;
  closed_ = true;
}

void CallRecording::put(int side, std::span<const std::int16_t> pcm) {
  if (!block_ || !check_active()) return;
  idle_[side] = false;
  const std::int64_t limit = std::min(clock_ + core_->slack_samples, base_ + core_->block_capacity);
  const std::int64_t n = std::min(static_cast<std::int64_t>(pcm.size()), limit - pos_[side]);
  if (n <= 0) return;
  std::int16_t* out = block_->samples + (pos_[side] - base_) * 2 + side;
  for (std::int64_t i = 0; i < n; ++i) out[2 * i] = pcm[static_cast<std::size_t>(i)];
  pos_[side] += n;
  maybe_hand_off();
}

void CallRecording::pad(int side, std::int64_t to) {
  to = std::min(to, base_ + core_->block_capacity);
  std::int16_t* out = block_->samples + (pos_[side] - base_) * 2 + side;
  for (std::int64_t i = 0, n = to - pos_[side]; i < n; ++i) out[2 * i] = 0;
  pos_[side] = std::max(pos_[side], to);
}

void CallRecording::tick() {
  if (!block_ || !check_active()) return;
  clock_ += core_->frame_samples;
  for (int side = 0; side < 2; ++side) {
    if (idle_[side] || clock_ - pos_[side] > core_->slack_samples) {
      pad(side, clock_);
      idle_[side] = true;
    }
  }
  maybe_hand_off();
}

void CallRecording::maybe_hand_off() {
  Core& core = *core_;
  while (block_ && std::min(pos_[0], pos_[1]) >= base_ + core.block_frames) {
    Item* full = block_;
    full->kind = Item::Kind::audio;
    full->call = state_.get();
    full->frames = static_cast<std::size_t>(core.block_frames);
    const std::int64_t end = base_ + core.block_frames;
    Item* next = nullptr;
    bool shut_down = false;
    {
      std::lock_guard lock(core.mu);
      if (core.closed) {
        shut_down = true;
        core.give_block(full);
      } else {
        next = core.take_block();
        // A side ahead of the other has samples past the end: they start the next block. Copied
        // under the lock, before the writer can see the full block (at most a few frames).
        for (int side = 0; next && side < 2; ++side) {
          for (std::int64_t t = end; t < pos_[side]; ++t) {
            next->samples[(t - end) * 2 + side] = full->samples[(t - base_) * 2 + side];
          }
        }
        core.enqueue(full);
        core.wake.notify_one();
      }
    }
    block_ = next;
    base_ = end;
    if (shut_down) {
      state_->stopped.store(true);
      closed_ = true;
    } else if (!next) {
      stop("queue full: no free block (the disk is too slow)");
    }
  }
}

void CallRecording::event(std::string json_line) {
  if (!state_->transcript || !check_active()) return;
  for (char& c : json_line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  auto item = std::make_unique<Item>();
  item->kind = Item::Kind::event;
  item->call = state_.get();
  item->line = std::move(json_line);
  bool full = false;
  bool shut_down = false;
  {
    std::lock_guard lock(core_->mu);
    if (core_->closed) {
      shut_down = true;
    } else if (core_->events_queued >= core_->opts.queue_events) {
      full = true;
    } else {
      ++core_->events_queued;
      core_->enqueue(item.release());
      core_->wake.notify_one();
    }
  }
  if (full) stop("transcript queue full (the disk is too slow)");
  if (shut_down) {
    state_->stopped.store(true);
    stop(nullptr);
  }
}

CallRecording::~CallRecording() {
  if (closed_) return;
  if (state_->stopped.load()) {
    stop(nullptr);
    return;
  }
  std::size_t frames = 0;
  if (block_) {
    // The tail: both sides to the later of the clock and what either side delivered.
    const std::int64_t end = std::max({clock_, pos_[0], pos_[1]});
    pad(0, end);
    pad(1, end);
    frames =
        static_cast<std::size_t>(std::max<std::int64_t>(0, std::min(pos_[0], pos_[1]) - base_));
  }
  std::lock_guard lock(core_->mu);
  if (core_->closed) {
    if (block_) core_->give_block(block_);
    return;
  }
  if (block_ && frames > 0) {
    block_->kind = Item::Kind::audio;
    block_->call = state_.get();
    block_->frames = frames;
    core_->enqueue(block_);
  } else if (block_) {
    core_->give_block(block_);
  }
  core_->enqueue(&state_->close_item);
  core_->wake.notify_one();
}

}  // namespace voxbridge::recording
