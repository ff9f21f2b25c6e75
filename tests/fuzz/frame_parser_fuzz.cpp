// libFuzzer target for the AudioSocket frame parser. The input is split into reads at sizes
// taken from its first bytes, so the fuzzer explores message boundaries as well as content.
// Checks: no crash or sanitizer report (every payload byte is read, so ASan sees any
// out-of-buffer span), no payload above the cap, and a failed parser accepts nothing more.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "voxbridge/audiosocket/protocol.hpp"

using voxbridge::audiosocket::FrameParser;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // First byte: payload cap selector; second: read-size seed.
  const std::size_t caps[] = {160, 320, 1920, 8192, 65535};
  FrameParser p(caps[data[0] % 5]);
  std::size_t step_seed = data[1];
  data += 2;
  size -= 2;
  std::size_t pos = 0;
  while (pos < size) {
    auto w = p.writable();
    if (w.empty()) break;  // stream rejected
    const std::size_t step = 1 + (step_seed * 2654435761u + pos) % 700;
    step_seed = step_seed * 31 + 7;
    const std::size_t n = std::min({step, w.size(), size - pos});
    std::memcpy(w.data(), data + pos, n);
    p.commit(n);
    pos += n;
    std::error_code ec;
    while (auto m = p.next(ec)) {
      if (m->payload.size() > p.max_payload_bytes()) __builtin_trap();
      volatile std::uint8_t sink = 0;
      for (std::uint8_t b : m->payload) sink = sink ^ b;  // touch every byte (ASan checks it)
      (void)sink;
    }
    if (ec) {
      if (!p.writable().empty()) __builtin_trap();  // a failed parser must refuse more input
      break;
    }
  }
  return 0;
}
