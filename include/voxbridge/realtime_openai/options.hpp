// The settings of one OpenAI Realtime backend ([realtime-NAME] in voxbridge.conf) as plain data:
// config fills them, the backend reads them. No sockets, no JSON here.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace voxbridge::realtime_openai {

struct RealtimeOptions {
  /// The section's NAME, for logs and metrics.
  std::string name;
  /// The Realtime endpoint without the query: OpenAI's, a proxy's, or with `azure` an Azure
  /// OpenAI resource's (wss://RESOURCE.openai.azure.com/openai/realtime).
  std::string url = "wss://api.openai.com/v1/realtime";
  /// `?model=` (OpenAI), or with `azure` the deployment's name (`?deployment=`).
  std::string model = "gpt-realtime";
  /// Azure OpenAI: the key goes in an `api-key` header and the URL names the deployment and the
  /// api-version; otherwise `Authorization: Bearer KEY`.
  bool azure = false;
  std::string api_version = "2025-04-01-preview";
  /// From ${NAME} or ${file:PATH} only (config refuses a literal key); never logged.
  std::string api_key;
  std::string ca_file;  ///< PEM CAs to trust for wss (empty = the system's)

  /// The model's instructions; {caller_number}, {caller_name}, {called_number}, {call_id} (the
  /// AudioSocket UUID) and {VB_...} (the call's variables) are filled in per call.
  std::string instructions =
      "You are a helpful voice assistant answering a telephone call. Keep answers short.";
  std::string voice = "marin";
  /// "server_vad", "semantic_vad" or "none" (then voxbridge never asks for a response on its
  /// own: the model answers only the greeting, DTMF and tool results).
  std::string turn_detection = "server_vad";
  double vad_threshold = 0.5;          ///< server_vad: 0..1
  int vad_prefix_padding_ms = 300;     ///< server_vad
  int vad_silence_ms = 500;            ///< server_vad
  std::string vad_eagerness = "auto";  ///< semantic_vad: low, medium, high, auto
  /// Transcription of the caller ("" = off: then the transcript has the agent's side only).
  std::string transcription_model = "gpt-4o-mini-transcribe";
  std::string transcription_language;  ///< ISO-639-1, "" = the model guesses
  /// The model speaks first: a response is asked for as soon as the session is set up, with
  /// these extra instructions ("" = none, just the session's).
  bool greeting = true;
  std::string greeting_instructions = "Greet the caller briefly and ask how you can help.";
  /// The actions the model may ask for as tools: transfer, hang_up, send_dtmf, set_variable.
  bool tools = true;
  /// Caller audio is sent in appends of this many milliseconds (20..200).
  int append_ms = 40;
  /// Output tokens per response (0 = the service's default, "inf").
  int max_output_tokens = 0;

  /// Concurrent sessions this backend opens (0 = no limit); calls beyond it get the fallback.
  std::size_t max_sessions = 0;
  /// A call that reaches this length or this many tokens (0 = no cap) hears `goodbye` spoken
  /// by the model and is hung up.
  std::chrono::seconds max_call_duration{0};
  std::uint64_t max_call_tokens = 0;
  std::string goodbye = "I'm sorry, we have to end the call now. Goodbye.";

  std::chrono::milliseconds connect_timeout{10000};
  /// Nothing from the service for this long ends the session as failed (the service sends
  /// events at least at every turn; the socket's own pings keep an idle but live one answering).
  std::chrono::milliseconds idle_timeout{120000};
  /// A socket that breaks mid-call is reopened once and the conversation so far replayed.
  bool reconnect = true;
  /// Service threads for this backend's sockets, JSON and base64 (never a call's io thread).
  int threads = 1;

  bool operator==(const RealtimeOptions&) const = default;
};

}  // namespace voxbridge::realtime_openai
