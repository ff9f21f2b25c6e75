// Base64 (RFC 4648 section 4: the standard alphabet, '=' padding), as the JSON wire protocols of
// the AI services carry audio and as HTTP Basic authentication needs it.
//
// Offers: encode and decode that append to a caller-owned buffer, so a call's per-message work
// reuses one buffer (no allocation once it has grown). Decoding is strict: characters outside
// the alphabet, whitespace, misplaced or missing padding, and non-zero bits after the last
// character are refused (the input is untrusted).
// Thread: none of its own; pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace voxbridge::base64 {

/// Characters encode() writes for `n` bytes.
constexpr std::size_t encoded_size(std::size_t n) {
  return (n + 2) / 3 * 4;
}

/// Appends the encoding of `in` to `out`.
void encode(std::span<const std::uint8_t> in, std::string& out);
inline void encode(std::string_view in, std::string& out) {
  encode({reinterpret_cast<const std::uint8_t*>(in.data()), in.size()}, out);
}
inline std::string encode(std::string_view in) {
  std::string out;
  encode(in, out);
  return out;
}

/// Appends the bytes `in` encodes to `out`; false (out unchanged) if `in` is not valid base64.
bool decode(std::string_view in, std::vector<std::uint8_t>& out);
bool decode(std::string_view in, std::string& out);

}  // namespace voxbridge::base64
