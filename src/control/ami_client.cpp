#include "voxbridge/control/ami_client.hpp"
#include "voxbridge/net/error_text.hpp"
#include "voxbridge/net/reconnector.hpp"
#include "voxbridge/net/tls_client.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <deque>
#include <map>

namespace voxbridge::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;
using asio::use_awaitable;

struct AmiClient::Impl : std::enable_shared_from_this<AmiClient::Impl>, net::Reconnector::Link {
  struct Pending {
    ReplyHandler done;
    std::shared_ptr<asio::steady_timer> timer;
  };

  Impl(asio::any_io_executor ex, AmiOptions o)
      : exec(std::move(ex)),
        opts(std::move(o)),
        wake(exec),
        reconnect(exec, "AMI " + opts.host + ":" + opts.port,
                  net::Backoff(opts.reconnect_min, opts.reconnect_max)) {
    wake.expires_at(asio::steady_timer::time_point::max());
  }

  asio::any_io_executor exec;
  AmiOptions opts;
  EventHandler on_event;
  StateHandler on_state;
  std::atomic<bool> up{false};   // logged in (read from other threads)
  bool linked = false;           // TCP (and TLS) up: login actions may be sent
  std::uint64_t generation = 0;  // bumps per connection
  std::uint64_t next_id = 0;
  std::map<std::string, Pending> pending;
  std::deque<std::string> outbox;
  asio::steady_timer wake;     // wakes the writer
  net::Reconnector reconnect;  // runs connect_once() until stop(); running(): started, not stopped
  std::unique_ptr<beast::tcp_stream> tcp;
  std::unique_ptr<asio::ssl::context> tls_ctx;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  AmiParser parser;

  beast::tcp_stream& lowest() { return tls ? tls->next_layer() : *tcp; }

  void close_link() {
    if (tcp || tls) {
      boost::system::error_code ignored;
      lowest().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      lowest().socket().close(ignored);
    }
    wake.cancel();
  }

  void set_state(bool now_up, std::string_view why) {
    if (up == now_up) return;
    up = now_up;
    if (on_state) on_state(up, why);
  }

  void fail_pending(const std::string& why) {
    auto p = std::move(pending);
    pending.clear();
    for (auto& [id, entry] : p) {
      entry.timer->cancel();
      AmiReply r;
      r.error = why;
      entry.done(std::move(r));
    }
  }

