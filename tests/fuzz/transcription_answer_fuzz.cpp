// libFuzzer target for what an OpenAI-compatible transcription server answers (untrusted text
// from a server voxbridge does not control): asr_openai::parse_transcript on the input as a
// JSON body and as plain text, parse_stream_event on it as one event of stream=true, and the
// filters the backend runs on the transcript.
// Checks: no crash or sanitizer report; a rejected answer says why; text kept is no longer
// than the answer it came from; the filters agree with each other (a transcript with words has
// a normalized form, one without is no known phrase); an error's words are at most 200 bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "voxbridge/asr_openai/transcription.hpp"

namespace oa = voxbridge::asr_openai;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const oa::TranscriptionOptions options;
  for (const auto* type : {"application/json", "text/plain"}) {
    const oa::Transcript t = oa::parse_transcript(text, type, 0.6);
    check(t.ok != !t.error.empty() || (t.ok && t.error.empty()));
    if (!t.ok) continue;
    check(t.text.size() <= size);
    const bool empty = oa::is_empty_transcript(t.text);
    if (empty)
      check(oa::normalized(t.text).empty() || t.text.find_first_of("[(") != std::string::npos);
    if (oa::normalized(t.text).empty()) check(!oa::is_known_phrase(t.text, options.hallucinations));
  }
  const oa::StreamEvent e = oa::parse_stream_event(text);
  if (e.kind == oa::StreamEvent::Kind::delta || e.kind == oa::StreamEvent::Kind::done) {
    check(e.text.size() <= size);
  } else {
    check(e.text.empty());
  }
  check(oa::error_message(text).size() <= 200);
  return 0;
}
