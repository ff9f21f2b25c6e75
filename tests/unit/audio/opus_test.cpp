#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "voxbridge/audio/opus.hpp"

namespace voxbridge::audio {
namespace {

TEST(Opus, RoundTripKeepsAToneAndItsLevel) {
  constexpr int kRate = 16000;
  OpusEncoderStream enc(kRate, 24000);
  OpusDecoderStream dec(kRate);
  std::vector<std::int16_t> in(kRate), out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    in[i] = static_cast<std::int16_t>(
        8000 * std::sin(2 * std::numbers::pi * 1000.0 * static_cast<double>(i) / kRate));
  }
  std::vector<std::uint8_t> packet(OpusEncoderStream::kMaxPacket);
  std::size_t bytes = 0;
  for (std::size_t at = 0; at + 960 <= in.size(); at += 960) {  // 60 ms packets
    const std::size_t n = enc.encode({in.data() + at, 960}, packet);
    ASSERT_GT(n, 0u);
    bytes += n;
    ASSERT_TRUE(dec.decode({packet.data(), n}, out));
  }
  EXPECT_EQ(out.size(), 16u * 960u);
  // ~24 kbit/s instead of 256 kbit/s of LINEAR16.
  EXPECT_LT(static_cast<double>(bytes) * 8 / 0.96, 30000.0);
  // The decoded tone: same frequency (least-squares amplitude at 1 kHz), level within 1 dB.
  double s = 0, c = 0, e_in = 0, e_out = 0;
  for (std::size_t i = 3200; i < out.size(); ++i) {
    const double w = 2 * std::numbers::pi * 1000.0 * static_cast<double>(i) / kRate;
    s += out[i] * std::sin(w);
    c += out[i] * std::cos(w);
    e_in += double(in[i]) * in[i];
    e_out += double(out[i]) * out[i];
  }
  const double amp = 2 * std::hypot(s, c) / static_cast<double>(out.size() - 3200);
  EXPECT_NEAR(amp, 8000, 8000 * 0.12);
  EXPECT_NEAR(10 * std::log10(e_out / e_in), 0.0, 1.0);
}

TEST(Opus, RejectsFrameLengthsOpusCannotCode) {
  OpusEncoderStream enc(16000);
  std::vector<std::int16_t> pcm(300, 0);  // 18.75 ms
  std::vector<std::uint8_t> packet(OpusEncoderStream::kMaxPacket);
  EXPECT_EQ(enc.encode(pcm, packet), 0u);
  OpusDecoderStream dec(16000);
  std::vector<std::int16_t> out;
  const std::uint8_t junk[] = {0xFF, 0xFF, 0xFF};
  EXPECT_FALSE(dec.decode(junk, out));
}

}  // namespace
}  // namespace voxbridge::audio
