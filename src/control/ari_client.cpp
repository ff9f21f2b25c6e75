#include "voxbridge/control/ari_client.hpp"
#include "voxbridge/base64/base64.hpp"
#include "voxbridge/net/error_text.hpp"
#include "voxbridge/net/reconnector.hpp"
#include "voxbridge/net/tls_client.hpp"
#include "voxbridge/net/url.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <deque>
#include <stdexcept>
#include <type_traits>
#include <variant>

namespace voxbridge::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using asio::awaitable;
using asio::use_awaitable;
using TcpStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

namespace {

/// The ARI base URL ("http[s]://host[:port]"; a path in it is ignored: requests go to /ari/...).
net::HttpUrl parse_url(const std::string& url) {
  try {
    return net::parse_http_url(url);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("ARI url '" + url + "': " + e.what());
  }
}

/// Closes whatever stream `v` holds, at the TCP level (pending operations fail).
template <class Variant>
void close_lowest(Variant& v) {
  std::visit(
      [](auto& s) {
        if constexpr (!std::is_same_v<std::decay_t<decltype(s)>, std::monostate>) {
          boost::system::error_code ignored;
          beast::get_lowest_layer(s).socket().close(ignored);
        }
      },
      v);
}

struct Request {
  http::verb method;
  std::string path;
  std::string body;
  AriClient::ResponseHandler done;
};

}  // namespace

struct AriClient::Impl : std::enable_shared_from_this<AriClient::Impl>, net::Reconnector::Link {
  Impl(asio::any_io_executor ex, AriOptions o)
      : exec(std::move(ex)),
        opts(std::move(o)),
        where(parse_url(opts.url)),
        auth("Basic " + base64::encode(opts.username + ":" + opts.password)),
        rest_wake(exec),
        reconnect(exec, "ARI", net::Backoff(opts.reconnect_min, opts.reconnect_max)) {
    rest_wake.expires_at(asio::steady_timer::time_point::max());
  }

  asio::any_io_executor exec;
  AriOptions opts;
  net::HttpUrl where;
  std::string auth;
  EventHandler on_event;
  StateHandler on_state;
  std::atomic<bool> up{false};
  std::deque<Request> queue;
  asio::steady_timer rest_wake;
  /// Runs the events WebSocket (connect_once()) until stop(); running(): started, not stopped.
  net::Reconnector reconnect;
  std::unique_ptr<asio::ssl::context> tls_ctx;  // https: made on first use; outlives the streams
  std::variant<std::monostate, TcpStream, TlsStream> rest;  // the keep-alive REST connection
  std::variant<std::monostate, websocket::stream<TcpStream>, websocket::stream<TlsStream>> ws;

  void set_state(bool now_up, std::string_view why) {
    if (up == now_up) return;
    up = now_up;
    if (on_state) on_state(now_up, why);
  }

  awaitable<std::unique_ptr<TcpStream>> connect() {
    asio::ip::tcp::resolver resolver(exec);
    const auto eps = co_await resolver.async_resolve(where.host, where.port, use_awaitable);
    auto s = std::make_unique<TcpStream>(exec);
    s->expires_after(opts.connect_timeout);
    co_await s->async_connect(eps, use_awaitable);
    co_return s;
  }

  /// The client TLS context (https), made on first use: a ca_file that cannot be read fails
  /// each connection attempt, logged, until it can.
  asio::ssl::context& tls_context() {
    if (!tls_ctx) {
      tls_ctx = std::make_unique<asio::ssl::context>(
          net::tls_client_context({opts.ca_file, opts.verify_tls}));
    }
    return *tls_ctx;
  }

  /// The TLS handshake on a connected stream, within connect_timeout: SNI for a host name,
  /// and (verify_tls) the certificate must chain to a trusted CA and name the url's host.
  /// Throws std::runtime_error saying why it failed, in words.
  awaitable<void> secure(TlsStream& tls) {
    net::tls_client_prepare(tls.native_handle(), where.host, opts.verify_tls);
    beast::get_lowest_layer(tls).expires_after(opts.connect_timeout);
    auto [ec] =
        co_await tls.async_handshake(asio::ssl::stream_base::client, asio::as_tuple(use_awaitable));
    if (!ec) {
      beast::get_lowest_layer(tls).expires_never();
      co_return;
    }
    if (ec == beast::error::timeout) {
      throw std::runtime_error("no TLS handshake within " +
                               std::to_string(opts.connect_timeout.count()) + " ms");
    }
    const std::string untrusted = net::tls_verify_failure(tls.native_handle());
    if (opts.verify_tls && !untrusted.empty()) {
      throw std::runtime_error(
          "TLS: Asterisk's certificate is not trusted (" + untrusted +
          "); set [ari] ca_file to the CA that signed it, or use the host name it was issued for "
          "in url");
    }
    throw std::runtime_error("TLS handshake failed: " + ec.message());
  }

