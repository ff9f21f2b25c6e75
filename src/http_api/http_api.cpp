#include "voxbridge/http_api/http_api.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <list>
#include <optional>
#include <thread>
#include <vector>

#include "request.hpp"
#include "voxbridge/control/controller.hpp"
#include "voxbridge/guard/guard.hpp"

namespace voxbridge::http_api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

namespace {

using Response = http::response<http::string_body>;

Response json_response(http::status status, const json::value& body, unsigned version) {
  Response res{status, version};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::server, "voxbridge");
  res.body() = json::serialize(body) + "\n";
  res.prepare_payload();
  return res;
}

Response error(http::status status, const std::string& message, unsigned version) {
  return json_response(status, json::object{{"error", message}}, version);
}

Response text_response(http::status status, std::string body, const char* type, unsigned version) {
  Response res{status, version};
  res.set(http::field::content_type, type);
  res.set(http::field::server, "voxbridge");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

/// Compares without stopping at the first difference (no timing hint about the token).
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (b.empty() ? 0 : b[i % b.size()]));
  }
  return diff == 0;
}

/// The request body as an OriginateRequest, or the problem.
std::optional<control::OriginateRequest> parse_originate(const std::string& body,
                                                         std::string& problem) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    problem = "the body must be a JSON object";
    return std::nullopt;
  }
  const auto& o = v.as_object();
  control::OriginateRequest r;
  auto text = [&](const char* key, std::string& out) {
    if (const auto* f = o.if_contains(key)) {
      if (!f->is_string()) {
        problem = std::string(key) + " must be a string";
        return false;
      }
      out = std::string(f->as_string());
    }
    return true;
  };
  if (!text("to", r.to) || !text("agent", r.agent) || !text("caller_id", r.caller_id)) {
    return std::nullopt;
  }
  if (r.to.empty()) {
    problem = "missing: to";
    return std::nullopt;
  }
  if (const auto* vars = o.if_contains("variables")) {
    if (!vars->is_object()) {
      problem = "variables must be an object of strings";
      return std::nullopt;
    }
    for (const auto& [k, val] : vars->as_object()) {
      if (!val.is_string()) {
        problem = "variables must be an object of strings";
        return std::nullopt;
      }
      r.variables[std::string(k)] = std::string(val.as_string());
    }
  }
  return r;
}

}  // namespace

void TransferBook::expire(Clock::time_point now) {
  std::erase_if(entries_, [&](const auto& e) { return now - e.second.second > kKeep; });
}

void TransferBook::note(const std::string& uuid, const std::string& target) {
  // Only what passed guard:: is noted, and checked again here: the dialplan puts this text
  // into Goto(), where any ',' ':' '?' would route the call elsewhere.
  if (!guard::check_dial_string(target).empty()) return;
  std::lock_guard lock(mu_);
  const auto now = Clock::now();
  if (entries_.size() >= kMaxEntries) expire(now);
  if (entries_.size() >= kMaxEntries) return;  // a flood of transfers: drop, never grow
  entries_[uuid] = {target, now};
}

void TransferBook::retain_if(const std::function<bool(const std::string& target)>& keep) {
  std::lock_guard lock(mu_);
  std::erase_if(entries_, [&](const auto& e) { return !keep(e.second.first); });
}

std::optional<std::string> TransferBook::find(const std::string& uuid) {
  std::lock_guard lock(mu_);
  expire(Clock::now());
  auto it = entries_.find(uuid);
  if (it == entries_.end()) return std::nullopt;
  return it->second.first;
}

