// Recorder and CallRecording: the public side of the recordings (see recorder.hpp). start_call,
// stats, sweep_now and flush run on any thread; a CallRecording's calls on its call's io thread,
// where the per-frame ones (caller, agent, tick) fill a block from the pool and hand it to the
// writer thread (writer.cpp) with one short lock per block. What runs on the writer is in the
// other files of this folder (recorder_core.hpp lists them).
#include "voxbridge/recording/recorder.hpp"

#include <algorithm>
#include <mutex>

#include "recorder_core.hpp"

namespace voxbridge::recording {

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