  /// Opens the REST connection: TCP, then TLS for https.
  awaitable<void> open_rest() {
    auto tcp = co_await connect();
    if (!where.tls) {
      rest.emplace<TcpStream>(std::move(*tcp));
      co_return;
    }
    auto& tls = rest.emplace<TlsStream>(std::move(*tcp), tls_context());
    co_await secure(tls);
  }

  /// One request and its answer on an open connection, within request_timeout.
  template <class Stream>
  awaitable<http::response<http::string_body>> round_trip(Stream& s,
                                                          http::request<http::string_body>& req) {
    beast::get_lowest_layer(s).expires_after(opts.request_timeout);
    co_await http::async_write(s, req, use_awaitable);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    co_await http::async_read(s, buf, res, use_awaitable);
    beast::get_lowest_layer(s).expires_never();
    co_return res;
  }

  /// One exchange on the keep-alive connection (reconnecting once if it went stale).
  awaitable<AriResponse> exchange(Request& r) {
    http::request<http::string_body> req{r.method, "/ari" + r.path, 11};
    req.set(http::field::host, where.authority);
    req.set(http::field::authorization, auth);
    req.set(http::field::user_agent, "voxbridge");
    req.keep_alive(true);
    if (!r.body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = r.body;
    }
    req.prepare_payload();
    AriResponse out;
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        if (std::holds_alternative<std::monostate>(rest)) co_await open_rest();
        http::response<http::string_body> res;
        if (auto* tls = std::get_if<TlsStream>(&rest)) {
          res = co_await round_trip(*tls, req);
        } else {
          res = co_await round_trip(std::get<TcpStream>(rest), req);
        }
        if (!res.keep_alive()) rest.emplace<std::monostate>();
        out.status = static_cast<int>(res.result_int());
        boost::system::error_code ec;
        if (!res.body().empty()) out.body = json::parse(res.body(), ec);
        if (out.status / 100 != 2) {
          std::string message = res.body();
          if (!ec && out.body.is_object()) {
            if (const auto* m = out.body.as_object().if_contains("message");
                m != nullptr && m->is_string()) {
              message = std::string(m->as_string());
            }
          }
          out.error = std::to_string(out.status) + " " + std::string(res.reason()) +
                      (message.empty() ? "" : ": " + message);
        }
        co_return out;
      } catch (const boost::system::system_error& e) {
        const bool stale = !std::holds_alternative<std::monostate>(rest);
        rest.emplace<std::monostate>();
        out.status = 0;
        out.error = e.code() == beast::error::timeout
                        ? "no answer from ARI within " +
                              std::to_string(opts.request_timeout.count()) + " ms"
                        : "ARI request failed: " + e.code().message();
        // A keep-alive connection Asterisk closed while idle: try once on a new one. A
        // timeout is not retried (the request may have been carried out).
        if (!stale || e.code() == beast::error::timeout) break;
      } catch (const std::exception& e) {  // TLS, ca_file, a bad answer
        rest.emplace<std::monostate>();
        out.error = std::string("ARI request failed: ") + net::error_text(e);
        break;
      }
    }
    co_return out;
  }

  awaitable<void> rest_worker() {
    auto self = shared_from_this();
    while (reconnect.running()) {
      if (queue.empty()) {
        co_await rest_wake.async_wait(asio::as_tuple(use_awaitable));
        continue;
      }
      Request r = std::move(queue.front());
      queue.pop_front();
      AriResponse res = co_await exchange(r);
      r.done(std::move(res));
    }
    // Stopped: whatever is still queued fails.
    while (!queue.empty()) {
      Request r = std::move(queue.front());
      queue.pop_front();
      AriResponse res;
      res.error = "stopped";
      r.done(std::move(res));
    }
  }

  /// One events WebSocket, from connect to loss; returns why it ended.
  awaitable<std::string> connect_once() override {
    std::string why;
    try {
      auto tcp = co_await connect();
      if (where.tls) {
        auto& w = ws.emplace<websocket::stream<TlsStream>>(std::move(*tcp), tls_context());
        co_await secure(w.next_layer());
        why = co_await events_on(w);
      } else {
        auto& w = ws.emplace<websocket::stream<TcpStream>>(std::move(*tcp));
        why = co_await events_on(w);
      }
    } catch (const boost::system::system_error& e) {
      why = e.code() == websocket::error::upgrade_declined
                ? "ARI refused the events WebSocket (wrong user/password, or app name?)"
                : "cannot connect to ARI " + opts.url + ": " + e.code().message();
    } catch (const std::exception& e) {  // TLS, ca_file
      why = "cannot connect to ARI " + opts.url + ": " + net::error_text(e);
    }
    ws.emplace<std::monostate>();
    co_return why;
  }

  /// The WebSocket upgrade on a connected (and secured) stream, then its events until it is
  /// lost (returns why). Throws if the upgrade fails.
  template <class Next>
  awaitable<std::string> events_on(websocket::stream<Next>& w) {
    w.set_option(websocket::stream_base::decorator([this](websocket::request_type& req) {
      req.set(http::field::authorization, auth);
      req.set(http::field::user_agent, "voxbridge");
    }));
    beast::get_lowest_layer(w).expires_after(opts.connect_timeout);
    const std::string target =
        "/ari/events?app=" + net::percent_encode(opts.app) + "&subscribeAll=false";
    websocket::response_type res;
    co_await w.async_handshake(res, where.authority, target, use_awaitable);
    beast::get_lowest_layer(w).expires_never();
    // Asterisk pings rarely; our own pings notice a dead link within a minute.
    websocket::stream_base::timeout t{};
    t.handshake_timeout = opts.connect_timeout;
    t.idle_timeout = std::chrono::seconds(30);
    t.keep_alive_pings = true;
    w.set_option(t);
    set_state(true, "subscribed to " + opts.app);
    beast::flat_buffer buf;
    for (;;) {
      buf.clear();
      auto [ec, n] = co_await w.async_read(buf, asio::as_tuple(use_awaitable));
      if (ec) co_return "ARI events connection lost: " + ec.message();
      boost::system::error_code jec;
      const auto v = json::parse(beast::buffers_to_string(buf.data()), jec);
      if (jec || !v.is_object()) {
        spdlog::warn("ARI: ignoring an event that is not a JSON object");
        continue;
      }
      if (on_event) on_event(v.as_object());
    }
  }

  bool lost(const std::string& why, bool) override {
    const bool was_up = up;
    set_state(false, why);
    return was_up;
  }

  awaitable<void> run_events() {
    auto self = shared_from_this();
    co_await reconnect.run(*this);
  }
};

