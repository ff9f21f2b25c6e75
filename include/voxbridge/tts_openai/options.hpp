// An OpenAI-compatible speech server as configured ([speech-NAME]), as plain data: config fills
// it, the backend (backend.hpp) uses it. OpenAI itself and the local servers people run for
// privacy (Kokoro-FastAPI, speaches, openedai-speech, LocalAI) take POST {base_url}/audio/speech.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace voxbridge::tts_openai {

struct SpeechOptions {
  std::string name;  ///< the [speech-NAME] section
  /// Up to /audio/speech: https://api.openai.com/v1, http://127.0.0.1:8880/v1 (Kokoro-FastAPI),
  /// http://127.0.0.1:8000/v1 (speaches)...
  std::string base_url = "https://api.openai.com/v1";
  std::string api_key;  ///< "Authorization: Bearer KEY" when set (local servers need none)
  std::string model = "gpt-4o-mini-tts";
  /// The voice; the agent's `voice` (SynthesisConfig.voice) wins when it names one.
  std::string voice = "alloy";
  /// How to speak (gpt-4o-mini-tts only; empty = not sent).
  std::string instructions;
  /// 0.25 .. 4.0; 0 = the agent's speaking rate if it sets one, else not sent.
  double speed = 0;
  /// The rate of the server's `pcm` (OpenAI and Kokoro: 24000). Audio is resampled here to the
  /// rate the agent asks of TTS (tts_rate; 24000 saves the work).
  int sample_rate = 24000;
  std::chrono::milliseconds connect_timeout{5000};
  /// The longest wait for the answer's header, then for each piece of its audio.
  std::chrono::milliseconds timeout{15000};
  std::string ca_file;           ///< https: PEM roots (empty = the system's)
  int threads = 1;               ///< the backend's io threads (requests, resampling)
  std::size_t max_sessions = 0;  ///< replies at once (0 = no cap)
  std::size_t max_idle = 16;     ///< kept-alive connections per thread

  bool operator==(const SpeechOptions&) const = default;
};

}  // namespace voxbridge::tts_openai
