// Deepgram's Live Audio protocol (GET /v1/listen, a WebSocket), the parts voxbridge speaks:
// the URL of a socket for a call's audio format, the client's control messages, and the
// server's messages taken apart. Pure functions, no I/O: the backend (backend.hpp) drives them,
// the fuzzer and the unit tests call them directly.
//
// Reference: https://developers.deepgram.com/reference/speech-to-text/listen-streaming (the
// AsyncAPI specification: query parameters, ListenV1Results, ListenV1UtteranceEnd,
// ListenV1SpeechStarted, ListenV1Metadata, and the KeepAlive, Finalize and CloseStream messages),
// https://developers.deepgram.com/docs/understand-endpointing-interim-results (is_final,
// speech_final), /docs/utterance-end, /docs/finalize, /docs/audio-keep-alive, /docs/keyterm.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "voxbridge/asr_deepgram/options.hpp"

namespace voxbridge::asr_deepgram {

/// The audio a socket carries (Deepgram takes raw audio described in the URL).
struct AudioFormat {
  enum class Encoding { linear16, mulaw };
  Encoding encoding = Encoding::linear16;
  int sample_rate_hz = 8000;
  bool operator==(const AudioFormat&) const = default;
};

/// Longest phrase hint sent, and how many (the URL stays well under the 8 KiB lines servers
/// take).
inline constexpr std::size_t kMaxHintBytes = 100;
inline constexpr std::size_t kMaxHints = 50;

/// The socket's URL: `url?model=..&encoding=..&sample_rate=..&channels=1&interim_results=true
/// &endpointing=..&utterance_end_ms=..&vad_events=..&smart_format=..&language=..` and, per
/// hint, `keyterm=` (Nova-3, Flux) or `keywords=` (older models). Every value percent-encoded.
std::string listen_url(const DeepgramOptions& o, const AudioFormat& f, std::string_view language,
                       std::span<const std::string> hints);

/// The client's text messages.
inline constexpr std::string_view kKeepAlive = R"({"type":"KeepAlive"})";
inline constexpr std::string_view kFinalize = R"({"type":"Finalize"})";
inline constexpr std::string_view kCloseStream = R"({"type":"CloseStream"})";

/// One server message, taken apart. Times are seconds of the socket's audio.
struct ServerMessage {
  enum class Type { results, utterance_end, speech_started, metadata, other, malformed };
  Type type = Type::other;
  // results
  std::string transcript;  ///< the first alternative's (untrusted text)
  double confidence = 0;
  double start = 0, duration = 0;
  bool is_final = false, speech_final = false, from_finalize = false;
  // utterance_end: last_word_end; speech_started: timestamp; metadata: duration
  double time = 0;
  std::string request_id;  ///< metadata (at most 64 bytes kept)
  std::string why;         ///< malformed: what was wrong
};

/// Longest transcript taken from one result (a turn is a few hundred bytes).
inline constexpr std::size_t kMaxTranscriptBytes = 16 * 1024;

/// Takes one server message apart; never throws. Unknown types are `other` (the service may
/// add some); a message that is not JSON, or a known type with fields of the wrong type, is
/// `malformed`. Times must be finite and within 0 .. 1e7 s.
ServerMessage parse_server_message(std::string_view json);

}  // namespace voxbridge::asr_deepgram
