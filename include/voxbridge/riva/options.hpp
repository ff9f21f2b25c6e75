// An NVIDIA Riva server as configured ([riva-NAME]), as plain data: config fills it, the backend
// (backend.hpp) uses it.
#pragma once

#include <cstddef>
#include <string>

namespace voxbridge::riva {

struct RivaOptions {
  std::string name;  ///< the [riva-NAME] section
  std::string address = "localhost:50051";
  bool tls = false;
  std::string ca_file;  ///< TLS: PEM roots (empty = the system's)
  /// NVIDIA's hosted Riva (NVCF): "authorization: Bearer KEY" and a function id per service.
  std::string api_key;
  std::string asr_function_id;
  std::string tts_function_id;
  /// BCP-47 ("en-US"); empty = the agent's language.
  std::string language;
  std::string asr_model;         ///< empty: the server picks by language and rate
  bool punctuation = true;       ///< enable_automatic_punctuation
  bool end_on_final = true;      ///< a final result ends the turn (Riva's endpointing)
  float phrase_boost = 10.0f;    ///< boost of the agent's phrase hints (a SpeechContext)
  std::string voice;             ///< e.g. "English-US.Female-1"; the agent's voice wins
  std::size_t max_sessions = 0;  ///< streams at once (0 = no cap)

  bool operator==(const RivaOptions&) const = default;
};

}  // namespace voxbridge::riva
