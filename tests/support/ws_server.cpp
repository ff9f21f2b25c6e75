// The tests' WebSocket server transport (see ws_server.hpp).
#include "support/ws_server.hpp"

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/test_tls.hpp"

namespace voxbridge::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using asio::ip::tcp;

namespace {
// Plain sockets under the WebSocket (no beast::tcp_stream: its timer and rate policy templates
// doubled this file's compile time); the handshake deadline is a timer of its own.
using PlainWs = websocket::stream<tcp::socket>;
using TlsWs = websocket::stream<ssl::stream<tcp::socket>>;
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
}  // namespace

/// What the server's connections share; outlives them (see WsServer::Impl's member order).
struct WsServerShared {
  WsServer::Options opt;
  ssl::context tls_ctx{ssl::context::tls_server};
};

struct WsServer::Accepted::State {
  tcp::socket socket;
  WsServerShared* shared;
};

WsServer::Accepted::Accepted() = default;
WsServer::Accepted::Accepted(Accepted&&) noexcept = default;
WsServer::Accepted::~Accepted() = default;

struct WsServer::Impl {
  // First: destroyed after the io_context and the connections it still holds.
  WsServerShared shared;
  Factory factory;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  std::string ca_file;
  unsigned short port = 0;
  std::vector<std::thread> threads;

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket s) {
      if (!acceptor.is_open()) return;
      if (!ec) {
        if (shared.opt.no_delay) {
          beast::error_code ignored;
          s.set_option(tcp::no_delay(true), ignored);
        }
        Accepted a;
        a.state.reset(new Accepted::State{std::move(s), &shared});
        if (auto conn = factory(std::move(a))) conn->start();
        return accept();
      }
      // Out of descriptors (a benchmark's many calls) or the like: retry a little later, no spin.
      accept_retry.expires_after(std::chrono::milliseconds(20));
      accept_retry.async_wait([this](beast::error_code) { accept(); });
    });
  }
};

WsServer::WsServer(Options options, Factory factory) : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.shared.opt = std::move(options);
  m.factory = std::move(factory);
  m.acceptor.open(tcp::v4());
  m.acceptor.set_option(tcp::acceptor::reuse_address(true));
  m.acceptor.bind({asio::ip::make_address("127.0.0.1"), m.shared.opt.port});
  m.acceptor.listen(asio::socket_base::max_listen_connections);
  m.port = m.acceptor.local_endpoint().port();
  if (m.shared.opt.tls) {
    const auto [cert, key] = self_signed(m.shared.opt.cert_host);
    m.shared.tls_ctx.use_certificate_chain(asio::buffer(cert));
    m.shared.tls_ctx.use_private_key(asio::buffer(key), ssl::context::pem);
    m.ca_file = (std::filesystem::temp_directory_path() /
                 (m.shared.opt.ca_file_prefix + std::to_string(m.port) + ".pem"))
                    .string();
    std::ofstream(m.ca_file) << cert;
  }
  m.work.emplace(m.io.get_executor());
  m.accept();
  for (int i = 0; i < std::max(1, m.shared.opt.io_threads); ++i)
    m.threads.emplace_back([&m] { m.io.run(); });
}

WsServer::~WsServer() {
  stop();
  if (!impl_->ca_file.empty()) {
    std::error_code ec;
    std::filesystem::remove(impl_->ca_file, ec);
  }
}

void WsServer::stop() {
  auto& m = *impl_;
  if (m.threads.empty()) return;
  asio::post(m.io, [&m] {
    beast::error_code ec;
    m.acceptor.close(ec);
  });
  m.work.reset();
  m.io.stop();
  for (auto& t : m.threads) t.join();
  m.threads.clear();
}

unsigned short WsServer::port() const {
  return impl_->port;
}
const std::string& WsServer::ca_file() const {
  return impl_->ca_file;
}

// ---- one connection ----

struct WsServer::Connection::Transport {
  WsServerShared& shared;
  std::unique_ptr<PlainWs> plain;
  std::unique_ptr<TlsWs> tls;
  beast::flat_buffer rbuf;
  std::optional<http::request_parser<http::string_body>> parser;
  http::request<http::string_body> req;
  websocket::close_reason close_frame;
  asio::steady_timer deadline;

  template <class F>
  decltype(auto) with_ws(F&& f) {
    if (tls) return f(*tls);
    return f(*plain);
  }
};

WsServer::Connection::Connection(Accepted accepted)
    : ex_(accepted.state->socket.get_executor()),
      t_(new Transport{*accepted.state->shared, {}, {}, {}, {}, {}, {}, asio::steady_timer(ex_)}) {
  auto& s = accepted.state->socket;
  if (t_->shared.opt.tls)
    t_->tls = std::make_unique<TlsWs>(std::move(s), t_->shared.tls_ctx);
  else
    t_->plain = std::make_unique<PlainWs>(std::move(s));
}

WsServer::Connection::~Connection() = default;

std::string WsServer::Connection::Upgrade::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        }))
      return v;
  }
  return {};
}

