// A Vosk server as configured ([vosk-NAME]), as plain data: config fills it, the backend
// (backend.hpp) uses it.
#pragma once

#include <cstddef>
#include <string>

namespace voxbridge::asr_vosk {

struct VoskOptions {
  std::string name;     ///< the [vosk-NAME] section
  std::string address;  ///< HOST:PORT of the server (vosk-server listens on 5001)
  bool tls = false;     ///< behind a TLS proxy
  std::string ca_file;  ///< TLS: PEM roots (empty = the system's)
  /// Sent as language_code and model (vosk-server's model is the one it loaded and reads
  /// neither; servers of the same API may). Empty language = the agent's.
  std::string language;
  std::string model;
  bool partial_results = true;  ///< interim results while the caller speaks
  /// A final chunk ends the turn (Vosk's endpointing); off: voxbridge's VAD alone does.
  bool end_on_final = true;
  std::size_t max_sessions = 0;  ///< utterances at once (0 = no cap)

  bool operator==(const VoskOptions&) const = default;
};

}  // namespace voxbridge::asr_vosk
