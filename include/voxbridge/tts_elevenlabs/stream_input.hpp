// ElevenLabs' text-to-speech WebSocket with input streaming (GET /v1/text-to-speech/{voice_id}/
// stream-input), the parts voxbridge speaks: the socket's URL for a reply's audio format, the
// client's messages, and the server's messages taken apart. Pure functions, no I/O: the backend
// (backend.hpp) drives them, the unit tests call them directly.
//
// Reference:
// https://elevenlabs.io/docs/api-reference/text-to-speech/v-1-text-to-speech-voice-id-stream-input
// (query parameters model_id, output_format, inactivity_timeout; initializeConnection {"text":" ",
// voice_settings, generation_config.chunk_length_schedule}; sendText {"text", "flush"};
// closeConnection {"text":""}; audioOutput {"audio" base64, "alignment" {"chars",
// "charStartTimesMs", "charDurationsMs"}}; finalOutput {"isFinal": true}) and
// https://elevenlabs.io/docs/websockets (text ends with a space; flush generates what is
// buffered at once).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "voxbridge/tts_elevenlabs/options.hpp"

namespace voxbridge::tts_elevenlabs {

/// The audio asked of the service for a reply at `rate_hz` (LINEAR16 back to voxbridge).
struct OutputFormat {
  std::string name;   ///< "pcm_16000", "ulaw_8000", ...
  bool ulaw = false;  ///< G.711 mu-law bytes (decoded by the backend), else s16le PCM
  int rate_hz = 16000;
};

/// The format for a reply at `rate_hz`, or nullopt-like {name ""} when the service has none at
/// that rate (it speaks pcm at 8000, 16000, 22050, 24000, 44100 and 48000 Hz, and ulaw_8000).
OutputFormat output_format(const ElevenLabsOptions& o, int rate_hz);

/// `url/VOICE/stream-input?model_id=..&output_format=..&inactivity_timeout=..`, the voice and
/// every value percent-encoded.
std::string socket_url(const ElevenLabsOptions& o, std::string_view voice_id,
                       const OutputFormat& f);

/// The first message: a single space, the voice settings that are set, the first generation's
/// size.
std::string initialize_message(const ElevenLabsOptions& o);
/// One piece of the reply's text, generated at once (flush); a trailing space is added if it
/// has none (the service wants words whole).
std::string text_message(std::string_view text);
/// The end of the reply's text: the service generates what is left, then sends isFinal.
inline constexpr std::string_view kCloseMessage = R"({"text":""})";

/// Longest reply text one message carries (a reply is a few sentences).
inline constexpr std::size_t kMaxTextBytes = 4096;

/// One server message, taken apart.
struct ServerMessage {
  enum class Type { audio, final, error, other, malformed };
  Type type = Type::other;
  std::string audio;      ///< decoded bytes (audio)
  std::size_t chars = 0;  ///< characters its alignment covers (audio)
  bool is_final = false;  ///< the audio message also says isFinal
  std::string why;        ///< error: the service's words (untrusted); malformed: what was wrong
};

/// Longest audio one message may carry, decoded (the service sends well under a second).
inline constexpr std::size_t kMaxAudioBytes = 1u << 20;

/// Takes one server message apart; never throws.
ServerMessage parse_server_message(std::string_view json);

}  // namespace voxbridge::tts_elevenlabs
