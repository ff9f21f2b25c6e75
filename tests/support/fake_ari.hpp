// A fake Asterisk for the ARI control path: the REST interface and the events WebSocket of one
// Stasis application on one 127.0.0.1 port, speaking the wire as the real Asterisk does
// (shapes, status codes and event order measured on it, see /tmp/ast_research/REPORT.md §7-11).
// It keeps the live channels and bridges; externalMedia really connects to voxbridge as an
// AudioSocket client (UUID, then 20 ms slin16 frames) and records what comes back.
//
// With `tls` it is Asterisk's TLS server instead (http.conf tlsenable): https and wss only, with
// a fresh certificate for "localhost"; ca_file() is the CA to trust.
//
// Threads: everything runs on the fake's own io thread; every public function may be called
// from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace voxbridge::testing {

class FakeAri {
 public:
  /// One REST request as it arrived: "POST", "/ari/channels/externalMedia?app=...", the body.
  struct Request {
    std::string method;
    std::string target;                        ///< path with its query, as sent (percent-encoded)
    std::string path;                          ///< without the query
    std::map<std::string, std::string> query;  ///< decoded
    std::string body;
    std::chrono::steady_clock::time_point at = std::chrono::steady_clock::now();  ///< received
  };

  /// One AudioSocket leg (an externalMedia channel) as the fake's AudioSocket client saw it.
  struct MediaLeg {
    std::string channel;          ///< the media channel's id
    std::string uuid;             ///< the `data` of externalMedia, sent as the UUID message
    std::size_t frames_sent = 0;  ///< caller audio frames (kind 0x12, 640 bytes)
    /// slin16 (0x12) frames voxbridge sent back, the leg's format. Before the leg's first
    /// frame reaches it voxbridge may send early silence as slin 8 kHz (0x10): counted apart.
    std::size_t frames_received = 0;
    std::size_t bytes_received = 0;  ///< their payload bytes
    std::size_t other_audio_frames = 0;
    bool hangup_received = false;  ///< voxbridge sent kind 0x00
    bool closed = false;           ///< the leg has ended (either side)
    /// The received audio (16-bit samples), the first 30 s.
    std::vector<std::int16_t> received;
  };

  /// `app` is the one Stasis application the events WebSocket accepts.
  FakeAri(std::string username, std::string password, std::string app = "voxbridge",
          bool tls = false);
  ~FakeAri();
  FakeAri(const FakeAri&) = delete;
  FakeAri& operator=(const FakeAri&) = delete;

  unsigned short port() const { return port_; }
  /// http://127.0.0.1:PORT, or with TLS https://localhost:PORT (the certificate's name).
  std::string url() const {
    return (ca_file_.empty() ? "http://127.0.0.1:" : "https://localhost:") + std::to_string(port_);
  }
  /// With TLS: a PEM file with the certificate's CA (removed with the fake); else empty.
  std::string ca_file() const { return ca_file_; }
  /// With TLS: connections whose TLS handshake failed (the client refused the certificate).
  int tls_failures() const;

  /// A caller channel (state "Ring", PJSIP) enters Stasis: StasisStart with its caller number,
  /// dialplan exten and `channelvars`. Returns its id.
  std::string start_call(const std::string& caller_number, const std::string& exten,
                         const std::map<std::string, std::string>& vars = {});
  /// The caller hangs up: ChannelHangupRequest, (ChannelLeftBridge,) StasisEnd, ChannelDestroyed.
  void hangup_caller(const std::string& id);
  /// The caller presses `digit`: ChannelDtmfReceived, and kind 0x03 on every AudioSocket leg
  /// bridged with it.
  void caller_dtmf(const std::string& id, char digit);
  /// Closes the events WebSocket and every HTTP connection (an Asterisk restart or a network
  /// blip); channels, bridges and the AudioSocket legs stay.
  void drop_connections();

  /// What the AudioSocket legs created from now on send as caller audio: `samples` at 16 kHz,
  /// then silence (empty = the default, tone() forever).
  void set_caller_audio(std::vector<std::int16_t> samples);
  /// The default caller audio: sample `i` of a 440 Hz tone, amplitude 8000.
  static std::int16_t tone(std::size_t i);

  /// How the next POST /ari/channels (originate) ends: 0 = answered (StasisStart), else
  /// ChannelDestroyed with this Q.850 cause (17 busy, 19 no answer...).
  void set_originate_cause(int cause);
  /// Requests for /channels/{id}/ACTION (e.g. "moh") are answered 409 "Channel not in Stasis
  /// application" from now on.
  void refuse_action(const std::string& action);

  std::size_t live_channels() const;
  std::size_t live_bridges() const;
  int websocket_connects() const;
  std::vector<Request> requests() const;
  /// The first request with this method whose path starts with `prefix`.
  std::optional<Request> find_request(const std::string& method, const std::string& prefix) const;
  /// Requests with this method whose path starts with `prefix`.
  std::size_t count_requests(const std::string& method, const std::string& prefix) const;
  std::vector<MediaLeg> media_legs() const;  ///< in creation order

  /// Polls `pred` every 5 ms until it holds (true) or `timeout` passes (false).
  bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  unsigned short port_ = 0;
  std::string ca_file_;
};

}  // namespace voxbridge::testing
