// An OpenAI-compatible transcription server as configured ([transcription-NAME]), as plain
// data: config fills it, the backend (backend.hpp) uses it. OpenAI itself, Groq, and the local
// servers people run for privacy (speaches / faster-whisper-server, whisper.cpp's server,
// LocalAI) all take POST {base_url}/audio/transcriptions.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace voxbridge::asr_openai {

struct TranscriptionOptions {
  std::string name;  ///< the [transcription-NAME] section
  /// Up to /audio/transcriptions: https://api.openai.com/v1, https://api.groq.com/openai/v1,
  /// http://127.0.0.1:8000/v1 (speaches), http://127.0.0.1:8080/v1 (whisper.cpp's server)...
  std::string base_url = "https://api.openai.com/v1";
  std::string api_key;  ///< "Authorization: Bearer KEY" when set (local servers need none)
  std::string model = "gpt-4o-mini-transcribe";
  /// ISO-639-1 ("en"); empty = the agent's language's first subtag ("en-US" -> "en").
  std::string language;
  /// Text that steers the model (names, spelling); empty = the agent's phrase hints.
  std::string prompt;
  /// Ask for `stream=true` (transcript.text.delta events, sent on as interim results). Only
  /// some models stream (OpenAI's gpt-4o-*-transcribe); the others answer plain JSON anyway.
  bool stream = false;
  /// "json", or "verbose_json" (whisper-1 and most local servers): segments that Whisper itself
  /// would call silence (no_speech_prob over no_speech_threshold with avg_logprob under -1) are
  /// dropped.
  std::string response_format = "json";
  double no_speech_threshold = 0.6;
  double temperature = -1;  ///< < 0: not sent (the server's default)
  // --- the gate in front of the model (Whisper-style models invent text on noise) ---
  /// An utterance with less voiced audio than this (WebRTC's detector on the utterance) is
  /// not sent at all.
  std::chrono::milliseconds min_speech{250};
  /// A transcript that is one of these phrases (compared without case, spaces or
  /// punctuation) is dropped when its utterance had less voiced audio than hallucination_guard:
  /// what Whisper writes for noise and breathing. A real "thank you" that short is lost too
  /// (hallucination_guard = 0 keeps everything).
  std::vector<std::string> hallucinations = {"thank you",
                                             "thanks for watching",
                                             "thank you for watching",
                                             "please subscribe",
                                             "subtitles by the amara org community",
                                             "you",
                                             "bye"};
  std::chrono::milliseconds hallucination_guard{800};
  /// Audio of one utterance kept for the request; later audio is dropped (counted).
  std::chrono::milliseconds max_utterance{30000};
  std::chrono::milliseconds connect_timeout{5000};
  /// The longest wait for the answer's header, then for each piece of it.
  std::chrono::milliseconds timeout{15000};
  std::string ca_file;           ///< https: PEM roots (empty = the system's)
  int threads = 1;               ///< the backend's io threads (requests, WAV, JSON)
  std::size_t max_sessions = 0;  ///< requests at once (0 = no cap)
  std::size_t max_idle = 16;     ///< kept-alive connections per thread

  bool operator==(const TranscriptionOptions&) const = default;
};

}  // namespace voxbridge::asr_openai
