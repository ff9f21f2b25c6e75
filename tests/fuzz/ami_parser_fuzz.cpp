// libFuzzer target for the AMI parser (bytes from the Asterisk manager, which voxbridge does
// not control). The input is fed in reads whose sizes come from its first byte, so message and
// line boundaries fall everywhere. Checks: no crash or sanitizer report, limits hold (no line
// or message beyond them is ever returned), a failed parser stays failed, and every message it
// returns re-encodes (keys without ':' or line breaks).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "voxbridge/control/ami_codec.hpp"

using voxbridge::control::AmiMessage;
using voxbridge::control::AmiParser;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  AmiParser p(AmiParser::Limits{256, 16});
  if (data[0] & 1) p.expect_banner();
  std::size_t step = 1 + data[0] % 64;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<AmiMessage> out;
  bool failed = false;
  for (std::size_t pos = 0; pos < in.size(); pos += step, step = 1 + (step * 7 + 3) % 97) {
    const bool ok = p.feed(in.substr(pos, step), out);
    if (failed && ok) std::abort();  // must stay failed
    failed = !ok;
  }
  for (const auto& m : out) {
    if (m.fields.empty() || m.fields.size() > 16) std::abort();
    for (const auto& [k, v] : m.fields) {
      if (k.size() > 256 || v.size() > 256) std::abort();
      if (k.find(':') != std::string::npos || k.find('\n') != std::string::npos) std::abort();
      if (v.find('\n') != std::string::npos) std::abort();
    }
    (void)m.get("ActionID");
  }
  return 0;
}
