// libFuzzer target for what Deepgram's Live Audio socket sends (untrusted JSON from a service
// voxbridge does not control): asr_deepgram::parse_server_message on one message per input.
// Checks: no crash or sanitizer report; a malformed message says why; what is kept is inside
// the bounds the backend relies on (a transcript of at most kMaxTranscriptBytes, finite times
// of 0 .. 1e7 s, a confidence of 0 .. 1, a request id of at most 64 bytes).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "voxbridge/asr_deepgram/listen.hpp"

using voxbridge::asr_deepgram::kMaxTranscriptBytes;
using voxbridge::asr_deepgram::parse_server_message;
using voxbridge::asr_deepgram::ServerMessage;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
bool time_ok(double t) {
  return std::isfinite(t) && t >= 0 && t <= 1e7;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const ServerMessage m = parse_server_message(text);
  if (m.type == ServerMessage::Type::malformed) {
    check(!m.why.empty());
    return 0;
  }
  check(m.why.empty());
  check(m.transcript.size() <= kMaxTranscriptBytes);
  check(time_ok(m.start) && time_ok(m.duration) && time_ok(m.time));
  check(m.confidence >= 0 && m.confidence <= 1);
  check(m.request_id.size() <= 64);
  return 0;
}
