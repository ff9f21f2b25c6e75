// libFuzzer target for the event-stream parser (bytes from an OpenAI-compatible server, which
// voxbridge does not control). The input is fed in reads whose sizes come from its first byte,
// so line ends (CR, LF, CRLF split across reads) fall everywhere. Checks: no crash or sanitizer
// report; the held line never exceeds the limit; a failed parser stays failed; no data payload
// holds a line end or exceeds the limit; and the payloads are the same as when the whole input
// is fed at once (the cut between reads changes nothing).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "voxbridge/llm_openai/sse_parser.hpp"

using voxbridge::llm_openai::SseParser;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  constexpr std::size_t kLimit = 256;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  std::vector<std::string> pieces;
  SseParser p(kLimit);
  const SseParser::OnData on = [&](std::string_view d) {
    if (d.size() > kLimit || d.find_first_of("\r\n") != std::string_view::npos) std::abort();
    pieces.emplace_back(d);
  };
  std::size_t step = 1 + data[0] % 64;
  bool failed = false;
  for (std::size_t pos = 0; pos < in.size(); pos += step, step = 1 + (step * 7 + 3) % 97) {
    const bool err = static_cast<bool>(p.feed(in.substr(pos, step), on));
    if (failed && !err) std::abort();  // must stay failed
    failed = err;
    if (p.pending_bytes() > kLimit) std::abort();
  }

  std::vector<std::string> whole;
  SseParser q(kLimit);
  const bool whole_failed =
      static_cast<bool>(q.feed(in, [&](std::string_view d) { whole.emplace_back(d); }));
  if (whole_failed != failed) std::abort();
  if (whole != pieces) std::abort();  // both stop at the same long line, if any
  return 0;
}
