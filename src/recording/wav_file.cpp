// The WAV file of a call, on the writer thread: a 44-byte header for 16-bit stereo PCM (caller
// left, agent right) written with sizes of 0 when the file is created, the audio blocks the
// io threads hand over (little-endian on disk), and the two sizes written into the header at
// close, cut back to whole stereo frames. A file stops at the 4 GiB the format allows.
#include <unistd.h>

#include <algorithm>
#include <bit>

#include "recorder_core.hpp"

namespace voxbridge::recording::detail {
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

}  // namespace

void Core::start_wav(CallState& c) {
  unsigned char h[kHeaderBytes];
  wav_header(h, opts.sample_rate_hz, 0);
  std::size_t written = 0;
  const int err = write_all(c.wav_fd, h, sizeof h, written);
  stats.bytes_written.fetch_add(written, std::memory_order_relaxed);
  if (err != 0) write_failed(c, c.wav_path, err);
}

void Core::write_audio(CallState& c, Item& block) {
  if (c.wav_fd < 0) {
    stats.blocks_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::size_t bytes = block.frames * 4;
  if constexpr (std::endian::native == std::endian::big) {
    for (std::size_t i = 0; i < block.frames * 2; ++i) {
      const auto u = static_cast<std::uint16_t>(block.samples[i]);
      block.samples[i] = static_cast<std::int16_t>((u << 8) | (u >> 8));
    }
  }
  std::size_t written = 0;
  const int err = write_all(c.wav_fd, block.samples, bytes, written);
  c.data_bytes += written;
  stats.bytes_written.fetch_add(written, std::memory_order_relaxed);
  if (err == 0 && c.data_bytes > kMaxDataBytes) {
    fail(c, "WAV file reached 4 GiB");
    close_files(c);
  } else if (err != 0) {
    write_failed(c, c.wav_path, err);
  }
}

void Core::finish_wav(CallState& c) {
  if (c.wav_fd < 0) return;
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

}  // namespace voxbridge::recording::detail
