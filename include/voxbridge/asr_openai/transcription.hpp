// OpenAI's transcription request (POST /audio/transcriptions), the parts voxbridge speaks: the
// multipart/form-data body carrying one utterance as a WAV file, the answers taken apart (plain
// JSON, verbose_json with segments, or the server-sent events of stream=true), and the filter
// for what Whisper-style models write when they heard no words. Pure functions, no I/O: the
// backend (backend.hpp) drives them, the fuzzer and the unit tests call them directly.
//
// Reference: https://platform.openai.com/docs/api-reference/audio/createTranscription (the form
// fields: file, model, language (ISO-639-1), prompt, response_format json | text | srt |
// verbose_json | vtt, temperature, stream; the answers: {"text", "usage"}, verbose_json's
// segments with avg_logprob and no_speech_prob), and
// https://platform.openai.com/docs/api-reference/audio/transcript-text-delta-event /
// transcript-text-done-event (the stream's {"type":"transcript.text.delta","delta"} and
// {"type":"transcript.text.done","text","usage"} events); RFC 7578 (multipart/form-data).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "voxbridge/asr_openai/options.hpp"

namespace voxbridge::asr_openai {

/// The boundary of every request's multipart body: servers search the body for it, so it is
/// long enough that a WAV holding it by chance is out of the question, and the text fields are
/// checked not to hold it.
inline constexpr std::string_view kBoundary = "voxbridge-7d3f0b9c2e51a846f0c19d7e";

/// A 44-byte RIFF/WAVE header for `samples` of 16-bit mono PCM at `rate_hz`, then the samples
/// (little-endian).
std::string wav_file(std::span<const std::int16_t> samples, int rate_hz);

/// What one request asks for.
struct TranscriptionRequest {
  std::string model;
  std::string language;  ///< ISO-639-1, empty = not sent
  std::string prompt;    ///< empty = not sent
  std::string response_format = "json";
  bool stream = false;
  double temperature = -1;  ///< < 0 = not sent
};

/// The request for an utterance: `options` with the agent's `language` (BCP-47; its first
/// subtag is sent when the options name none) and `hints` (joined as the prompt when the options
/// have none, at most 800 bytes).
TranscriptionRequest make_request(const TranscriptionOptions& options, std::string_view language,
                                  std::span<const std::string> hints);

/// The multipart/form-data body: each field of `r`, then the file part
/// (name="file"; filename="utterance.wav"; Content-Type: audio/wav) with `wav`. Throws
/// std::invalid_argument when a field holds the boundary or a CR/LF it cannot carry.
std::string multipart_body(const TranscriptionRequest& r, std::string_view wav);
/// "multipart/form-data; boundary=..."
std::string multipart_content_type();

/// An answer taken apart.
struct Transcript {
  std::string text;
  /// verbose_json: segments dropped as silence (no_speech_prob over the threshold with
  /// avg_logprob under -1).
  int silent_segments = 0;
  /// Whatever usage the server reported: seconds (type "duration") or tokens (type "tokens").
  double usage_seconds = 0;
  std::uint64_t usage_input_tokens = 0;
  std::uint64_t usage_output_tokens = 0;
  bool ok = false;
  std::string error;  ///< what was wrong with the answer, when !ok
};

/// A 200 answer's body: {"text",...} or verbose_json (`no_speech_threshold` applied), or plain
/// text when the content type says so. Never throws.
Transcript parse_transcript(std::string_view body, std::string_view content_type,
                            double no_speech_threshold);

/// One event of stream=true (the JSON of a `data:` line).
struct StreamEvent {
  enum class Kind { delta, done, other, malformed };
  Kind kind = Kind::malformed;
  std::string text;  ///< the delta, or the whole text when done
  Transcript usage;  ///< done: the usage fields
};
StreamEvent parse_stream_event(std::string_view data);

/// The longest transcript handed on (30 s of speech is a few hundred bytes; a server that says
/// more is cut, at a UTF-8 character boundary).
inline constexpr std::size_t kMaxTranscriptBytes = 4096;
/// `text` cut to kMaxTranscriptBytes at a character boundary.
void cap_transcript(std::string& text);

/// The words of an error answer ({"error":{"message"}}, or the body's first 200 bytes), for the
/// log and the pipeline's status; never the request's key.
std::string error_message(std::string_view body);

/// True if `text` is nothing a caller said: empty, no letter or digit at all, or only
/// bracketed or parenthesized tags ("[BLANK_AUDIO]", "(silence)", "[Music]").
bool is_empty_transcript(std::string_view text);
/// `text` lower-cased, with every run of non-alphanumeric ASCII bytes made one space, trimmed
/// ("Thanks for watching!" -> "thanks for watching").
std::string normalized(std::string_view text);
/// True if `text` is one of `phrases` (each compared normalized).
bool is_known_phrase(std::string_view text, std::span<const std::string> phrases);

}  // namespace voxbridge::asr_openai
