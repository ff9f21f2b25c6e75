#include "voxbridge/net/ws_client.hpp"

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <deque>
#include <iterator>
#include <stdexcept>
#include <string>

#include "voxbridge/net/tls_client.hpp"
#include "voxbridge/net/url.hpp"

namespace voxbridge::net {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using asio::ip::tcp;
using boost::system::error_code;

/// How long the close handshake may take (ours or the server's) before the socket is dropped.
constexpr std::chrono::seconds kCloseTimeout{5};
/// What of a refused upgrade's body is kept.
constexpr std::size_t kMaxBody = 4096;

/// "ws[s]://..." taken apart by the one URL parser (as the http[s]:// URL it maps to).
HttpUrl parse_ws_url(const std::string& url) {
  std::string http;
  if (url.starts_with("wss://")) {
    http = "https://" + url.substr(6);
  } else if (url.starts_with("ws://")) {
    http = "http://" + url.substr(5);
  } else {
    throw std::invalid_argument("WebSocket url must start with ws:// or wss://");
  }
  HttpUrl u;
  try {
    u = parse_http_url(http);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("WebSocket url: ") + e.what());
  }
  u.origin = (u.tls ? "wss://" : "ws://") + u.authority;
  return u;
}

template <bool Tls>
using Stream = websocket::stream<
    std::conditional_t<Tls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>>;

/// The client over one kind of stream. All of it runs on `ex_` (one thread): no locks.
template <bool Tls>
class Client final : public WsClient {
 public:
  Client(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls, bool verify,
         WsOptions options, WsHandlers handlers, HttpUrl url)
      : ex_(std::move(ex)),
        tls_(std::move(tls)),
        verify_(verify),
        opts_(std::move(options)),
        h_(std::move(handlers)),
        url_(std::move(url)),
        resolver_(ex_),
        timer_(ex_),
        idle_timer_(ex_),
        ws_(make_stream()) {}

  void connect() override {
    if (state_ != State::idle) return;
    state_ = State::connecting;
    timer_.expires_after(opts_.connect_timeout);
    timer_.async_wait([self = self()](error_code ec) {
      if (!ec && self->state_ == State::connecting) self->fail("connect timed out");
    });
    resolver_.async_resolve(url_.host, url_.port,
                            [self = self()](error_code ec, tcp::resolver::results_type r) {
                              self->on_resolve(ec, std::move(r));
                            });
  }

  bool send(std::string text) override { return queue(std::move(text), false); }
  bool send_binary(std::string bytes) override { return queue(std::move(bytes), true); }

  void close() override {
    if (state_ == State::closing || state_ == State::closed || close_requested_) return;
    if (state_ == State::idle) {  // never connected: nothing to shake hands with
      fail("closed before connect");
      return;
    }
    close_requested_ = true;
    maybe_close();
    // Connecting: once open, after the queue. Writing: after the queue.
  }

  void abort() override {
    if (state_ == State::closed) return;
    fail("aborted");
  }

  std::size_t queued_bytes() const override { return queued_; }

 private:
  enum class State { idle, connecting, open, closing, closed };

  Stream<Tls> make_stream() {
    if constexpr (Tls) {
      return Stream<Tls>(ex_, *tls_);
    } else {
      return Stream<Tls>(ex_);
    }
  }

  bool queue(std::string data, bool binary) {
    if (state_ == State::closing || state_ == State::closed || close_requested_) return false;
    if (data.size() > opts_.max_queued_bytes - queued_) return false;  // queued_ <= max always
    queued_ += data.size();
    queue_.push_back({std::move(data), binary});
    if (state_ == State::open && !writing_) write_next();
    return true;
  }

  std::shared_ptr<Client> self() { return std::static_pointer_cast<Client>(shared_from_this()); }

  void on_resolve(error_code ec, const tcp::resolver::results_type& results) {
    if (state_ != State::connecting) return;
    if (ec) return fail("resolve " + url_.host + ": " + ec.message());
    beast::get_lowest_layer(ws_).async_connect(
        results, [self = self()](error_code cec, const tcp::endpoint&) { self->on_tcp(cec); });
  }

  void on_tcp(error_code ec) {
    if (state_ != State::connecting) return;
    if (ec) return fail("connect " + url_.authority + ": " + ec.message());
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
    if constexpr (Tls) {
      try {
        tls_client_prepare(ws_.next_layer().native_handle(), url_.host, verify_);
      } catch (const std::runtime_error& e) {
        return fail(e.what());
      }
      ws_.next_layer().async_handshake(asio::ssl::stream_base::client,
                                       [self = self()](error_code hec) { self->on_tls(hec); });
    } else {
      upgrade();
    }
  }

