// An ElevenLabs voice as configured ([elevenlabs-NAME]), as plain data: config fills it, the
// backend (backend.hpp) uses it.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace voxbridge::tts_elevenlabs {

struct ElevenLabsOptions {
  std::string name;  ///< the [elevenlabs-NAME] section ("elevenlabs": the defaults)
  /// Up to the voice: the socket is URL/VOICE_ID/stream-input?... (a regional or EU residency
  /// endpoint the same way).
  std::string url = "wss://api.elevenlabs.io/v1/text-to-speech";
  std::string api_key;  ///< sent as the xi-api-key header; from ELEVENLABS_API_KEY by default
  /// The voice; the agent's `voice` (SynthesisConfig.voice) wins when it names one.
  std::string voice_id = "21m00Tcm4TlvDq8ikWAM";
  std::string model_id = "eleven_flash_v2_5";
  /// On an 8 kHz reply: ulaw_8000 (the service's telephony format, decoded here) instead of
  /// pcm_8000.
  bool ulaw_8000 = true;
  /// voice_settings of the first message (0 = the voice's own).
  double stability = 0;
  double similarity_boost = 0;
  double speed = 0;
  /// Characters the service buffers before its first generation (generation_config's first
  /// chunk_length_schedule value; each sentence is flushed anyway).
  int first_chunk_chars = 50;
  std::chrono::milliseconds connect_timeout{10000};
  std::string ca_file;           ///< wss://: PEM roots (empty = the system's)
  int threads = 1;               ///< the backend's io threads (sockets, JSON, base64)
  std::size_t max_sessions = 0;  ///< reply sockets at once (0 = no cap)

  bool operator==(const ElevenLabsOptions&) const = default;
};

}  // namespace voxbridge::tts_elevenlabs
