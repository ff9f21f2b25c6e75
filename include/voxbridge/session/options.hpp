// What config sets of every call of a listener, as plain data: how inbound audio is read and
// the limits a call obeys. CallMedia and CallSession use them.
#pragma once

#include <chrono>
#include <cstddef>

namespace voxbridge::session {

/// How a listener interprets inbound kind 0x10 (see "codec truth" in docs/audiosocket.md).
enum class CodecMode {
  auto_detect,  ///< 0x10 with 160 or 240 bytes is G.711 (`auto_law`), anything else slin
  slin,         ///< trust the kind
  ulaw,         ///< 0x10 carries mu-law bytes
  alaw,         ///< 0x10 carries A-law bytes
};

/// Limits every call of a listener obeys; all configurable (voxbridge.conf [general]).
struct SessionLimits {
  std::size_t max_payload_bytes = 8192;
  /// The kernel's send buffer per call (SO_SNDBUF; 0 = the kernel's autotuning). Bounds the
  /// audio that piles up, and the kernel memory it takes, while Asterisk is not reading.
  std::size_t send_buffer_bytes = 65536;
  std::chrono::milliseconds handshake_timeout{5000};  ///< connect -> UUID
  std::chrono::milliseconds idle_timeout{10000};      ///< nothing from Asterisk; 0 = off
  std::chrono::milliseconds max_call_duration{0};     ///< 0 = unlimited
  /// After the server decides to hang up: how long Asterisk may take to close before we do,
  /// whether or not it reads the hangup message (a peer that does not read cannot hold a call).
  std::chrono::milliseconds close_grace{2000};
};

}  // namespace voxbridge::session
