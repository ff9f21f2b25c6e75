// Opus (RFC 6716, libopus) for audio sent to remote providers: a 16 kHz voice stream costs
// ~24 kbit/s instead of 256 kbit/s of LINEAR16. One encoder per call direction; packets of
// 20, 40 or 60 ms. Created once per call (allocates then); encode() allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

struct OpusEncoder;
struct OpusDecoder;

namespace voxbridge::audio {

class OpusEncoderStream {
 public:
  /// rate: 8000, 12000, 16000, 24000 or 48000 Hz; voice-tuned (OPUS_APPLICATION_VOIP).
  OpusEncoderStream(int rate_hz, int bitrate_bps = 24000);
  ~OpusEncoderStream();
  OpusEncoderStream(const OpusEncoderStream&) = delete;
  OpusEncoderStream& operator=(const OpusEncoderStream&) = delete;

  /// Encodes exactly one packet from `pcm` (20, 40 or 60 ms at the rate) into `out`; returns its
  /// size, or 0 on an invalid frame length.
  std::size_t encode(std::span<const std::int16_t> pcm, std::span<std::uint8_t> out);
  int rate_hz() const { return rate_; }
  /// Largest packet encode() writes.
  static constexpr std::size_t kMaxPacket = 1500;

 private:
  ::OpusEncoder* enc_ = nullptr;
  int rate_;
};

class OpusDecoderStream {
 public:
  explicit OpusDecoderStream(int rate_hz);
  ~OpusDecoderStream();
  OpusDecoderStream(const OpusDecoderStream&) = delete;
  OpusDecoderStream& operator=(const OpusDecoderStream&) = delete;
  /// Decodes one packet, appending its samples to `out`; false if the packet is invalid.
  bool decode(std::span<const std::uint8_t> packet, std::vector<std::int16_t>& out);

 private:
  ::OpusDecoder* dec_ = nullptr;
  int rate_;
};

}  // namespace voxbridge::audio
