// The WebSocket server side of the tests' service mocks (OpenAI Realtime, Gemini Live, and the
// WebSocket services to come): the listening socket, TLS with a throwaway certificate, the HTTP
// upgrade, the WebSocket handshake, a write queue, close frames and broken sockets. A mock adds
// only its protocol: it derives its connection from WsServer::Connection and answers the hooks.
//
// Why one transport: Beast's WebSocket and TLS templates are the larger part of a mock's compile
// time (each mock instantiated them for plain and TLS streams); here they are compiled once, and
// a mock's translation unit holds only its protocol.
//
// Thread: the server runs its own io_context on Options::io_threads threads. Each connection
// lives on its own strand (Connection::executor()); every hook is called there, and the actions
// (send, close, drop) must be called there too (a mock posts to executor() from other threads).
// Ownership: the server owns the io_context and the acceptor; a connection is owned by the
// shared_ptrs of its pending operations and by whoever else holds it (a mock's list). stop()
// closes the acceptor, stops the io threads and joins them; pending operations (and with them
// the connections only they hold) are destroyed with the server.
// Bounds: the upgrade request is read within 10 s (TLS handshake too) and is at most 8 KiB of
// headers and 1 KiB of body; a client message is at most Options::max_message_bytes; once open,
// Beast's suggested server timeouts (idle pings) apply.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace voxbridge::testing {

class WsServer {
 public:
  struct Options {
    unsigned short port = 0;  // 0: any free port on 127.0.0.1
    bool tls = false;         // wss:// with a self-signed certificate for cert_host
    std::string cert_host = "localhost";
    std::string ca_file_prefix = "vb_ws_server_ca_";  // the CA file's name in the temp dir
    int io_threads = 1;
    bool no_delay = false;  // TCP_NODELAY on accepted sockets
    std::size_t max_message_bytes = 16 * 1024 * 1024;
    bool binary = false;  // messages out as binary frames (else text)
  };

  /// An accepted socket on its strand, handed to the factory (opaque to mocks).
  struct Accepted {
    struct State;
    std::unique_ptr<State> state;
    Accepted();
    Accepted(Accepted&&) noexcept;
    ~Accepted();
  };

  class Connection;
  using Factory = std::function<std::shared_ptr<Connection>(Accepted)>;

  /// Listens at once; `factory` makes each accepted socket's connection (started by the server).
  WsServer(Options options, Factory factory);
  ~WsServer();
  WsServer(const WsServer&) = delete;
  WsServer& operator=(const WsServer&) = delete;

  unsigned short port() const;
  /// The CA certificate file a client needs (with Options::tls), else "". Removed by the server.
  const std::string& ca_file() const;
  /// Stops accepting, stops the io threads and joins them (idempotent; the destructor calls it).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One client connection: the transport; a mock derives from it and adds the protocol.
class WsServer::Connection : public std::enable_shared_from_this<Connection> {
 public:
  static constexpr std::size_t kNoTag = std::numeric_limits<std::size_t>::max();

  virtual ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// The connection's strand: hooks run here; timers and posts of a mock use it too.
  const boost::asio::any_io_executor& executor() const { return ex_; }
  /// Called by the server: the TLS handshake if any, then the upgrade request.
  void start();

 protected:
  explicit Connection(Accepted accepted);

  /// The client's HTTP upgrade request.
  struct Upgrade {
    std::string target;  // path and query, as sent
    unsigned version = 11;
    bool websocket = false;  // a WebSocket upgrade (Beast's is_upgrade)
    std::vector<std::pair<std::string, std::string>> headers;
    /// A header's value by name (case-insensitive), "" when absent.
    std::string header(std::string_view name) const;
  };
  /// An HTTP answer instead of the 101: written, then the socket is broken.
  struct Refusal {
    Refusal(int status_code, std::string body_text, std::string type = "application/json",
            std::string retry = {})
        : status(status_code),
          body(std::move(body_text)),
          content_type(std::move(type)),
          retry_after(std::move(retry)) {}
    int status;
    std::string body;
    std::string content_type;
    std::string retry_after;  // a Retry-After header when not empty
  };

  // ---- hooks, on the strand ----
  /// The upgrade request arrived: nothing opens the WebSocket (101), a Refusal answers instead.
  virtual std::optional<Refusal> on_upgrade(const Upgrade& request) = 0;
  /// The WebSocket is open (what send() queued before goes out after what this sends first
  /// is queued, in order).
  virtual void on_open() = 0;
  /// One client message (text or binary: last_message_binary() says which).
  virtual void on_message(std::string message) = 0;
  /// The socket ended after on_upgrade() accepted it (the client closed, a read failed, the
  /// WebSocket handshake failed): called once.
  virtual void on_closed() = 0;
  /// A message sent with `tag` is being handed to the socket (for a mock's timing observers).
  virtual void on_handed(std::size_t /*tag*/) {}

  // ---- actions, on the strand ----
  /// Queues a message (text or binary per Options::binary); sent once open, in order.
  void send(std::string message, std::size_t tag = kNoTag);
  /// Sends a close frame after what is queued (once open).
  void close(std::uint16_t code, std::string reason);
  /// Breaks the socket (no close frame) once what is already queued has been written: a test
  /// that saw a message queued knows the client got it before the break.
  void drop();

  /// Whether the message on_message() is handling came in a binary frame (else text).
  bool last_message_binary() const { return got_binary_; }

  template <class T>
  std::shared_ptr<T> self() {
    return std::static_pointer_cast<T>(shared_from_this());
  }

 private:
  struct Transport;
  void read_upgrade();
  void opened();
  void read();
  void do_write();
  void do_close();
  void ended();

  boost::asio::any_io_executor ex_;
  std::unique_ptr<Transport> t_;
  std::deque<std::string> out_;
  std::deque<std::size_t> out_tag_;
  bool accepted_ = false, open_ = false, writing_ = false, closing_ = false, ended_ = false;
  bool drop_after_write_ = false, close_sent_ = false, got_binary_ = false;
};

}  // namespace voxbridge::testing
