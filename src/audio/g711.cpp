#include "voxbridge/audio/g711.hpp"

#include <array>

namespace voxbridge::audio {
namespace {

// Segment search on the magnitude; A-law works on 13-bit magnitudes (one's complement for
// negative values, as ITU-T G.191's reference does).
constexpr std::uint8_t encode_ulaw(std::int16_t sample) {
  // Sign-magnitude on the 16-bit value, bias 0x84 (33 in 14-bit units), as the CCITT reference
  // code and Asterisk's own ulaw.c do; the two low bits below G.711's 14-bit input are truncated.
  int v = sample;
  std::uint8_t mask = 0xFF;
  if (v < 0) {
    v = -v;
    mask = 0x7F;
  }
  if (v > 32635) v = 32635;  // clip at the top of segment 8 (8158 in 14-bit units)
  v += 0x84;
  int seg = 0;
  for (int t = v >> 8; t != 0; t >>= 1) ++seg;
  const int mantissa = (v >> (seg + 3)) & 0x0F;
  return static_cast<std::uint8_t>((seg << 4 | mantissa) ^ mask);
}

constexpr std::int16_t decode_ulaw(std::uint8_t code) {
  const int c = ~code & 0xFF;
  const int seg = (c >> 4) & 0x07;
  const int mantissa = c & 0x0F;
  const int mag = ((mantissa << 3) + 0x84) << seg;  // 0x84 = bias 33 << 2
  return static_cast<std::int16_t>((c & 0x80) ? (0x84 - mag) : (mag - 0x84));
}

constexpr std::uint8_t encode_alaw(std::int16_t sample) {
  int v = sample >> 3;  // 13-bit
  std::uint8_t mask = 0xD5;
  if (v < 0) {
    v = -v - 1;
    mask = 0x55;
  }
  int seg = 0;
  for (int t = v >> 5; t != 0; t >>= 1) ++seg;
  if (seg > 7) return static_cast<std::uint8_t>(0x7F ^ mask);  // clip to the largest code
  const int mantissa = seg == 0 ? (v >> 1) & 0x0F : (v >> seg) & 0x0F;
  return static_cast<std::uint8_t>((seg << 4 | mantissa) ^ mask);
}

constexpr std::int16_t decode_alaw(std::uint8_t code) {
  const int c = code ^ 0x55;
  const int seg = (c >> 4) & 0x07;
  int mag = (c & 0x0F) << 4;
  if (seg == 0) {
    mag += 8;
  } else {
    mag = (mag + 0x108) << (seg - 1);
  }
  return static_cast<std::int16_t>((c & 0x80) ? mag : -mag);
}

template <std::int16_t (*F)(std::uint8_t)>
constexpr std::array<std::int16_t, 256> make_table() {
  std::array<std::int16_t, 256> t{};
  for (int i = 0; i < 256; ++i) t[i] = F(static_cast<std::uint8_t>(i));
  return t;
}
constexpr auto kUlawTable = make_table<decode_ulaw>();
constexpr auto kAlawTable = make_table<decode_alaw>();

}  // namespace

std::uint8_t linear_to_ulaw(std::int16_t s) {
  return encode_ulaw(s);
}
std::int16_t ulaw_to_linear(std::uint8_t c) {
  return kUlawTable[c];
}
std::uint8_t linear_to_alaw(std::int16_t s) {
  return encode_alaw(s);
}
std::int16_t alaw_to_linear(std::uint8_t c) {
  return kAlawTable[c];
}

void ulaw_decode(std::span<const std::uint8_t> codes, std::span<std::int16_t> out) {
  for (std::size_t i = 0; i < codes.size(); ++i) out[i] = kUlawTable[codes[i]];
}
void alaw_decode(std::span<const std::uint8_t> codes, std::span<std::int16_t> out) {
  for (std::size_t i = 0; i < codes.size(); ++i) out[i] = kAlawTable[codes[i]];
}
void ulaw_encode(std::span<const std::int16_t> samples, std::span<std::uint8_t> out) {
  for (std::size_t i = 0; i < samples.size(); ++i) out[i] = encode_ulaw(samples[i]);
}
void alaw_encode(std::span<const std::int16_t> samples, std::span<std::uint8_t> out) {
  for (std::size_t i = 0; i < samples.size(); ++i) out[i] = encode_alaw(samples[i]);
}

}  // namespace voxbridge::audio
