#include "voxbridge/audio/opus.hpp"

#include <opus.h>

#include <stdexcept>
#include <string>

namespace voxbridge::audio {

OpusEncoderStream::OpusEncoderStream(int rate_hz, int bitrate_bps) : rate_(rate_hz) {
  int err = 0;
  enc_ = opus_encoder_create(rate_hz, 1, OPUS_APPLICATION_VOIP, &err);
  if (err != OPUS_OK || enc_ == nullptr) {
    throw std::runtime_error("Opus encoder at " + std::to_string(rate_hz) +
                             " Hz: " + opus_strerror(err));
  }
  opus_encoder_ctl(enc_, OPUS_SET_BITRATE(bitrate_bps));
  opus_encoder_ctl(enc_, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
}

OpusEncoderStream::~OpusEncoderStream() {
  if (enc_ != nullptr) opus_encoder_destroy(enc_);
}

std::size_t OpusEncoderStream::encode(std::span<const std::int16_t> pcm,
                                      std::span<std::uint8_t> out) {
  const auto n = static_cast<int>(pcm.size());
  if (n != rate_ / 50 && n != rate_ / 25 && n * 50 != rate_ * 3) return 0;
  const opus_int32 len =
      opus_encode(enc_, pcm.data(), n, out.data(), static_cast<opus_int32>(out.size()));
  return len > 0 ? static_cast<std::size_t>(len) : 0;
}

OpusDecoderStream::OpusDecoderStream(int rate_hz) : rate_(rate_hz) {
  int err = 0;
  dec_ = opus_decoder_create(rate_hz, 1, &err);
  if (err != OPUS_OK || dec_ == nullptr) {
    throw std::runtime_error("Opus decoder at " + std::to_string(rate_hz) +
                             " Hz: " + opus_strerror(err));
  }
}

OpusDecoderStream::~OpusDecoderStream() {
  if (dec_ != nullptr) opus_decoder_destroy(dec_);
}

bool OpusDecoderStream::decode(std::span<const std::uint8_t> packet,
                               std::vector<std::int16_t>& out) {
  const std::size_t max = static_cast<std::size_t>(rate_ / 1000 * 120);  // 120 ms, Opus' max
  const std::size_t at = out.size();
  out.resize(at + max);
  const int n = opus_decode(dec_, packet.data(), static_cast<opus_int32>(packet.size()),
                            out.data() + at, static_cast<int>(max), 0);
  out.resize(at + (n > 0 ? static_cast<std::size_t>(n) : 0));
  return n > 0;
}

}  // namespace voxbridge::audio
