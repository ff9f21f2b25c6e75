#include "voxbridge/logtext/log_text.hpp"

namespace voxbridge::logtext {

std::string log_text(std::string_view text, std::size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::size_t n = text.size() < max_bytes ? text.size() : max_bytes;
  std::string out;
  out.reserve(n + 16);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '\\':
        out += "\\\\";
        continue;
      case '"':
        out += "\\\"";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\t':
        out += "\\t";
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0x0F];
      continue;
    }
    // U+0080-U+009F are C2 80 - C2 9F in UTF-8; U+2028 and U+2029 are E2 80 A8 and E2 80 A9.
    const auto next = [&](std::size_t k) {
      return i + k < n ? static_cast<unsigned char>(text[i + k]) : 0;
    };
    if (c == 0xC2 && next(1) >= 0x80 && next(1) <= 0x9F) {
      out += "\\u00";
      out += kHex[next(1) >> 4];
      out += kHex[next(1) & 0x0F];
      ++i;
      continue;
    }
    if (c == 0xE2 && next(1) == 0x80 && (next(2) == 0xA8 || next(2) == 0xA9)) {
      out += next(2) == 0xA8 ? "\\u2028" : "\\u2029";
      i += 2;
      continue;
    }
    out += static_cast<char>(c);
  }
  if (n < text.size()) out += "...(+" + std::to_string(text.size() - n) + " bytes)";
  return out;
}

}  // namespace voxbridge::logtext
