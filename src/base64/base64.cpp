#include "voxbridge/base64/base64.hpp"

#include <array>

namespace voxbridge::base64 {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::uint8_t kBad = 0xff;

constexpr std::array<std::uint8_t, 256> make_values() {
  std::array<std::uint8_t, 256> v{};
  v.fill(kBad);
  for (std::uint8_t i = 0; i < 64; ++i) v[static_cast<unsigned char>(kAlphabet[i])] = i;
  return v;
}
constexpr std::array<std::uint8_t, 256> kValues = make_values();

/// Appends the bytes `in` encodes to `out`; false if `in` is not strict
/// base64. Checks everything before it writes anything, so a refused input leaves no trace.
template <class Out>
bool decode_into(std::string_view in, Out& out) {
  if (in.size() % 4 != 0) return false;
  if (in.empty()) return true;
  std::size_t pad = 0;
  if (in[in.size() - 1] == '=') pad = in[in.size() - 2] == '=' ? 2 : 1;
  const std::size_t data = in.size() - pad;  // characters before the padding
  for (std::size_t i = 0; i < data; ++i) {
    if (kValues[static_cast<unsigned char>(in[i])] == kBad) return false;  // also a middle '='
  }
  auto value = [&](std::size_t i) -> std::uint32_t {
    return kValues[static_cast<unsigned char>(in[i])];
  };
  // The last group's unused bits must be zero (one encoding per byte string).
  if (pad == 2 && (value(data - 1) & 0x0f) != 0) return false;
  if (pad == 1 && (value(data - 1) & 0x03) != 0) return false;
  using Byte = typename Out::value_type;
  const std::size_t old = out.size();
  out.resize(old + in.size() / 4 * 3 - pad);
  Byte* p = out.data() + old;
  std::size_t i = 0;
  for (; i + 4 <= data; i += 4) {
    const std::uint32_t v = value(i) << 18 | value(i + 1) << 12 | value(i + 2) << 6 | value(i + 3);
    *p++ = static_cast<Byte>(v >> 16);
    *p++ = static_cast<Byte>(v >> 8);
    *p++ = static_cast<Byte>(v);
  }
  if (pad != 0) {
    std::uint32_t v = value(i) << 18 | value(i + 1) << 12;
    if (pad == 1) v |= value(i + 2) << 6;
    *p++ = static_cast<Byte>(v >> 16);
    if (pad == 1) *p++ = static_cast<Byte>(v >> 8);
  }
  return true;
}

}  // namespace

void encode(std::span<const std::uint8_t> in, std::string& out) {
  const std::size_t old = out.size();
  out.resize(old + encoded_size(in.size()));
  char* p = out.data() + old;
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const std::uint32_t v = std::uint32_t{in[i]} << 16 | std::uint32_t{in[i + 1]} << 8 | in[i + 2];
    *p++ = kAlphabet[v >> 18];
    *p++ = kAlphabet[(v >> 12) & 63];
    *p++ = kAlphabet[(v >> 6) & 63];
    *p++ = kAlphabet[v & 63];
  }
  if (const std::size_t left = in.size() - i; left != 0) {
    std::uint32_t v = std::uint32_t{in[i]} << 16;
    if (left == 2) v |= std::uint32_t{in[i + 1]} << 8;
    *p++ = kAlphabet[v >> 18];
    *p++ = kAlphabet[(v >> 12) & 63];
    *p++ = left == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    *p++ = '=';
  }
}

bool decode(std::string_view in, std::vector<std::uint8_t>& out) {
  return decode_into(in, out);
}

bool decode(std::string_view in, std::string& out) {
  return decode_into(in, out);
}

}  // namespace voxbridge::base64
