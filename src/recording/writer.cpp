// The writer thread: Core's pool and queue set up once, the loop that takes the queue's items
// one by one (retention in between, every sweep_interval) and what each kind of item does. The
// files themselves are written by call_files.cpp, wav_file.cpp and transcript_file.cpp.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <system_error>

#include "recorder_core.hpp"

namespace voxbridge::recording::detail {

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

void Core::fail(CallState& c, std::string_view reason) {
  if (c.stopped.exchange(true)) return;
  stats.calls_failed.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("call uuid={}: recording stopped: {}", c.uuid, reason);
}

void Core::round_trip(Item::Kind kind) {
  Item marker;
  marker.kind = kind;
  std::unique_lock lock(mu);
  if (closed) return;
  enqueue(&marker);
  wake.notify_one();
  done.wait(lock, [&] { return marker.done; });
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
      write_audio(*c, *it);
      std::lock_guard lock(mu);
      give_block(it);
      break;
    }
    case Item::Kind::event:
      write_event(*c, *it);
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

}  // namespace voxbridge::recording::detail
