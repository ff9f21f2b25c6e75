// G.711 mu-law and A-law, bit-exact with ITU-T G.711 (as in ITU-T G.191's reference code).
// Pure functions on caller-owned buffers; no state, no allocation, any thread.
#pragma once

#include <cstdint>
#include <span>

namespace voxbridge::audio {

std::uint8_t linear_to_ulaw(std::int16_t sample);
std::int16_t ulaw_to_linear(std::uint8_t code);
std::uint8_t linear_to_alaw(std::int16_t sample);
std::int16_t alaw_to_linear(std::uint8_t code);

/// Decodes codes.size() bytes into out (out.size() must be >= codes.size()).
void ulaw_decode(std::span<const std::uint8_t> codes, std::span<std::int16_t> out);
void alaw_decode(std::span<const std::uint8_t> codes, std::span<std::int16_t> out);
void ulaw_encode(std::span<const std::int16_t> samples, std::span<std::uint8_t> out);
void alaw_encode(std::span<const std::int16_t> samples, std::span<std::uint8_t> out);

enum class G711Law { ulaw, alaw };

}  // namespace voxbridge::audio