std::shared_ptr<AriClient> AriClient::create(asio::any_io_executor ex, AriOptions options) {
  return std::shared_ptr<AriClient>(new AriClient(std::move(ex), std::move(options)));
}

AriClient::AriClient(asio::any_io_executor ex, AriOptions options)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(options))) {}

AriClient::~AriClient() {
  stop();
}

void AriClient::on_event(EventHandler h) {
  impl_->on_event = std::move(h);
}
void AriClient::on_state(StateHandler h) {
  impl_->on_state = std::move(h);
}
bool AriClient::connected() const {
  return impl_->up;
}

void AriClient::start() {
  if (impl_->reconnect.running()) return;
  impl_->reconnect.start();
  if (impl_->where.tls && !impl_->opts.verify_tls) {
    spdlog::warn("ARI: {}: TLS certificate NOT verified (verify_tls = no)", impl_->opts.url);
  }
  auto log = [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("ARI client: {}", net::error_text(ex));
    }
  };
  asio::co_spawn(impl_->exec, impl_->run_events(), log);
  asio::co_spawn(impl_->exec, impl_->rest_worker(), log);
}

void AriClient::stop() {
  if (!impl_->reconnect.running()) return;
  impl_->reconnect.stop();
  impl_->rest_wake.cancel();
  close_lowest(impl_->ws);
  close_lowest(impl_->rest);
}

void AriClient::request(std::string method, std::string path, std::string body,
                        ResponseHandler done) {
  const http::verb v = http::string_to_verb(method);
  if (!impl_->reconnect.running() || v == http::verb::unknown) {
    AriResponse r;
    r.error =
        impl_->reconnect.running() ? "bad method " + method : std::string("ARI client not running");
    asio::post(impl_->exec, [done = std::move(done), r = std::move(r)]() mutable { done(r); });
    return;
  }
  impl_->queue.push_back(Request{v, std::move(path), std::move(body), std::move(done)});
  impl_->rest_wake.cancel_one();
}

namespace {
std::string ch(const std::string& id) {
  return "/channels/" + net::percent_encode(id);
}
}  // namespace

