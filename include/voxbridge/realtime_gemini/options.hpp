// The settings of one Gemini Live backend ([gemini-NAME] in voxbridge.conf) as plain data:
// config fills them, the backend reads them. No sockets, no JSON here.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace voxbridge::realtime_gemini {

struct GeminiOptions {
  /// The section's NAME, for logs and metrics.
  std::string name;
  /// The BidiGenerateContent endpoint without a query: Google's, or a proxy's.
  std::string url =
      "wss://generativelanguage.googleapis.com/ws/"
      "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent";
  /// `setup.model`: "models/..." (a bare name gets the prefix).
  std::string model = "models/gemini-2.5-flash-native-audio-preview-09-2025";
  /// From ${NAME} or ${file:PATH} only (config refuses a literal key); never logged.
  std::string api_key;
  /// Where the key goes: the `x-goog-api-key` header (default: it stays out of URLs), or the
  /// `key=` query parameter (for proxies that only pass the URL on). Both are Google's.
  bool key_in_query = false;
  std::string ca_file;  ///< PEM CAs to trust for wss (empty = the system's)

  /// systemInstruction; {caller_number}, {caller_name}, {called_number}, {call_id} (the
  /// AudioSocket UUID) and {VB_...} (the call's variables) are filled in per call.
  std::string instructions =
      "You are a helpful voice assistant answering a telephone call. Keep answers short.";
  /// speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName ("" = the service's).
  std::string voice = "Puck";
  /// speechConfig.languageCode, BCP-47 ("" = the service's choice).
  std::string language;
  /// realtimeInputConfig.automaticActivityDetection: the service's VAD on (the default) or off
  /// ("none": then the model answers only the greeting, DTMF and tool results).
  std::string turn_detection = "auto";
  /// START_SENSITIVITY_HIGH/LOW, END_SENSITIVITY_HIGH/LOW ("" = the service's default).
  std::string vad_start_sensitivity;
  std::string vad_end_sensitivity;
  int vad_prefix_padding_ms = 0;  ///< 0 = the service's default
  int vad_silence_ms = 0;         ///< 0 = the service's default
  /// inputAudioTranscription and outputAudioTranscription (the call's transcript).
  bool transcription = true;
  /// The model speaks first: a user turn with this text goes out right after setupComplete.
  bool greeting = true;
  std::string greeting_text =
      "The call has just been answered. Greet the caller briefly and ask how you can help.";
  /// The actions the model may ask for as tools: transfer, hang_up, send_dtmf, set_variable.
  bool tools = true;
  /// Caller audio is sent in realtimeInput messages of this many milliseconds (20..200).
  int append_ms = 40;
  /// contextWindowCompression with a sliding window: without it an audio session ends after
  /// about 15 minutes (the service's limit); trigger_tokens 0 = the service's default.
  bool context_compression = true;
  std::uint64_t compression_trigger_tokens = 0;

  /// Concurrent sessions this backend opens (0 = no limit); calls beyond it get the fallback.
  std::size_t max_sessions = 0;
  /// A call that reaches this length or this many tokens (0 = no cap) hears `goodbye` spoken
  /// by the model and is hung up.
  std::chrono::seconds max_call_duration{0};
  std::uint64_t max_call_tokens = 0;
  std::string goodbye = "I'm sorry, we have to end the call now. Goodbye.";

  std::chrono::milliseconds connect_timeout{10000};
  /// Nothing from the service for this long ends the session as failed.
  std::chrono::milliseconds idle_timeout{120000};
  /// goAway, or a socket that breaks mid-call: a new socket resumes the session with the
  /// latest sessionResumption handle (or, without one, a new session told the conversation so
  /// far), at most max_resumes times per call.
  bool resume = true;
  int max_resumes = 8;
  /// Service threads for this backend's sockets, JSON and base64 (never a call's io thread).
  int threads = 1;

  bool operator==(const GeminiOptions&) const = default;
};

}  // namespace voxbridge::realtime_gemini