void WsServer::Connection::start() {
  // The TLS handshake and the upgrade request have kHandshakeTimeout; then the WebSocket's own
  // timeouts apply.
  t_->deadline.expires_after(kHandshakeTimeout);
  t_->deadline.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec)
      self->t_->with_ws([](auto& ws) {
        boost::system::error_code ignored;
        beast::get_lowest_layer(ws).close(ignored);
      });
  });
  if (t_->tls) {
    t_->tls->next_layer().async_handshake(ssl::stream_base::server,
                                          [self = shared_from_this()](beast::error_code ec) {
                                            if (ec) return self->ended();
                                            self->read_upgrade();
                                          });
  } else {
    read_upgrade();
  }
}

void WsServer::Connection::read_upgrade() {
  t_->parser.emplace();
  t_->parser->header_limit(8192);
  t_->parser->body_limit(1024);
  t_->with_ws([&](auto& ws) {
    http::async_read(ws.next_layer(), t_->rbuf, *t_->parser,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->ended();
                       self->opened();
                     });
  });
}

// The upgrade request is in: the mock decides; then the 101 and the WebSocket, or its refusal.
void WsServer::Connection::opened() {
  t_->req = t_->parser->release();
  Upgrade up;
  up.target = std::string(t_->req.target());
  up.version = t_->req.version();
  up.websocket = websocket::is_upgrade(t_->req);
  for (const auto& f : t_->req) up.headers.emplace_back(f.name_string(), f.value());
  if (auto refusal = on_upgrade(up)) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(refusal->status), t_->req.version());
    res->set(http::field::content_type, refusal->content_type);
    if (!refusal->retry_after.empty()) res->set(http::field::retry_after, refusal->retry_after);
    res->keep_alive(false);
    res->body() = std::move(refusal->body);
    res->prepare_payload();
    t_->with_ws([&](auto& ws) {
      http::async_write(
          ws.next_layer(), *res,
          [self = shared_from_this(), res](beast::error_code, std::size_t) { self->drop(); });
    });
    return;
  }
  accepted_ = true;
  t_->deadline.cancel();
  t_->with_ws([&](auto& ws) {
    ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws.read_message_max(t_->shared.opt.max_message_bytes);
    ws.binary(t_->shared.opt.binary);
    ws.async_accept(t_->req, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->ended();
      self->open_ = true;
      // What was queued before the socket opened goes after what on_open() sends first.
      std::deque<std::string> early;
      std::deque<std::size_t> early_tag;
      early.swap(self->out_);
      early_tag.swap(self->out_tag_);
      self->on_open();
      for (std::size_t i = 0; i < early.size(); ++i) {
        self->out_.push_back(std::move(early[i]));
        self->out_tag_.push_back(early_tag[i]);
      }
      if (!self->writing_) {
        if (!self->out_.empty())
          self->do_write();
        else if (self->closing_)
          self->do_close();
      }
      self->read();
    });
  });
}

void WsServer::Connection::read() {
  t_->with_ws([&](auto& ws) {
    ws.async_read(t_->rbuf, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->ended();
      std::string message = beast::buffers_to_string(self->t_->rbuf.data());
      self->t_->rbuf.consume(self->t_->rbuf.size());
      self->got_binary_ = self->t_->with_ws([](auto& w) { return w.got_binary(); });
      self->on_message(std::move(message));
      self->read();
    });
  });
}

void WsServer::Connection::ended() {
  if (ended_) return;
  ended_ = true;  // a write in flight still completes (and pops its message)
  t_->deadline.cancel();
  if (accepted_) on_closed();
}

void WsServer::Connection::send(std::string message, std::size_t tag) {
  if (closing_ || ended_) return;
  out_.push_back(std::move(message));
  out_tag_.push_back(tag);
  if (open_ && !writing_) do_write();
}

void WsServer::Connection::do_write() {
  writing_ = true;
  if (out_tag_.front() != kNoTag) on_handed(out_tag_.front());
  t_->with_ws([&](auto& ws) {
    ws.async_write(asio::buffer(out_.front()),
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     self->out_.pop_front();
                     self->out_tag_.pop_front();
                     if (ec) {
                       self->writing_ = false;
                       self->out_.clear();
                       self->out_tag_.clear();
                       return;
                     }
                     if (!self->out_.empty()) return self->do_write();
                     self->writing_ = false;
                     if (self->drop_after_write_) return self->drop();
                     if (self->closing_) self->do_close();
                   });
  });
}

void WsServer::Connection::close(std::uint16_t code, std::string reason) {
  if (closing_ || ended_) return;
  if (reason.size() > 123) reason.resize(123);  // a close frame's reason is at most 123 bytes
  t_->close_frame = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
  closing_ = true;
  if (open_ && !writing_) do_close();
}

void WsServer::Connection::do_close() {
  if (close_sent_) return;
  close_sent_ = true;
  t_->with_ws([&](auto& ws) {
    ws.async_close(t_->close_frame, [self = shared_from_this()](beast::error_code) {});
  });
}

void WsServer::Connection::drop() {
  if (writing_) {
    drop_after_write_ = true;
    return;
  }
  t_->deadline.cancel();
  t_->with_ws([](auto& ws) {
    boost::system::error_code ignored;
    beast::get_lowest_layer(ws).close(ignored);
  });
}

}  // namespace voxbridge::testing