void AriClient::answer(const std::string& c, ResponseHandler done) {
  request("POST", ch(c) + "/answer", {}, std::move(done));
}
void AriClient::hangup(const std::string& c, const std::string& reason, ResponseHandler done) {
  request("DELETE", ch(c) + (reason.empty() ? "" : "?reason=" + net::percent_encode(reason)), {},
          std::move(done));
}
void AriClient::play(const std::string& c, const std::string& media, ResponseHandler done) {
  request("POST", ch(c) + "/play?media=" + net::percent_encode(media), {}, std::move(done));
}
void AriClient::dtmf(const std::string& c, const std::string& digits, int duration_ms,
                     ResponseHandler done) {
  std::string q = ch(c) + "/dtmf?dtmf=" + net::percent_encode(digits);
  if (duration_ms > 0) q += "&duration=" + std::to_string(duration_ms);
  request("POST", q, {}, std::move(done));
}
void AriClient::hold(const std::string& c, bool on, ResponseHandler done) {
  request(on ? "POST" : "DELETE", ch(c) + "/hold", {}, std::move(done));
}
void AriClient::music_on_hold(const std::string& c, bool on, const std::string& moh_class,
                              ResponseHandler done) {
  if (!on) {
    request("DELETE", ch(c) + "/moh", {}, std::move(done));
    return;
  }
  std::string q = ch(c) + "/moh";
  if (!moh_class.empty()) q += "?mohClass=" + net::percent_encode(moh_class);
  request("POST", q, {}, std::move(done));
}
void AriClient::ring(const std::string& c, ResponseHandler done) {
  request("POST", ch(c) + "/ring", {}, std::move(done));
}
void AriClient::continue_in_dialplan(const std::string& c, const std::string& context,
                                     const std::string& exten, int priority, ResponseHandler done) {
  request("POST",
          ch(c) + "/continue?context=" + net::percent_encode(context) +
              "&extension=" + net::percent_encode(exten) + "&priority=" + std::to_string(priority),
          {}, std::move(done));
}
void AriClient::redirect(const std::string& c, const std::string& endpoint, ResponseHandler done) {
  request("POST", ch(c) + "/redirect?endpoint=" + net::percent_encode(endpoint), {},
          std::move(done));
}
void AriClient::get_variable(const std::string& c, const std::string& name, ResponseHandler done) {
  request("GET", ch(c) + "/variable?variable=" + net::percent_encode(name), {}, std::move(done));
}
void AriClient::set_variable(const std::string& c, const std::string& name,
                             const std::string& value, ResponseHandler done) {
  request("POST",
          ch(c) + "/variable?variable=" + net::percent_encode(name) +
              "&value=" + net::percent_encode(value),
          {}, std::move(done));
}
void AriClient::originate(const std::map<std::string, std::string>& params,
                          const std::map<std::string, std::string>& variables,
                          ResponseHandler done) {
  std::string q = "/channels";
  char sep = '?';
  for (const auto& [k, v] : params) {
    q += sep + net::percent_encode(k) + "=" + net::percent_encode(v);
    sep = '&';
  }
  std::string body;
  if (!variables.empty()) {
    json::object vars;
    for (const auto& [k, v] : variables) vars[k] = v;
    body = json::serialize(json::object{{"variables", std::move(vars)}});
  }
  request("POST", q, std::move(body), std::move(done));
}
void AriClient::external_media(const std::string& host_port, const std::string& uuid,
                               const std::string& format, ResponseHandler done) {
  request("POST",
          "/channels/externalMedia?app=" + net::percent_encode(impl_->opts.app) +
              "&external_host=" + net::percent_encode(host_port) +
              "&encapsulation=audiosocket&transport=tcp&format=" + net::percent_encode(format) +
              "&data=" + net::percent_encode(uuid),
          {}, std::move(done));
}
void AriClient::create_bridge(ResponseHandler done) {
  request("POST", "/bridges?type=mixing", {}, std::move(done));
}
void AriClient::add_to_bridge(const std::string& b, const std::string& channels,
                              ResponseHandler done) {
  request(
      "POST",
      "/bridges/" + net::percent_encode(b) + "/addChannel?channel=" + net::percent_encode(channels),
      {}, std::move(done));
}
void AriClient::remove_from_bridge(const std::string& b, const std::string& c,
                                   ResponseHandler done) {
  request("POST",
          "/bridges/" + net::percent_encode(b) + "/removeChannel?channel=" + net::percent_encode(c),
          {}, std::move(done));
}
void AriClient::destroy_bridge(const std::string& b, ResponseHandler done) {
  request("DELETE", "/bridges/" + net::percent_encode(b), {}, std::move(done));
}

}  // namespace voxbridge::control
