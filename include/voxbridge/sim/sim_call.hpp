// A simulated Asterisk: places one AudioSocket call the way Asterisk 22 does on the wire (UUID
// first, audio paced at one frame per 20 ms, DTMF as kind 0x03, hangup by closing the socket) and
// records what comes back. Used by `voxbridge call`, the integration tests and the benchmarks.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "voxbridge/audiosocket/protocol.hpp"

namespace voxbridge::sim {

/// How the simulated leg carries audio.
struct LegFormat {
  audiosocket::Kind kind = audiosocket::Kind::slin8;
  enum class Codec { slin, ulaw, alaw } codec = Codec::slin;
  int rate_hz() const { return codec == Codec::slin ? audiosocket::rate_hz(kind) : 8000; }
  /// Bytes per sample on the wire.
  std::size_t sample_bytes() const { return codec == Codec::slin ? 2 : 1; }
  /// "slin8" (dialplan app), "ulaw", "alaw", "slin12" ... "slin192" (channel driver c(...)).
  static std::optional<LegFormat> parse(const std::string& name);
  std::string name() const;
};

/// A random (version 4) UUID, as Asterisk's ${UUID()} makes.
audiosocket::Uuid random_uuid();

struct CallPlan {
  std::string host = "127.0.0.1";
  unsigned short port = 5001;
  LegFormat format;
  std::optional<audiosocket::Uuid> uuid;  ///< random when unset
  bool send_uuid = true;
  /// Caller audio at format.rate_hz(), sent in frames of `frame` paced against the clock.
  std::vector<std::int16_t> audio;
  std::chrono::milliseconds frame{20};
  /// Delay of the first audio frame after the UUID. Asterisk's phase is arbitrary; half a frame
  /// keeps the caller's frames away from the server's tick edges, so runs are repeatable.
  std::chrono::microseconds phase{10000};
  /// Keep streaming silence this long after the audio (Asterisk never stops sending).
  std::chrono::milliseconds tail{300};
  /// Digits sent at offsets from the first frame.
  std::vector<std::pair<std::chrono::milliseconds, char>> dtmf;
  /// Close the socket at the end (the caller hangs up); otherwise wait for the server's hangup.
  bool hangup_at_end = true;
  /// Give up after this long in any case.
  std::chrono::milliseconds max_duration{60000};
};

struct CallResult {
  bool connected = false;
  std::string error;                ///< connect/IO error, empty if none
  bool server_sent_hangup = false;  ///< a 0x00 message arrived
  bool server_closed = false;       ///< EOF before we hung up
  std::optional<audiosocket::Kind> reply_kind;
  bool reply_kind_changed = false;
  std::uint64_t non_audio_messages = 0;  ///< anything but audio/hangup (a server must not send it)
  std::vector<std::int16_t> received;    ///< returned slin at the reply kind's rate
  std::vector<double> arrival_ms;        ///< arrival of each returned frame, from the UUID
  std::uint64_t frames_sent = 0;
  std::uint64_t bytes_sent = 0;
  double first_frame_ms = -1;  ///< first returned frame after the UUID
  double duration_ms = 0;
  int reply_rate_hz() const { return reply_kind ? audiosocket::rate_hz(*reply_kind) : 0; }
};

/// Runs one call on the current executor.
boost::asio::awaitable<CallResult> run_call(CallPlan plan);
/// Runs one call on a private io_context and returns when it is over.
CallResult place_call(CallPlan plan);

/// Inter-arrival statistics of the returned frames, in ms.
struct GapStats {
  double p50 = 0, p99 = 0, max = 0, min = 0;
  std::size_t count = 0;
};
GapStats gap_stats(const std::vector<double>& arrival_ms, std::size_t skip_first = 1);
std::string summary(const CallPlan& plan, const CallResult& r);

/// `voxbridge call ...`; returns the process exit code.
int call_main(int argc, const char* const* argv);

}  // namespace voxbridge::sim