  void on_tls(error_code ec) {
    if (state_ != State::connecting) return;
    if (ec) {
      const std::string why = tls_verify_failure(ws_.next_layer().native_handle());
      return fail(why.empty() ? "TLS handshake failed: " + ec.message()
                              : "certificate verify failed: " + why);
    }
    upgrade();
  }

  void upgrade() {
    // Our own deadline covers the upgrade; Beast's would start only now.
    websocket::stream_base::timeout t{};
    t.handshake_timeout = websocket::stream_base::none();
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    ws_.set_option(t);
    websocket::permessage_deflate pmd;
    pmd.client_enable = false;
    pmd.server_enable = false;
    ws_.set_option(pmd);
    ws_.read_message_max(opts_.max_message_bytes);
    ws_.text(true);
    ws_.set_option(websocket::stream_base::decorator([this](websocket::request_type& req) {
      req.set(http::field::user_agent, "voxbridge");
      for (const auto& [name, value] : opts_.headers) req.set(name, value);
    }));
    ws_.async_handshake(response_, url_.authority, url_.target,
                        [self = self()](error_code ec) { self->on_upgrade(ec); });
  }

  void on_upgrade(error_code ec) {
    if (state_ != State::connecting) return;
    if (ec == websocket::error::upgrade_declined && response_.result_int() != 101) {
      WsClose c;
      c.http_status = static_cast<int>(response_.result_int());
      c.http_body = response_.body().substr(0, kMaxBody);
      c.retry_after = std::string(response_[http::field::retry_after]);
      c.reason = "upgrade refused: HTTP " + std::to_string(c.http_status);
      return finish(std::move(c));
    }
    if (ec) return fail("upgrade failed: " + ec.message());
    response_ = {};  // nothing of it is needed once open
    timer_.cancel();
    state_ = State::open;
    // Beast times the close handshake, either side's. Its idle timeout is not used: a ping
    // timer that has expired but not yet run when async_close starts is taken by Beast 1.81 for
    // the close handshake's timeout (the close fails at once); our own timer pings instead.
    websocket::stream_base::timeout t{};
    t.handshake_timeout = kCloseTimeout;
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    ws_.set_option(t);
    ws_.control_callback([this](websocket::frame_type, beast::string_view) { heard(); });
    if (opts_.idle_timeout.count() > 0) {
      heard();
      arm_idle();
    }
    if (h_.open) h_.open();
    if (state_ == State::closed) return;  // open() aborted it
    read_next();
    if (state_ == State::open && !writing_ && !queue_.empty()) write_next();  // unless open() did
    maybe_close();
  }

  /// Something came from the server (a message, a ping, a pong, a close).
  void heard() { last_heard_ = std::chrono::steady_clock::now(); }

  /// The idle check: a ping after half the idle timeout of silence, the end after all of it.
  void arm_idle() {
    const auto half = opts_.idle_timeout / 2;
    const auto now = std::chrono::steady_clock::now();
    idle_timer_.expires_at(now - last_heard_ < half ? last_heard_ + half
                                                    : last_heard_ + opts_.idle_timeout);
    idle_timer_.async_wait([self = self()](error_code ec) {
      if (!ec && self->state_ == State::open) self->on_idle_timer();
    });
  }

  void on_idle_timer() {
    const auto silent = std::chrono::steady_clock::now() - last_heard_;
    if (silent >= opts_.idle_timeout) {
      return fail("idle for " + std::to_string(opts_.idle_timeout.count()) + " ms");
    }
    if (silent >= opts_.idle_timeout / 2 && !pinging_) {
      pinging_ = true;
      ws_.async_ping({}, [self = self()](error_code ec) {
        self->pinging_ = false;
        if (self->state_ == State::closed) return;
        if (ec) return self->fail("ping: " + ec.message());
        self->maybe_close();
      });
    }
    arm_idle();
  }