  std::string send(std::string action, const AmiFields& fields, ReplyHandler done,
                   bool during_login = false) {
    AmiReply r;
    if (!(during_login ? linked : up.load())) {
      r.error = "not connected to AMI " + opts.host + ":" + opts.port;
      asio::post(exec,
                 [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
      return {};
    }
    std::string id = "vb-" + std::to_string(++next_id);
    std::string error;
    auto bytes = encode_action(action, id, fields, &error);
    if (!bytes) {
      r.error = "refused to send " + action + ": " + error;
      asio::post(exec,
                 [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
      return {};
    }
    auto timer = std::make_shared<asio::steady_timer>(exec, opts.action_timeout);
    timer->async_wait([w = weak_from_this(), id, action](const boost::system::error_code& ec) {
      auto self = w.lock();
      if (ec || !self) return;
      auto it = self->pending.find(id);
      if (it == self->pending.end()) return;
      auto handler = std::move(it->second.done);
      self->pending.erase(it);
      AmiReply timeout;
      timeout.error =
          action + " timed out after " + std::to_string(self->opts.action_timeout.count()) + " ms";
      handler(std::move(timeout));
    });
    pending.emplace(id, Pending{std::move(done), std::move(timer)});
    outbox.push_back(std::move(*bytes));
    wake.cancel_one();
    return id;
  }

  // Awaitable form of send(), for the login sequence.
  awaitable<AmiReply> request(std::string action, AmiFields fields) {
    auto result = std::make_shared<std::optional<AmiReply>>();
    asio::steady_timer done_timer(exec, asio::steady_timer::time_point::max());
    send(
        std::move(action), fields,
        [result, &done_timer](AmiReply r) {
          *result = std::move(r);
          done_timer.cancel();
        },
        true);
    if (!*result) co_await done_timer.async_wait(asio::as_tuple(use_awaitable));
    co_return std::move(**result);
  }

  void dispatch(const AmiMessage& m) {
    // Events first: some carry a Response header and the ActionID of an action answered long
    // ago (OriginateResponse).
    if (m.is_event()) {
      if (on_event) on_event(m);
      return;
    }
    if (m.is_response()) {
      auto it = pending.find(std::string(m.action_id()));
      if (it == pending.end()) return;  // timed out already, or not ours
      auto done = std::move(it->second.done);
      it->second.timer->cancel();
      pending.erase(it);
      AmiReply r;
      const auto resp = m.get("Response");
      r.ok = resp == "Success" || resp == "Follows" || resp == "Goodbye";
      if (!r.ok) {
        r.error = m.has("Message") ? std::string(m.get("Message")) : std::string(resp);
      }
      r.response = m;
      done(std::move(r));
    }
  }

  awaitable<std::size_t> read_some(asio::mutable_buffer b) {
    if (tls) co_return co_await tls->async_read_some(b, use_awaitable);
    co_return co_await tcp->async_read_some(b, use_awaitable);
  }

  awaitable<void> write_all(const std::string& s) {
    if (tls) {
      co_await asio::async_write(*tls, asio::buffer(s), use_awaitable);
    } else {
      co_await asio::async_write(*tcp, asio::buffer(s), use_awaitable);
    }
  }

  awaitable<void> writer(std::uint64_t gen) {
    auto self = shared_from_this();
    try {
      while (reconnect.running() && gen == generation) {
        if (outbox.empty()) {
          co_await wake.async_wait(asio::as_tuple(use_awaitable));
          continue;
        }
        const std::string next = std::move(outbox.front());
        outbox.pop_front();
        co_await write_all(next);
      }
    } catch (const std::exception& e) {
      if (gen == generation) close_link();
    }
  }

  /// Reads until the link fails; returns why.
  awaitable<std::string> reader() {
    std::vector<char> buf(8192);
    std::vector<AmiMessage> msgs;
    for (;;) {
      std::size_t n = 0;
      try {
        n = co_await read_some(asio::buffer(buf));
      } catch (const boost::system::system_error& e) {
        co_return e.code() == asio::error::eof ? std::string("AMI closed the connection")
                                               : "AMI read failed: " + e.code().message();
      }
      msgs.clear();
      if (!parser.feed(std::string_view(buf.data(), n), msgs)) {
        co_return "AMI protocol error: " + parser.error();
      }
      for (const auto& m : msgs) dispatch(m);
    }
  }

  awaitable<void> pinger(std::uint64_t gen) {
    auto self = shared_from_this();
    asio::steady_timer t(exec);
    while (reconnect.running() && gen == generation) {
      t.expires_after(opts.ping_interval);
      co_await t.async_wait(asio::as_tuple(use_awaitable));
      if (!reconnect.running() || gen != generation || !up) co_return;
      send("Ping", {}, [w = weak_from_this(), gen](AmiReply r) {
        auto s = w.lock();
        if (!s || r.ok || gen != s->generation) return;
        spdlog::warn("AMI {}:{}: ping failed ({}); reconnecting", s->opts.host, s->opts.port,
                     r.error);
        s->close_link();
      });
    }
  }

  // (Fields are built outside co_await expressions: GCC 12 cannot keep a braced initializer
  // list alive across a suspension.)
  awaitable<void> login() {
    AmiFields login;
    if (opts.md5) {
      AmiFields challenge;
      challenge.emplace_back("AuthType", "MD5");
      const AmiReply ch = co_await request("Challenge", std::move(challenge));
      if (!ch.ok) throw std::runtime_error("MD5 challenge refused: " + ch.error);
      login.emplace_back("AuthType", "MD5");
      login.emplace_back("Username", opts.username);
      login.emplace_back("Key", ami_md5_key(ch.response.get("Challenge"), opts.secret));
    } else {
      login.emplace_back("Username", opts.username);
      login.emplace_back("Secret", opts.secret);
    }
    login.emplace_back("Events", opts.events);
    const AmiReply r = co_await request("Login", std::move(login));
    if (!r.ok) throw std::runtime_error("login as '" + opts.username + "' failed: " + r.error);
  }

  /// One connection, from connect to loss; returns why it ended.
  awaitable<std::string> connect_once() override {
    const std::uint64_t gen = ++generation;
    parser.reset();
    parser.expect_banner();
    outbox.clear();
    tls.reset();
    tcp.reset();
    auto plain = std::make_unique<beast::tcp_stream>(exec);
    try {
      asio::ip::tcp::resolver resolver(exec);
      const auto eps = co_await resolver.async_resolve(opts.host, opts.port, use_awaitable);
      plain->expires_after(opts.connect_timeout);
      co_await plain->async_connect(eps, use_awaitable);
      plain->expires_never();
      if (opts.tls) {
        tls_ctx = std::make_unique<asio::ssl::context>(net::tls_client_context({opts.ca_file}));
        tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*plain), *tls_ctx);
        net::tls_client_prepare(tls->native_handle(), opts.host, true);
        tls->next_layer().expires_after(opts.connect_timeout);
        co_await tls->async_handshake(asio::ssl::stream_base::client, use_awaitable);
        tls->next_layer().expires_never();
      } else {
        tcp = std::move(plain);
      }
    } catch (const std::exception& e) {
      co_return "cannot connect to AMI " + opts.host + ":" + opts.port + ": " + net::error_text(e);
    }
    linked = true;
    asio::co_spawn(exec, writer(gen), asio::detached);
    // The reader runs beside the login so the login's responses are seen.
    auto why = std::make_shared<std::string>();
    asio::steady_timer reader_done(exec, asio::steady_timer::time_point::max());
    asio::co_spawn(exec, reader(), [why, &reader_done](std::exception_ptr, std::string r) {
      *why = std::move(r);
      reader_done.cancel();
    });
    bool logged_in = false;
    try {
      co_await login();
      logged_in = true;
    } catch (const std::exception& e) {
      *why = net::error_text(e);
      close_link();
    }
    if (logged_in) {
      spdlog::info("AMI {}:{}: logged in as {} ({})", opts.host, opts.port, opts.username,
                   parser.banner());
      set_state(true, "logged in");
      asio::co_spawn(exec, pinger(gen), asio::detached);
    }
    co_await reader_done.async_wait(asio::as_tuple(use_awaitable));
    const std::string reason = *why;
    linked = false;
    ++generation;  // stops this connection's writer and pinger
    close_link();
    co_return reason;
  }

  bool lost(const std::string& why, bool stopping) override {
    const bool was_up = up;
    set_state(false, why);
    fail_pending(stopping ? std::string("stopped") : why);
    return was_up;
  }

  awaitable<void> run() {
    auto self = shared_from_this();
    co_await reconnect.run(*this);
  }
};

std::shared_ptr<AmiClient> AmiClient::create(asio::any_io_executor ex, AmiOptions options) {
  return std::shared_ptr<AmiClient>(new AmiClient(std::move(ex), std::move(options)));
}

AmiClient::AmiClient(asio::any_io_executor ex, AmiOptions options)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(options))) {}

AmiClient::~AmiClient() {
  stop();
}

void AmiClient::on_event(EventHandler h) {
  impl_->on_event = std::move(h);
}
void AmiClient::on_state(StateHandler h) {
  impl_->on_state = std::move(h);
}

void AmiClient::start() {
  if (impl_->reconnect.running()) return;
  impl_->reconnect.start();
  asio::co_spawn(impl_->exec, impl_->run(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("AMI client stopped: {}", net::error_text(ex));
    }
  });
}

void AmiClient::stop() {
  if (!impl_->reconnect.running()) return;
  impl_->reconnect.stop();
  impl_->close_link();
}

bool AmiClient::connected() const {
  return impl_->up;
}

std::string AmiClient::send(std::string action, AmiFields fields, ReplyHandler done) {
  return impl_->send(std::move(action), fields, std::move(done));
}

}  // namespace voxbridge::control
