#include "voxbridge/http_api/http_api.hpp"

#include <spdlog/spdlog.h>

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
#include <optional>
#include <thread>
#include <vector>

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

/// A UUID as Asterisk's ${UUID()} writes it (any case).
bool is_uuid_text(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// application/x-www-form-urlencoded pairs; `problem` set on a bad escape or a pair without '='.
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view body,
                                                            std::string& problem) {
  auto decode = [&](std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (in[i] == '+') {
        out += ' ';
      } else if (in[i] == '%') {
        const int hi = i + 2 < in.size() ? hex_value(in[i + 1]) : -1;
        const int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
          problem = "bad %-escape in the form data";
          return out;
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
      } else {
        out += in[i];
      }
    }
    return out;
  };
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t at = 0;
  while (at <= body.size() && problem.empty()) {
    const auto end = std::min(body.find('&', at), body.size());
    const std::string_view pair = body.substr(at, end - at);
    at = end + 1;
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      problem = "form data must be NAME=VALUE pairs joined by &";
      break;
    }
    out.emplace_back(decode(pair.substr(0, eq)), decode(pair.substr(eq + 1)));
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
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

std::optional<std::string> TransferBook::find(const std::string& uuid) {
  std::lock_guard lock(mu_);
  expire(Clock::now());
  auto it = entries_.find(uuid);
  if (it == entries_.end()) return std::nullopt;
  return it->second.first;
}

void Registrations::expire(Clock::time_point now) {
  std::erase_if(entries_, [now](const auto& e) { return e.second.second <= now; });
}

bool Registrations::add(const std::string& uuid, std::map<std::string, std::string> metadata,
                        std::chrono::seconds ttl, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (entries_.size() >= kMaxEntries) expire(now);
  if (entries_.size() >= kMaxEntries && !entries_.contains(uuid)) return false;
  entries_[lower(uuid)] = {std::move(metadata), now + ttl};
  return true;
}

std::optional<std::map<std::string, std::string>> Registrations::take(const std::string& uuid,
                                                                      Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(lower(uuid));
  if (it == entries_.end()) return std::nullopt;
  auto found = std::move(it->second);
  entries_.erase(it);
  if (found.second <= now) return std::nullopt;
  return std::move(found.first);
}

std::size_t Registrations::size() {
  std::lock_guard lock(mu_);
  return entries_.size();
}

struct HttpApi::Impl : std::enable_shared_from_this<HttpApi::Impl> {
  Impl(HttpApiOptions o, HttpHandlers h)
      : opts(std::move(o)),
        controller(h.controller),
        transfers(std::move(h.transfers)),
        handlers(std::move(h)),
        acceptor(io) {
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
  asio::io_context io{1};
  tcp::acceptor acceptor;
  std::thread thread;

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
    std::map<std::string, std::string> meta;
    std::chrono::seconds ttl{60};
    auto set_ttl = [&](std::int64_t v) {
      if (v < 1 || v > 3600) return false;
      ttl = std::chrono::seconds(v);
      return true;
    };
    const std::string& body = req.body();
    if (!body.empty() && body.front() != '{') {
      // Form encoding (what Asterisk's CURL() sends: its argument parser eats the quotes a
      // JSON body needs): VB_AGENT=sales&caller_number=2125551234&ttl=30.
      std::string problem;
      for (auto& [k, val] : parse_form(body, problem)) {
        if (k == "ttl") {
          std::int64_t t = 0;
          const auto r = std::from_chars(val.data(), val.data() + val.size(), t);
          if (r.ec != std::errc() || r.ptr != val.data() + val.size() || !set_ttl(t)) {
            return error(http::status::bad_request, "ttl must be 1..3600 seconds", req.version());
          }
        } else {
          meta[k] = val;
        }
      }
      if (!problem.empty()) return error(http::status::bad_request, problem, req.version());
    } else {
      boost::system::error_code ec;
      const json::value v = json::parse(body.empty() ? std::string("{}") : body, ec);
      if (ec || !v.is_object()) {
        return error(http::status::bad_request, "the body must be a JSON object or form data",
                     req.version());
      }
      for (const auto& [k, val] : v.as_object()) {
        if (k == "ttl") {
          if (!val.is_int64() || !set_ttl(val.as_int64())) {
            return error(http::status::bad_request, "ttl must be 1..3600 seconds", req.version());
          }
        } else if (val.is_string()) {
          meta[std::string(k)] = std::string(val.as_string());
        } else if (val.is_int64()) {
          meta[std::string(k)] = std::to_string(val.as_int64());
        } else {
          return error(http::status::bad_request,
                       "metadata values must be strings or integers: " + std::string(k),
                       req.version());
        }
      }
    }
    if (!handlers.registrations->add(uuid, std::move(meta), ttl)) {
      return error(http::status::service_unavailable, "too many pending registrations",
                   req.version());
    }
    return json_response(http::status::created, json::object{{"uuid", uuid}, {"ttl", ttl.count()}},
                         req.version());
  }