  void read_next() {
    ws_.async_read(buffer_, [self = self()](error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(error_code ec) {
    if (state_ == State::closed) return;
    if (ec == websocket::error::closed) return finish_clean();
    if (ec == websocket::error::message_too_big) {
      return fail("message over " + std::to_string(opts_.max_message_bytes) + " bytes");
    }
    if (ec == beast::error::timeout) return fail("close timed out");  // (only then)
    if (ec) return fail("read: " + ec.message());
    heard();
    const auto data = buffer_.cdata();
    if (h_.message) h_.message({static_cast<const char*>(data.data()), data.size()});
    buffer_.clear();
    if (state_ == State::closed) return;  // message() aborted it
    read_next();
  }

  void write_next() {
    writing_ = true;
    ws_.text(!queue_.front().binary);
    ws_.async_write(asio::buffer(queue_.front().data),
                    [self = self()](error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(error_code ec) {
    writing_ = false;
    if (state_ == State::closed) {
      queue_.clear();
      return;
    }
    if (ec) return fail("write: " + ec.message());
    queued_ -= queue_.front().data.size();
    queue_.pop_front();
    if (!queue_.empty()) {
      write_next();
    } else {
      maybe_close();
    }
  }

  /// The close handshake once close() asked for it and nothing else is being written.
  void maybe_close() {
    if (close_requested_ && state_ == State::open && !writing_ && !pinging_ && queue_.empty()) {
      start_close();
    }
  }

  void start_close() {
    state_ = State::closing;
    idle_timer_.cancel();
    // Beast 1.81 with a control callback set can leave the close handshake waiting until its
    // timeout when a message is still arriving as it starts; nothing needs it from here on.
    ws_.control_callback();
    timer_.expires_after(kCloseTimeout);  // a backstop beside Beast's handshake_timeout
    timer_.async_wait([self = self()](error_code ec) {
      if (!ec && self->state_ == State::closing) self->fail("close timed out");
    });
    ws_.async_close(websocket::close_code::normal, [self = self()](error_code ec) {
      if (self->state_ == State::closed) return;
      if (ec) return self->fail("close: " + ec.message());
      self->finish_clean();
    });
  }

  void finish_clean() {
    const auto& r = ws_.reason();
    WsClose c;
    c.clean = true;
    c.code = static_cast<std::uint16_t>(r.code);
    c.reason = std::string(r.reason.data(), r.reason.size());
    finish(std::move(c));
  }

  void fail(std::string why) {
    WsClose c;
    c.reason = std::move(why);
    finish(std::move(c));
  }

  /// Ends it: drops the socket (operations under way fail and are ignored) and posts `closed`.
  void finish(WsClose c) {
    if (state_ == State::closed) return;
    state_ = State::closed;
    error_code ignored;
    timer_.cancel();
    idle_timer_.cancel();
    resolver_.cancel();
    beast::get_lowest_layer(ws_).socket().close(ignored);
    // The message being written stays until its write completes: Beast reads it until then.
    queue_.erase(writing_ ? std::next(queue_.begin()) : queue_.begin(), queue_.end());
    queued_ = 0;
    asio::post(ex_, [self = self(), c = std::move(c)] {
      auto closed = std::move(self->h_.closed);
      self->h_ = {};  // the handlers may hold the client: let it go
      if (closed) closed(c);
    });
  }

  asio::any_io_executor ex_;
  std::shared_ptr<asio::ssl::context> tls_;  // before ws_, which uses it
  bool verify_;
  WsOptions opts_;
  WsHandlers h_;
  HttpUrl url_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;  // the connect deadline, then the close backstop
  asio::steady_timer idle_timer_;
  std::chrono::steady_clock::time_point last_heard_;
  bool pinging_ = false;  // one ping at a time
  Stream<Tls> ws_;
  websocket::response_type response_;
  beast::flat_buffer buffer_;
  struct Out {
    std::string data;
    bool binary = false;
  };
  std::deque<Out> queue_;  // front() is being written while writing_
  std::size_t queued_ = 0;
  bool writing_ = false;
  bool close_requested_ = false;
  State state_ = State::idle;
};

}  // namespace

std::shared_ptr<WsClient> WsClient::create(asio::any_io_executor ex,
                                           std::shared_ptr<asio::ssl::context> tls, bool verify,
                                           WsOptions options, WsHandlers handlers) {
  HttpUrl url = parse_ws_url(options.url);
  const auto bad = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
  for (std::size_t i = 0; i < options.headers.size(); ++i) {
    const auto& [name, value] = options.headers[i];
    if (name.empty() || std::any_of(name.begin(), name.end(), bad) ||
        std::any_of(value.begin(), value.end(), bad)) {
      // Neither the name nor the value (a secret) goes into the message: it is counted.
      throw std::invalid_argument("WebSocket header " + std::to_string(i + 1) +
                                  ": an empty name, or a line break or NUL");
    }
  }
  if (url.tls) {
    if (!tls) throw std::invalid_argument("wss:// needs a TLS context");
    return std::make_shared<Client<true>>(std::move(ex), std::move(tls), verify, std::move(options),
                                          std::move(handlers), std::move(url));
  }
  return std::make_shared<Client<false>>(std::move(ex), std::move(tls), verify, std::move(options),
                                         std::move(handlers), std::move(url));
}

}  // namespace voxbridge::net
