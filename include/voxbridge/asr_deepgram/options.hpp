// A Deepgram streaming recognizer as configured ([deepgram-NAME]), as plain data: config fills
// it, the backend (backend.hpp) uses it.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace voxbridge::asr_deepgram {

struct DeepgramOptions {
  std::string name;  ///< the [deepgram-NAME] section ("deepgram": the built-in defaults)
  /// The Live Audio endpoint; regional ones too (wss://api.eu.deepgram.com/v1/listen), or a
  /// self-hosted Deepgram (ws://HOST:8080/v1/listen).
  std::string url = "wss://api.deepgram.com/v1/listen";
  std::string api_key;  ///< sent as "Authorization: Token KEY"; from DEEPGRAM_API_KEY by default
  std::string model = "nova-3";
  /// BCP-47; empty = the agent's `language` (RecognitionConfig.language), else Deepgram's.
  std::string language;
  /// Deepgram's endpointing: this much silence after speech makes a final result with
  /// speech_final (0 = endpointing=false: voxbridge's own VAD alone ends turns).
  std::chrono::milliseconds endpointing{300};
  /// UtteranceEnd after this much time with no new word (0 = not asked; Deepgram's minimum is
  /// 1000).
  std::chrono::milliseconds utterance_end{1000};
  bool smart_format = true;
  /// SpeechStarted events (the caller's speech onset as Deepgram heard it).
  bool vad_events = true;
  /// A KeepAlive text message this often while the caller is silent between utterances
  /// (Deepgram closes a socket that hears nothing for 10 s).
  std::chrono::milliseconds keepalive{4000};
  /// How long a call's socket is kept, idle between utterances, when the end of the call is not
  /// known (streams served over gRPC by voxbridge-provider); in process the call's end closes it.
  std::chrono::milliseconds linger{30000};
  /// After the end of an utterance, the longest wait for Deepgram's last results (Finalize).
  std::chrono::milliseconds finalize_timeout{2000};
  std::chrono::milliseconds connect_timeout{10000};
  std::string ca_file;           ///< wss://: PEM roots (empty = the system's)
  int threads = 1;               ///< the backend's io threads (sockets, JSON)
  std::size_t max_sessions = 0;  ///< call sockets at once (0 = no cap)

  bool operator==(const DeepgramOptions&) const = default;
};

}  // namespace voxbridge::asr_deepgram
