#include "voxbridge/playout/playout.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

namespace voxbridge::playout {

namespace {

std::size_t page_bytes() {
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

std::size_t round_up(std::size_t n, std::size_t to) {
  return (n + to - 1) / to * to;
}

std::int16_t* map_ring(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return static_cast<std::int16_t*>(p);
}

}  // namespace

void PlayoutQueue::Unmap::operator()(std::int16_t* p) const {
  if (p != nullptr) ::munmap(p, bytes);
}

PlayoutQueue::PlayoutQueue(std::size_t capacity, std::size_t low_watermark,
                           std::size_t high_watermark)
    : capacity_(std::max<std::size_t>(capacity, 1)),
      low_(std::min(low_watermark, capacity_)),
      high_(std::clamp(high_watermark, low_, capacity_)) {
  const std::size_t bytes = round_up(capacity_ * sizeof(std::int16_t), page_bytes());
  ring_ = std::unique_ptr<std::int16_t[], Unmap>(map_ring(bytes), Unmap{bytes});
}

void PlayoutQueue::note_written(std::size_t tail, std::size_t n) {
  if (n == 0) return;
  touched_ = tail + n > capacity_ ? capacity_ : std::max(touched_, tail + n);
}

void PlayoutQueue::release_drained() {
  // Only ever called with the queue at the front of the ring (head_ == 0).
  const std::size_t page = page_bytes();
  const std::size_t keep = round_up(std::max(kKeepBytes, size_ * sizeof(std::int16_t)), page);
  const std::size_t used = round_up(touched_ * sizeof(std::int16_t), page);
  if (used < keep + kMinReleaseBytes) return;
  auto* base = reinterpret_cast<unsigned char*>(ring_.get());
  // MADV_DONTNEED on a private anonymous mapping: the pages go back now and read as zeros if
  // touched again. Failure only means they stay resident.
  if (::madvise(base + keep, used - keep, MADV_DONTNEED) == 0) {
    touched_ = keep / sizeof(std::int16_t);
  }
}

std::size_t PlayoutQueue::resident_bytes() const {
  const std::size_t page = page_bytes();
  const std::size_t bytes = ring_.get_deleter().bytes;
  std::vector<unsigned char> vec(bytes / page);
  if (::mincore(ring_.get(), bytes, vec.data()) != 0) return 0;
  std::size_t n = 0;
  for (auto v : vec) n += (v & 1) != 0 ? page : 0;
  return n;
}

std::size_t PlayoutQueue::push(std::span<const std::int16_t> samples) {
  const std::size_t n = std::min(samples.size(), free_space());
  overflow_ += samples.size() - n;
  std::size_t tail = (head_ + size_) % capacity_;
  const std::size_t first = std::min(n, capacity_ - tail);
  std::memcpy(ring_.get() + tail, samples.data(), first * sizeof(std::int16_t));
  std::memcpy(ring_.get(), samples.data() + first, (n - first) * sizeof(std::int16_t));
  note_written(tail, n);
  size_ += n;
  return n;
}

std::size_t PlayoutQueue::push_silence(std::size_t count) {
  const std::size_t n = std::min(count, free_space());
  std::size_t tail = (head_ + size_) % capacity_;
  const std::size_t first = std::min(n, capacity_ - tail);
  std::fill_n(ring_.get() + tail, first, std::int16_t{0});
  std::fill_n(ring_.get(), n - first, std::int16_t{0});
  note_written(tail, n);
  size_ += n;
  return n;
}

std::size_t PlayoutQueue::pop(std::span<std::int16_t> out) {
  const std::size_t n = std::min(out.size(), size_);
  const std::size_t first = std::min(n, capacity_ - head_);
  std::memcpy(out.data(), ring_.get() + head_, first * sizeof(std::int16_t));
  std::memcpy(out.data() + first, ring_.get(), (n - first) * sizeof(std::int16_t));
  head_ = (head_ + n) % capacity_;
  size_ -= n;
  // Keep a small queue at the front of the ring: a call that only ever holds a frame or two
  // (an echo, a jitter margin) then keeps using the same cache lines and pages instead of
  // walking, and making resident, the whole ring.
  if (size_ == 0) {
    head_ = 0;
  } else if (head_ != 0 && size_ <= kCompactBelow && head_ + size_ <= capacity_) {
    std::memmove(ring_.get(), ring_.get() + head_, size_ * sizeof(std::int16_t));
    head_ = 0;
  }
  // Back at the front after a burst: give the rest of what the burst touched back (one system
  // call per drained burst; a standing queue of a frame or two never gets here).
  if (head_ == 0 && touched_ * sizeof(std::int16_t) >= kKeepBytes + kMinReleaseBytes) {
    release_drained();
  }
  return n;
}

std::size_t PlayoutQueue::clear() {
  const std::size_t n = size_;
  head_ = 0;
  size_ = 0;
  if (touched_ * sizeof(std::int16_t) >= kKeepBytes + kMinReleaseBytes) release_drained();
  return n;
}

void Pacer::start(Clock::time_point t0) {
  start_ = t0;
  // Frame 0 is the anchor itself; the first frame goes out one period later, by which time
  // Asterisk's first audio (sent right after the UUID) has told us the leg's format.
  next_ = 1;
}

bool Pacer::on_timer(Clock::time_point now) {
  if (now < next_deadline()) return false;  // woke early: nothing is due yet
  ++sent_;
  // Serve one frame for the newest deadline that has passed; the deadlines between the one we
  // were waiting for and that one are late ticks, skipped rather than sent as a burst.
  const auto elapsed = now - start_;
  const auto due = static_cast<std::uint64_t>(elapsed / frame_);
  late_ += due - next_;
  next_ = due + 1;
  return true;
}

namespace {
std::size_t samples_for(int rate_hz, std::chrono::milliseconds d) {
  return static_cast<std::size_t>(rate_hz) * static_cast<std::size_t>(d.count()) / 1000;
}
}  // namespace

Playout::Playout(const Options& o)
    : rate_hz_(o.rate_hz),
      frame_samples_(samples_for(o.rate_hz, o.frame)),
      queue_(samples_for(o.rate_hz, o.capacity), samples_for(o.rate_hz, o.low_watermark),
             samples_for(o.rate_hz, o.high_watermark)),
      pacer_(o.frame) {}

bool Playout::tick(Clock::time_point now, std::span<std::int16_t> out) {
  if (!pacer_.on_timer(now)) return false;
  const std::size_t want = std::min(frame_samples_, out.size());
  const std::size_t got = queue_.pop(out.first(want));
  if (got < want) {
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(got),
              out.begin() + static_cast<std::ptrdiff_t>(want), std::int16_t{0});
    // Silence between utterances is normal; running dry only becomes an underrun if audio comes
    // back right away (see push()).
    if (playing_) {
      dry_pending_ = true;
      dry_tick_ = pacer_.frames_sent();
    }
    playing_ = false;
  } else {
    playing_ = true;
  }
  return true;
}

std::size_t Playout::push(std::span<const std::int16_t> samples) {
  if (dry_pending_ && !samples.empty()) {
    if (pacer_.frames_sent() <= dry_tick_ + 1) ++underruns_;
    dry_pending_ = false;
  }
  return queue_.push(samples);
}

void Playout::flush() {
  if (queue_.clear() > 0) ++flushes_;
  playing_ = false;
  dry_pending_ = false;
}

}  // namespace voxbridge::playout
