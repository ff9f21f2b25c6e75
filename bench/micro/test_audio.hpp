// Deterministic speech-like test audio shared by the microbenchmarks: a few harmonics plus
// low-level noise, so codecs and filters see realistic, non-trivial input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace voxbridge::micro {

/// `samples` samples at `rate_hz`.
std::vector<std::int16_t> speech_like(std::size_t samples, int rate_hz);
/// The same as signed 16-bit little-endian bytes (AudioSocket slin).
std::vector<std::uint8_t> to_slin_bytes(const std::vector<std::int16_t>& samples);

}  // namespace voxbridge::micro