  /// "/v1/calls/UUID/events[?from=N]" -> (UUID, N).
  static std::optional<std::pair<std::string, std::size_t>> events_request(
      const std::string& target, const std::string& calls) {
    const std::string suffix = "/events";
    const auto q = target.find('?');
    const std::string path = target.substr(0, q);
    if (path.rfind(calls, 0) != 0 || path.size() <= calls.size() + suffix.size() ||
        path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0) {
      return std::nullopt;
    }
    std::size_t from = 0;
    if (q != std::string::npos) {
      const std::string query = target.substr(q + 1);
      if (query.rfind("from=", 0) == 0) {
        const auto* b = query.data() + 5;
        const auto* e = query.data() + query.size();
        std::from_chars(b, e, from);
      }
    }
    return std::make_pair(path.substr(calls.size(), path.size() - calls.size() - suffix.size()),
                          from);
  }

  mutable std::mutex token_mu;  // guards opts.token (set_token from another thread)

  bool authorized(const http::request<http::string_body>& req) const {
    std::string token;
    {
      std::lock_guard lock(token_mu);
      token = opts.token;
    }
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
      co_return text_response(http::status::service_unavailable, why + "\n", "text/plain", v);
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
      co_return co_await originate(req);
    }
    const std::string calls = "/v1/calls/";
    const std::string suffix = "/transfer";
    if (auto ev = events_request(target, calls)) {
      if (!get) co_return error(http::status::method_not_allowed, "use GET", v);
      const auto body = handlers.events ? handlers.events(ev->first, ev->second) : std::nullopt;
      if (!body) co_return error(http::status::not_found, "no live call " + ev->first, v);
      co_return text_response(http::status::ok, *body, "application/json", v);
    }
    if (target.rfind(calls, 0) == 0 && target.find('/', calls.size()) == std::string::npos) {
      if (req.method() != http::verb::post) {
        co_return error(http::status::method_not_allowed, "use POST", req.version());
      }
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

  awaitable<void> serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buf;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(opts.max_body_bytes);
      parser.header_limit(8192);
      stream.expires_after(std::chrono::seconds(30));
      auto [ec, n] = co_await http::async_read(stream, buf, parser, asio::as_tuple(use_awaitable));
      if (ec == http::error::end_of_stream || ec == beast::error::timeout) break;
      if (ec) {
        Response res = error(http::status::bad_request, "bad request: " + ec.message(), 11);
        res.keep_alive(false);
        co_await http::async_write(stream, res, asio::as_tuple(use_awaitable));
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

  // Coroutines use `this`, not a shared owner: they run only on `io`, which stop() ends before
  // the Impl can go, and destroying `io` destroys any that never finished (an owning self here
  // would be a cycle through `io` and leak).
  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(use_awaitable));
      if (ec) co_return;
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
  spdlog::info("HTTP API on {}:{} (/healthz /readyz /metrics /status /v1/...){}", impl_->opts.host,
               port(), impl_->opts.token.empty() ? "" : ", bearer token");
}

void HttpApi::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
}

void HttpApi::set_token(std::string token) {
  std::lock_guard lock(impl_->token_mu);
  impl_->opts.token = std::move(token);
}

unsigned short HttpApi::port() const {
  return impl_->acceptor.local_endpoint().port();
}

}  // namespace voxbridge::http_api
