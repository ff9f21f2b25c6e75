// A WebSocket client (RFC 6455) for the in-process AI backends (OpenAI Realtime, Gemini Live,
// Deepgram, ElevenLabs): ws:// and wss:// with Boost.Beast, TLS set up as tls_client.hpp does it
// (SNI, the certificate checked against the host's name, ca_file for private CAs).
//
// Offers: WsClient::create() then connect(): TCP, TLS, the HTTP upgrade with the given headers,
// then whole messages in (`message`) and out (send()); close() or abort() ends it, and `closed`
// says how it ended, once, last.
// Thread: a client lives on the executor it was made with (one of a backend's io threads, never
// a call's). Every method must be called there and every handler runs there, never inside a
// method call (they are posted), so a handler may call back into the client.
// Ownership: shared; the operations under way hold it, so it lives until `closed` has run. The
// TLS context is shared with the backend that made it and must not change once in use.
// Bounds (an outsider holds the other end): the connect, TLS and upgrade together have one
// deadline; a message larger than max_message_bytes ends the connection with an error; what is
// queued to send is at most max_queued_bytes (send() refuses more: the caller counts a drop);
// with idle_timeout, a connection that receives nothing for that long is ended as an error
// (the client's own pings keep a quiet but live server answering); the close handshake is bounded.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace voxbridge::net {

struct WsOptions {
  /// ws://HOST[:PORT]/PATH?QUERY or wss://... (default ports 80 and 443).
  std::string url;
  /// Added to the upgrade request, e.g. {"Authorization", "Bearer ..."}. Values are secrets:
  /// never logged, never part of an error message.
  std::vector<std::pair<std::string, std::string>> headers;
  /// TCP connect + TLS handshake + HTTP upgrade.
  std::chrono::milliseconds connect_timeout{10000};
  /// Nothing received for this long ends the connection (0 = no limit).
  std::chrono::milliseconds idle_timeout{0};
  std::size_t max_message_bytes = 1u << 20;
  std::size_t max_queued_bytes = 1u << 20;
};

/// How a connection ended.
struct WsClose {
  /// The server or we closed it with a close handshake (code and reason are the close frame's).
  bool clean = false;
  /// The upgrade was refused with this HTTP status (401, 403, 429, 503...); 0 otherwise.
  int http_status = 0;
  /// The refusal's body, at most 4 KiB (untrusted text: log it through logtext).
  std::string http_body;
  /// The refusal's Retry-After header, as sent (429, 503); empty if none.
  std::string retry_after;
  /// The close frame's code (1000 normal ...) when clean.
  std::uint16_t code = 0;
  /// In words: the close frame's reason, or what went wrong ("connect timed out", "certificate
  /// verify failed: self-signed certificate", "message over 1048576 bytes", "idle for 30000
  /// ms", "aborted").
  std::string reason;
};

struct WsHandlers {
  /// The upgrade succeeded: send() works from now on (it also queues before).
  std::function<void()> open;
  /// One whole message, text or binary; the view is valid during the call only.
  std::function<void(std::string_view message)> message;
  /// Exactly once, last, after every other handler.
  std::function<void(const WsClose&)> closed;
};

class WsClient : public std::enable_shared_from_this<WsClient> {
 public:
  /// `tls` is required for wss:// (throws std::invalid_argument without it, or for a URL that is
  /// not ws:// or wss://); `verify` as in tls_client_prepare().
  static std::shared_ptr<WsClient> create(boost::asio::any_io_executor ex,
                                          std::shared_ptr<boost::asio::ssl::context> tls,
                                          bool verify, WsOptions options, WsHandlers handlers);
  virtual ~WsClient() = default;

  /// Starts connecting; `open` or `closed` follows.
  virtual void connect() = 0;
  /// Queues one text message; false (nothing queued) once closing, or when it would take the
  /// queue over max_queued_bytes. Messages queued before `open` go out right after it.
  virtual bool send(std::string text) = 0;
  /// The same for one binary message (audio to a recognizer); text and binary keep their order.
  virtual bool send_binary(std::string bytes) = 0;
  /// A close handshake (code 1000) after what is queued has been sent; `closed` follows within
  /// a bounded time (the socket is dropped if the server does not answer).
  virtual void close() = 0;
  /// Drops the connection at once; `closed` follows with reason "aborted".
  virtual void abort() = 0;
  /// Bytes waiting to be sent.
  virtual std::size_t queued_bytes() const = 0;
};

}  // namespace voxbridge::net