struct HttpApi::Impl : std::enable_shared_from_this<HttpApi::Impl> {
  Impl(HttpApiOptions o, HttpHandlers h)
      : opts(std::move(o)),
        controller(h.controller),
        transfers(std::move(h.transfers)),
        handlers(std::move(h)),
        acceptor(io),
        token(opts.token) {
    boost::system::error_code ec;
    const tcp::endpoint ep(asio::ip::make_address(opts.host, ec), opts.port);
    if (ec) throw std::runtime_error("http_listen: '" + opts.host + "' is not an IP address");
    acceptor.open(ep.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(ep, ec);
    if (ec) {
      throw std::runtime_error("HTTP API: cannot listen on " + opts.host + ":" +
                               std::to_string(opts.port) + ": " + ec.message());
    }
    acceptor.listen();
  }

  HttpApiOptions opts;
  control::Controller* controller;
  std::shared_ptr<TransferBook> transfers;
  HttpHandlers handlers;
  std::atomic<std::uint64_t> accept_errors{0};
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> evicted{0};  // waiting connections closed to make room
  std::size_t connections = 0;            // open; on the API's thread
  /// Connections waiting for their next request, oldest first (on the API's thread). When all
  /// max_connections are taken, a new one closes the oldest of these instead of being refused:
  /// clients that connect and say nothing cannot lock out /healthz and the PBX.
  struct WaitingStream {
    beast::tcp_stream* stream;
    bool closed;  // evicted: its read is ending
  };
  std::list<WaitingStream> waiting;
  /// Listed in `waiting` while a request is awaited, however the wait ends.
  struct Waiting {
    Waiting(std::list<WaitingStream>& l, beast::tcp_stream* s)
        : list(l), at(l.insert(l.end(), {s, false})) {}
    ~Waiting() { list.erase(at); }
    Waiting(const Waiting&) = delete;
    Waiting& operator=(const Waiting&) = delete;
    std::list<WaitingStream>& list;
    std::list<WaitingStream>::iterator at;
  };
  asio::io_context io{1};
  tcp::acceptor acceptor;
  std::thread thread;
  mutable std::mutex token_mu;
  std::string token;  // set_token() changes it while requests are served

  awaitable<Response> originate(const http::request<http::string_body>& req) {
    if (controller == nullptr) {
      co_return error(http::status::service_unavailable,
                      "no Asterisk control path configured ([control] mode = ami or ari)",
                      req.version());
    }
    std::string problem;
    auto r = parse_originate(req.body(), problem);
    if (!r) co_return error(http::status::bad_request, problem, req.version());
    // The controller answers on its own thread; the answer comes back here.
    auto result = std::make_shared<std::optional<control::OriginateResult>>();
    auto wake = std::make_shared<asio::steady_timer>(io, asio::steady_timer::time_point::max());
    controller->originate(*r, [w = weak_from_this(), result, wake](control::OriginateResult res) {
      auto self = w.lock();
      if (!self) return;  // the API has stopped
      asio::post(self->io, [result, wake, res = std::move(res)]() mutable {
        *result = std::move(res);
        wake->cancel();
      });
    });
    while (!*result) co_await wake->async_wait(asio::as_tuple(use_awaitable));
    const auto& res = **result;
    co_return json_response(http::status::ok,
                            json::object{{"outcome", control::outcome_name(res.outcome)},
                                         {"channel", res.channel},
                                         {"detail", res.detail}},
                            req.version());
  }

  Response register_call(const http::request<http::string_body>& req, const std::string& uuid) {
    if (!handlers.registrations) {
      return error(http::status::not_found, "pre-registration is off", req.version());
    }
    if (!is_uuid_text(uuid)) {
      return error(http::status::bad_request, "not a UUID: " + uuid, req.version());
    }
    std::string problem;
    auto reg = parse_registration(req, problem);
    if (!reg) return error(http::status::bad_request, problem, req.version());
    const auto ttl = reg->ttl;
    if (!handlers.registrations->add(uuid, std::move(reg->metadata), ttl)) {
      return error(http::status::service_unavailable, "too many pending registrations",
                   req.version());
    }
    return json_response(http::status::created, json::object{{"uuid", uuid}, {"ttl", ttl.count()}},
                         req.version());
  }

  bool authorized(const http::request<http::string_body>& req) const {
    std::lock_guard lock(token_mu);
    if (token.empty()) return true;
    const auto h = req[http::field::authorization];
    constexpr std::string_view kBearer = "Bearer ";
    if (h.size() <= kBearer.size() || h.substr(0, kBearer.size()) != kBearer) return false;
    return same_secret(std::string_view(h.data(), h.size()).substr(kBearer.size()), token);
  }

  awaitable<Response> route(const http::request<http::string_body>& req) {
    const std::string target(req.target());
    const auto v = req.version();
    const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
    if (target == "/healthz") {
      co_return text_response(http::status::ok, "ok\n", "text/plain", v);
    }
    if (target == "/readyz") {
      std::string why = handlers.not_ready ? handlers.not_ready() : std::string();
      if (why.empty()) co_return text_response(http::status::ok, "ready\n", "text/plain", v);
      // A provider's error text (addresses, messages) only to who holds the token.
      if (!authorized(req)) why = short_reason(why);
      co_return text_response(http::status::service_unavailable, why + "\n", "text/plain", v);
    }
    if (!get) {
      // Anything that may change state: never on behalf of a web page (see the header).
      if (const Refusal r = check_site(req, opts.host)) co_return error(r.status, r.message, v);
    }
    if (!authorized(req)) {
      Response res = error(http::status::unauthorized, "a bearer token is required", v);
      res.set(http::field::www_authenticate, "Bearer");
      co_return res;
    }
    if (target == "/metrics" && get) {
      co_return text_response(http::status::ok, handlers.metrics ? handlers.metrics() : "",
                              "text/plain; version=0.0.4; charset=utf-8", v);
    }
    if (target == "/status" && get) {
      co_return text_response(http::status::ok, handlers.status ? handlers.status() : "[]\n",
                              "application/json", v);
    }
    if (target == "/v1/health") {
      if (req.method() != http::verb::get) {
        co_return error(http::status::method_not_allowed, "use GET", req.version());
      }
      const char* control = controller == nullptr     ? "none"
                            : controller->connected() ? "up"
                                                      : "down";
      co_return json_response(
          http::status::ok,
          json::object{{"status", "ok"},
                       {"active_calls", handlers.active_calls ? handlers.active_calls() : 0},
                       {"control", control}},
          req.version());
    }
    if (target == "/v1/originate") {
      if (req.method() != http::verb::post) {
        co_return error(http::status::method_not_allowed, "use POST", req.version());
      }
      if (const Refusal r = check_content_type(req, false)) co_return error(r.status, r.message, v);
      co_return co_await originate(req);
    }
    const std::string calls = "/v1/calls/";
    const std::string suffix = "/transfer";
    if (auto ev = events_request(target)) {
      if (!get) co_return error(http::status::method_not_allowed, "use GET", v);
      const auto body = handlers.events ? handlers.events(ev->first, ev->second) : std::nullopt;
      if (!body) co_return error(http::status::not_found, "no live call " + ev->first, v);
      co_return text_response(http::status::ok, *body, "application/json", v);
    }
    if (target.rfind(calls, 0) == 0 && target.find('/', calls.size()) == std::string::npos) {
      if (req.method() != http::verb::post) {
        co_return error(http::status::method_not_allowed, "use POST", req.version());
      }
      if (const Refusal r = check_content_type(req, true)) co_return error(r.status, r.message, v);
      co_return register_call(req, target.substr(calls.size()));
    }
    if (target.rfind(calls, 0) == 0 && target.size() > calls.size() + suffix.size() &&
        target.compare(target.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string uuid =
          target.substr(calls.size(), target.size() - calls.size() - suffix.size());
      const auto found = transfers ? transfers->find(uuid) : std::nullopt;
      Response res{found ? http::status::ok : http::status::not_found, req.version()};
      res.set(http::field::content_type, "text/plain");
      res.set(http::field::server, "voxbridge");
      res.body() = found ? *found : std::string();  // CURL() returns the body as it is
      res.prepare_payload();
      co_return res;
    }
    co_return error(http::status::not_found, "no such endpoint: " + target, req.version());
  }

  /// A request that did not parse: 400, the connection closes after it.
  static Response bad_request(const beast::error_code& ec) {
    Response res = error(http::status::bad_request, "bad request: " + ec.message(), 11);
    res.keep_alive(false);
    return res;
  }

  static void limit(http::request_parser<http::string_body>& parser, std::size_t body_bytes) {
    parser.body_limit(body_bytes);
    parser.header_limit(8192);
  }

  awaitable<void> serve(tcp::socket socket) {
    // Counted until this coroutine ends, however it ends (also when `io` is destroyed).
    struct Slot {
      std::size_t& n;
      ~Slot() { --n; }
    } slot{connections};
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buf;
    for (;;) {
      http::request_parser<http::string_body> parser;
      limit(parser, opts.max_body_bytes);
      // Before authentication a client gets this long for a whole request, then it is closed.
      stream.expires_after(opts.request_timeout);
      std::optional<Waiting> wait(std::in_place, waiting, &stream);
      auto [ec, n] = co_await http::async_read(stream, buf, parser, asio::as_tuple(use_awaitable));
      wait.reset();  // from here on it is being served: never evicted
      if (ec == http::error::end_of_stream || ec == beast::error::timeout) break;
      if (ec) {
        stream.expires_after(opts.request_timeout);
        co_await http::async_write(stream, bad_request(ec), asio::as_tuple(use_awaitable));
        break;
      }
      const auto req = parser.release();
      stream.expires_never();  // an originate waits as long as Asterisk rings
      Response res = co_await route(req);
      res.keep_alive(req.keep_alive());
      stream.expires_after(std::chrono::seconds(30));
      auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(use_awaitable));
      if (wec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  /// Over max_connections: a short 503 (one non-blocking send, whatever it takes) and close.
  void refuse(tcp::socket& socket) {
    refused.fetch_add(1, std::memory_order_relaxed);
    static constexpr std::string_view kBusy =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Content-Length: 33\r\nConnection: close\r\n\r\n{\"error\":\"too many connections\"}\n";
    boost::system::error_code ec;
    socket.non_blocking(true, ec);
    socket.send(asio::buffer(kBusy.data(), kBusy.size()), 0, ec);
    socket.close(ec);
  }

  // Coroutines use `this`, not a shared owner: they run only on `io`, which stop() ends before
  // the Impl can go, and destroying `io` destroys any that never finished (an owning self here
  // would be a cycle through `io` and leak).
  awaitable<void> accept_loop() {
    asio::steady_timer pause(io);
    std::chrono::steady_clock::time_point logged{};
    std::uint64_t unlogged = 0;
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(use_awaitable));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        // Out of descriptors (EMFILE, ENFILE) or the like: the listening socket is fine and the
        // connection waits in the backlog; try again shortly instead of spinning or giving up.
        accept_errors.fetch_add(1, std::memory_order_relaxed);
        const auto now = std::chrono::steady_clock::now();
        if (now - logged >= std::chrono::seconds(1)) {
          logged = now;
          spdlog::warn("HTTP API: accept failed: {}; retrying every 100 ms{}", ec.message(),
                       unlogged == 0 ? std::string()
                                     : " (" + std::to_string(unlogged) + " more not logged)");
          unlogged = 0;
        } else {
          ++unlogged;
        }
        pause.expires_after(std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::as_tuple(use_awaitable));
        continue;
      }
      if (connections >= opts.max_connections) {
        // The oldest connection still waiting for a request makes room (its read ends with an
        // error and its coroutine ends); the newcomer is served. None waiting: refused.
        auto oldest = std::find_if(waiting.begin(), waiting.end(),
                                   [](const WaitingStream& w) { return !w.closed; });
        if (oldest == waiting.end()) {
          refuse(socket);
          continue;
        }
        oldest->closed = true;
        boost::system::error_code ignored;
        oldest->stream->socket().close(ignored);
        evicted.fetch_add(1, std::memory_order_relaxed);
      }
      ++connections;
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  }
};

HttpApi::HttpApi(HttpApiOptions options, HttpHandlers handlers)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(handlers))) {}

HttpApi::~HttpApi() {
  stop();
}

void HttpApi::start() {
  if (impl_->thread.joinable()) return;
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([i = impl_] { i->io.run(); });
  bool with_token = false;
  {
    std::lock_guard lock(impl_->token_mu);
    with_token = !impl_->token.empty();
  }
  spdlog::info("HTTP API on {}:{} (/healthz /readyz /metrics /status /v1/...){}", impl_->opts.host,
               port(), with_token ? ", bearer token" : "");
}

void HttpApi::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
}

unsigned short HttpApi::port() const {
  return impl_->acceptor.local_endpoint().port();
}

void HttpApi::set_token(std::string token) {
  std::lock_guard lock(impl_->token_mu);
  impl_->token = std::move(token);
}

std::uint64_t HttpApi::accept_errors() const {
  return impl_->accept_errors.load(std::memory_order_relaxed);
}

std::uint64_t HttpApi::connections_evicted() const {
  return impl_->evicted.load(std::memory_order_relaxed);
}

std::uint64_t HttpApi::connections_refused() const {
  return impl_->refused.load(std::memory_order_relaxed);
}

}  // namespace voxbridge::http_api
