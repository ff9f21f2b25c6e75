// HTTP/1.1 requests to one origin over kept-alive connections, for the in-process speech
// backends that speak plain HTTP (OpenAI-compatible /audio/transcriptions and /audio/speech):
// a sentence or an utterance costs one request on a connection already open, not a TCP and TLS
// handshake. Responses are streamed: the body is handed on piece by piece as it arrives (PCM a
// caller can hear before the server has finished, server-sent events).
//
// Offers: HttpPool::create() for one origin (http:// or https://, TLS as tls_client.hpp sets it
// up); start() sends one request and returns its HttpExchange, which cancel() abandons.
// A connection goes back to the pool when its response was read to the end and neither side
// said `Connection: close`; an exchange takes the most recently used idle connection, else opens
// one. A server may close an idle connection at any time (uvicorn does after 5 s): a request on
// a reused connection that fails before any byte of the response came is sent again, once, on
// a new connection.
// Thread: a pool lives on the executor it was made with (one of a backend's io threads). Every
// method must be called there; every handler runs there, never inside a method call (posted).
// Ownership: shared; an exchange under way holds its pool, so both live until `done` has run.
// The TLS context is shared with the backend that made it.
// Bounds (the server is not trusted): the connect and TLS handshake have one deadline; the
// response's header must come within `stall_timeout` of the request, and each piece of its body
// within `stall_timeout` of the last; the header is at most 16 KiB, the body at most
// max_body_bytes; at most max_idle connections wait idle, each for at most idle_timeout.
#pragma once

#include <atomic>
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

struct HttpPoolOptions {
  /// The origin and a base path: http[s]://HOST[:PORT][/PATH]. Requests name targets below it
  /// ("/audio/speech" on "https://api.openai.com/v1" is POST /v1/audio/speech).
  std::string base_url;
  /// TCP connect + TLS handshake.
  std::chrono::milliseconds connect_timeout{10000};
  /// The longest wait for the response's header, then for each piece of its body.
  std::chrono::milliseconds stall_timeout{15000};
  std::size_t max_body_bytes = 32u << 20;
  std::size_t max_idle = 16;
  std::chrono::milliseconds idle_timeout{30000};
};

struct HttpRequest {
  std::string method = "POST";
  /// Below the base URL's path: "/audio/speech".
  std::string target;
  std::string content_type;
  /// Extra headers (Authorization...): secrets, never logged nor part of an error text.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpResponseHead {
  int status = 0;
  std::string content_type;
  std::string retry_after;  ///< as sent (429, 503), empty if none
};

/// How an exchange ended.
struct HttpDone {
  /// The whole response was read (whatever its status).
  bool complete = false;
  bool cancelled = false;  ///< cancel() ended it
  int status = 0;          ///< the response's status, 0 if no header came
  /// What went wrong, in words ("connect 10.0.0.1:8000: Connection refused", "no response
  /// header within 15000 ms", "body over 33554432 bytes", "certificate verify failed: ...");
  /// empty when complete.
  std::string error;
};

struct HttpHandlers {
  /// The response's status line and headers came.
  std::function<void(const HttpResponseHead&)> head;
  /// A piece of the body (chunked or not, the transfer coding is gone); valid during the call.
  std::function<void(std::string_view piece)> body;
  /// Exactly once, last, after every other handler.
  std::function<void(const HttpDone&)> done;
};

class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  /// Abandons the exchange at once (its connection is closed, never reused); `done` still
  /// runs, with cancelled. Nothing after `done`.
  virtual void cancel() = 0;
};

/// What a pool has done (read on any thread).
struct HttpPoolCounters {
  std::uint64_t connections_opened = 0;
  std::uint64_t requests = 0;
  std::uint64_t reused = 0;   ///< requests sent on a kept-alive connection
  std::uint64_t retried = 0;  ///< requests sent again after a reused connection had closed
};

class HttpPool {
 public:
  /// `tls` is required for https:// (throws std::invalid_argument without it, or for a URL
  /// parse_http_url refuses); `verify` as in tls_client_prepare().
  static std::shared_ptr<HttpPool> create(boost::asio::any_io_executor ex,
                                          std::shared_ptr<boost::asio::ssl::context> tls,
                                          bool verify, HttpPoolOptions options);
  virtual ~HttpPool() = default;

  /// Sends `request` (on the pool's thread).
  virtual std::shared_ptr<HttpExchange> start(HttpRequest request, HttpHandlers handlers) = 0;
  /// Closes the idle connections (a backend that stops).
  virtual void close_idle() = 0;
  virtual std::size_t idle() const = 0;
  virtual HttpPoolCounters counters() const = 0;
  virtual const boost::asio::any_io_executor& executor() const = 0;
};

class IoPool;

/// What a backend that speaks HTTP owns: its io threads, each with its pool to the backend's
/// one origin, and the TLS context they share. Thread-safe.
class HttpPools {
 public:
  /// Starts `threads` (>= 1) io threads. Throws std::invalid_argument for a base_url
  /// parse_http_url refuses, std::runtime_error when https:// CAs (`ca_file`, or the system's)
  /// cannot be loaded.
  HttpPools(HttpPoolOptions options, const std::string& ca_file, int threads);
  /// stop().
  ~HttpPools();
  HttpPools(const HttpPools&) = delete;
  HttpPools& operator=(const HttpPools&) = delete;

  /// The next thread's pool (round robin): used on its executor only.
  const std::shared_ptr<HttpPool>& next();
  /// Summed over the threads.
  HttpPoolCounters counters() const;
  /// Closes the idle connections and joins the threads once what is under way has ended (the
  /// backend's destructor, after its calls have ended). Idempotent.
  void stop();

 private:
  std::unique_ptr<IoPool> io_;
  std::vector<std::shared_ptr<HttpPool>> pools_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stopped_{false};
};

}  // namespace voxbridge::net
