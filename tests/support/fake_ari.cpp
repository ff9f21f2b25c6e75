#include "fake_ari.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <numbers>
#include <set>
#include <thread>

#include "support/test_tls.hpp"
#include "voxbridge/audiosocket/protocol.hpp"
#include "voxbridge/base64/base64.hpp"

namespace voxbridge::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using asio::awaitable;
using asio::ip::tcp;
using Response = http::response<http::string_body>;
// Plain sockets under HTTP and the WebSocket (beast::tcp_stream's timer and rate policy templates
// cost compile time and the fake needs no timeouts: its clients are the tests' own).
using TlsStream = asio::ssl::stream<tcp::socket>;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::size_t kFrameBytes = 640;  // 20 ms of slin16
constexpr std::size_t kMaxRecorded = 16000 * 30;

/// "2026-11-24T00:00:03.536+0000", as Asterisk writes event timestamps.
std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03d+0000", static_cast<int>(ms.count()));
  return buf;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

FakeAri::Request parse_request(std::string method, std::string target, std::string body) {
  FakeAri::Request r{std::move(method),
                     std::move(target),
                     {},
                     {},
                     std::move(body),
                     std::chrono::steady_clock::now()};
  const auto q = r.target.find('?');
  r.path = r.target.substr(0, q);
  if (q == std::string::npos) return r;
  std::string_view rest = std::string_view(r.target).substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view kv = rest.substr(0, amp);
    const auto eq = kv.find('=');
    r.query[percent_decode(kv.substr(0, eq))] =
        eq == std::string_view::npos ? std::string() : percent_decode(kv.substr(eq + 1));
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
  }
  return r;
}

std::string cause_text(int cause) {  // Q.850, as Asterisk names them
  return cause == 16   ? "Normal Clearing"
         : cause == 17 ? "User busy"
         : cause == 18 ? "No user responding"
         : cause == 19 ? "User alerting, no answer"
                       : "Unknown";
}

}  // namespace

/// The AudioSocket client side of one externalMedia channel.
struct Leg {
  explicit Leg(asio::io_context& io) : socket(io), timer(io) {}
  tcp::socket socket;
  asio::steady_timer timer;
  std::size_t index = 0;                                   // into Impl::legs
  std::shared_ptr<const std::vector<std::int16_t>> audio;  // null = FakeAri::tone
  bool closed = false;
};

struct Channel {
  std::string id, name, state, number, context, exten, app_data;
  std::map<std::string, std::string> vars;
  bool in_stasis = true;
  bool moh = false;  // music on hold playing to it
  std::string bridge;
  std::shared_ptr<Leg> leg;  // externalMedia channels only
};

/// One events WebSocket, over TCP or TLS.
struct Events {
  virtual ~Events() = default;
  virtual awaitable<boost::system::error_code> write(const std::string& text) = 0;
  virtual void close() = 0;
  std::deque<std::string> out;
  bool writing = false;
};

template <class Next>
struct EventsOn : Events {
  explicit EventsOn(Next&& next) : ws(std::move(next)) {}
  awaitable<boost::system::error_code> write(const std::string& text) override {
    ws.text(true);
    auto [ec, n] = co_await ws.async_write(asio::buffer(text), kTuple);
    co_return ec;
  }
  void close() override {
    boost::system::error_code ignored;
    beast::get_lowest_layer(ws).close(ignored);
  }
  websocket::stream<Next> ws;
};

struct FakeAri::Impl {
  Impl(std::string user, std::string password, std::string app_name, bool tls)
      : app(std::move(app_name)), acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}) {
    if (tls) {
      const auto [cert, key] = self_signed_localhost();
      tls_ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
      tls_ctx->use_certificate_chain(asio::buffer(cert));
      tls_ctx->use_private_key(asio::buffer(key), asio::ssl::context::pem);
      certificate = cert;
    }
    auth = "Basic " + voxbridge::base64::encode(user + ":" + password);
  }

  std::unique_ptr<asio::ssl::context> tls_ctx;  // null = plain HTTP; outlives the streams
  asio::io_context io{1};                       // destroyed after everything below
  std::string app;
  std::string auth;
  tcp::acceptor acceptor;
  std::string certificate;  // PEM, with TLS
  std::thread thread;

  // Only on the io thread.
  std::vector<std::shared_ptr<Events>> events;
  std::vector<std::weak_ptr<tcp::socket>> http_conns;

  // The model: written on the io thread, read by the test thread.
  mutable std::mutex mu;
  std::map<std::string, Channel> channels;
  std::map<std::string, std::vector<std::string>> bridges;  // id -> channel ids
  std::vector<Request> log;
  std::vector<MediaLeg> legs;
  std::shared_ptr<const std::vector<std::int16_t>> caller_audio;
  int originate_cause = 0;
  std::set<std::string> refused_actions;
  int ws_connects = 0;
  int tls_failures = 0;
  unsigned next_id = 1;

  template <class F>
  auto locked(F f) const -> decltype(f()) {
    std::lock_guard lock(mu);
    return f();
  }

  /// Runs `f` on the io thread and returns its result (test thread only).
  template <class F>
  auto sync(F f) -> decltype(f()) {
    auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
    auto done = task->get_future();
    asio::post(io, [task] { (*task)(); });
    return done.get();
  }

  std::string new_id() {  // under mu
    return "1795478400." + std::to_string(next_id++);
  }

  // --- events ---------------------------------------------------------------------------------

  json::object channel_json(const Channel& c) const {
    json::object o{{"id", c.id},
                   {"name", c.name},
                   {"state", c.state},
                   {"protocol_id", ""},
                   {"caller", {{"name", ""}, {"number", c.number}}},
                   {"connected", {{"name", ""}, {"number", ""}}},
                   {"accountcode", ""},
                   {"dialplan",
                    {{"context", c.context},
                     {"exten", c.exten},
                     {"priority", 1},
                     {"app_name", c.in_stasis ? "Stasis" : "AppDial2"},
                     {"app_data", c.app_data}}},
                   {"creationtime", timestamp()},
                   {"language", "en"}};
    if (!c.vars.empty()) {
      json::object vars;
      for (const auto& [k, v] : c.vars) vars[k] = v;
      o["channelvars"] = std::move(vars);
    }
    return o;
  }

  json::object bridge_json(const std::string& id) const {
    json::array members;
    for (const auto& c : bridges.at(id)) members.emplace_back(c);
    return {{"id", id},
            {"technology", "simple_bridge"},
            {"bridge_type", "mixing"},
            {"bridge_class", "stasis"},
            {"creator", "Stasis"},
            {"name", ""},
            {"channels", std::move(members)},
            {"creationtime", timestamp()},
            {"video_mode", "talker"}};
  }

  /// Sends one event (type, timestamp, `fields`, asterisk_id, application) to every events
  /// WebSocket; with none connected it is lost, as with Asterisk.
  void emit(const std::string& type, const json::object& fields) {
    json::object e{{"type", type}, {"timestamp", timestamp()}};
    for (const auto& [k, v] : fields) e[k] = v;
    e["asterisk_id"] = "02:fc:00:00:00:01";
    e["application"] = app;
    const std::string text = json::serialize(e);
    for (auto& s : events) {
      s->out.push_back(text);
      if (!s->writing) {
        s->writing = true;
        asio::co_spawn(io, write_events(s), asio::detached);
      }
    }
  }

  awaitable<void> write_events(std::shared_ptr<Events> s) {
    while (!s->out.empty()) {
      const boost::system::error_code ec = co_await s->write(s->out.front());
      if (ec) break;
      s->out.pop_front();
    }
    s->writing = false;
  }

  /// A channel goes away (under mu): it leaves its bridge and Stasis, then is destroyed.
  void end_channel(std::string id, int cause, int hangup_request_cause) {
    auto it = channels.find(id);
    if (it == channels.end()) return;
    Channel& c = it->second;
    if (hangup_request_cause != 0) {
      emit("ChannelHangupRequest",
           {{"cause", hangup_request_cause}, {"soft", true}, {"channel", channel_json(c)}});
    }
    leave_bridge(c);
    if (c.in_stasis) emit("StasisEnd", {{"channel", channel_json(c)}});
    emit("ChannelDestroyed",
         {{"cause", cause}, {"cause_txt", cause_text(cause)}, {"channel", channel_json(c)}});
    if (c.leg) close_leg(*c.leg);
    channels.erase(it);
  }

  void leave_bridge(Channel& c) {
    if (c.bridge.empty()) return;
    auto& members = bridges[c.bridge];
    std::erase(members, c.id);
    emit("ChannelLeftBridge", {{"bridge", bridge_json(c.bridge)}, {"channel", channel_json(c)}});
    c.bridge.clear();
  }

  void close_leg(Leg& leg) {  // a plain TCP close, as Asterisk does on hangup (no 0x00)
    if (leg.closed) return;
    leg.closed = true;
    legs[leg.index].closed = true;
    boost::system::error_code ignored;
    leg.socket.close(ignored);
    leg.timer.cancel();
  }

  // --- HTTP -------------------------------------------------------------------------------------

  Response reply(const http::request<http::string_body>& req, http::status status,
                 const json::value& body = nullptr) {
    Response res{status, req.version()};
    res.set(http::field::server, "Asterisk");
    res.set(http::field::cache_control, "no-cache, no-store");
    if (!body.is_null()) {
      res.set(http::field::content_type, "application/json");
      res.body() = json::serialize(body);
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
  }

  Response error(const http::request<http::string_body>& req, http::status status,
                 const std::string& message) {
    return reply(req, status, json::object{{"message", message}});
  }

  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (ec) co_return;
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  }

  /// One client connection: with TLS the handshake first, then keep-alive REST requests, or
  /// the events WebSocket.
  awaitable<void> serve(tcp::socket socket) {
    if (!tls_ctx) {
      auto stream = std::make_shared<tcp::socket>(std::move(socket));
      http_conns.push_back(stream);
      co_await serve_http(std::move(stream));
      co_return;
    }
    auto stream = std::make_shared<TlsStream>(std::move(socket), *tls_ctx);
    // (Aliasing: drop_connections() closes the TCP under the TLS.)
    http_conns.push_back(std::shared_ptr<tcp::socket>(stream, &beast::get_lowest_layer(*stream)));
    auto [ec] = co_await stream->async_handshake(asio::ssl::stream_base::server, kTuple);
    if (ec) {
      std::lock_guard lock(mu);
      ++tls_failures;
      co_return;
    }
    co_await serve_http(std::move(stream));
  }

  template <class Stream>
  awaitable<void> serve_http(std::shared_ptr<Stream> stream) {
    beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(*stream, buf, req, kTuple);
      if (ec) co_return;
      const bool authorized = req[http::field::authorization] == auth;
      if (websocket::is_upgrade(req)) {
        const Request r = parse_request("GET", std::string(req.target()), {});
        if (authorized && r.path == "/ari/events" && r.query.count("app") != 0 &&
            r.query.at("app") == app) {
          auto s = std::make_shared<EventsOn<Stream>>(std::move(*stream));
          stream.reset();  // moved from: its entry in http_conns expires
          co_await run_events(std::move(s), std::move(req));
          co_return;
        }
      }
      Response res;
      if (!authorized) {
        res = error(req, http::status::unauthorized, "Authentication required");
        res.set(http::field::www_authenticate, "Basic realm=\"Asterisk REST Interface\"");
      } else if (websocket::is_upgrade(req)) {
        res = error(req, http::status::bad_request, "Invalid application provided in param [app].");
      } else {
        res = co_await handle(req);
      }
      auto [wec, wn] = co_await http::async_write(*stream, res, kTuple);
      if (wec || !res.keep_alive()) co_return;
    }
  }

  template <class Next>
  awaitable<void> run_events(std::shared_ptr<EventsOn<Next>> s,
                             http::request<http::string_body> req) {
    s->ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "Asterisk"); }));
    auto [ec] = co_await s->ws.async_accept(req, kTuple);
    if (ec) co_return;
    const std::shared_ptr<Events> base = s;
    events.push_back(base);
    {
      std::lock_guard lock(mu);
      ++ws_connects;
    }
    beast::flat_buffer buf;
    for (;;) {  // Asterisk ignores what clients send; this notices the close
      auto [rec, n] = co_await s->ws.async_read(buf, kTuple);
      if (rec) break;
      buf.clear();
    }
    std::erase(events, base);
  }

  void drop_connections() {
    boost::system::error_code ignored;
    for (auto& s : events) s->close();
    events.clear();
    for (auto& w : http_conns) {
      if (auto c = w.lock()) c->close(ignored);
    }
    http_conns.clear();
  }

  // --- REST -------------------------------------------------------------------------------------

  awaitable<Response> handle(const http::request<http::string_body>& req) {
    const Request r =
        parse_request(std::string(req.method_string()), std::string(req.target()), req.body());
    std::unique_lock lock(mu);
    log.push_back(r);
    std::vector<std::string> seg;  // "/ari/channels/ID/answer" -> channels, ID, answer
    for (std::size_t at = 5; at <= r.path.size();) {
      const auto slash = r.path.find('/', at);
      seg.push_back(r.path.substr(at, slash - at));
      if (slash == std::string::npos) break;
      at = slash + 1;
    }
    if (r.path.rfind("/ari/", 0) != 0 || seg.empty()) {
      co_return error(req, http::status::not_found, "Not found");
    }
    const auto verb = req.method();
    if (seg[0] == "channels" && seg.size() == 2 && seg[1] == "externalMedia" &&
        verb == http::verb::post) {
      lock.unlock();
      co_return co_await external_media(req, r);
    }
    if (seg[0] == "channels" && seg.size() == 1 && verb == http::verb::post) {
      co_return originate(req, r);
    }
    if (seg[0] == "channels" && seg.size() >= 2) {
      auto it = channels.find(seg[1]);
      if (it == channels.end()) co_return error(req, http::status::not_found, "Channel not found");
      Channel& c = it->second;
      if (seg.size() == 2 && verb == http::verb::delete_) {  // hangup works outside Stasis too
        end_channel(c.id, 16, 32);
        co_return reply(req, http::status::no_content);
      }
      if (!c.in_stasis) {
        co_return error(req, http::status::conflict, "Channel not in Stasis application");
      }
      const std::string action = seg.size() == 3 ? seg[2] : std::string();
      if (!action.empty() && refused_actions.count(action) != 0) {
        co_return error(req, http::status::conflict, "Channel not in Stasis application");
      }
      if (action == "answer" && verb == http::verb::post) {
        if (c.state != "Up") {
          c.state = "Up";
          emit("ChannelStateChange", {{"channel", channel_json(c)}});
        }
        co_return reply(req, http::status::no_content);
      }
      if (action == "continue" && verb == http::verb::post) {
        // The caller leaves Stasis for the dialplan: it stays up, out of our bridge.
        leave_bridge(c);
        c.in_stasis = false;
        c.context = r.query.count("context") ? r.query.at("context") : c.context;
        c.exten = r.query.count("extension") ? r.query.at("extension") : c.exten;
        emit("StasisEnd", {{"channel", channel_json(c)}});
        co_return reply(req, http::status::no_content);
      }
      if (action == "moh" && (verb == http::verb::post || verb == http::verb::delete_)) {
        // POST /channels/{id}/moh[?mohClass=] starts music on hold on the channel (mohClass
        // optional), DELETE stops it; 204, or 404/409 as above (Asterisk's Channels REST API,
        // docs.asterisk.org, "startMoh" / "stopMoh").
        c.moh = verb == http::verb::post;
        co_return reply(req, http::status::no_content);
      }
      if (action == "dtmf" && verb == http::verb::post) {
        if (r.query.count("dtmf") == 0) {
          co_return error(req, http::status::bad_request, "DTMF is required");
        }
        co_return reply(req, http::status::no_content);
      }
      if (action == "variable" && verb == http::verb::post) {
        if (r.query.count("variable") == 0) {
          co_return error(req, http::status::bad_request, "Variable name is required");
        }
        const std::string value = r.query.count("value") ? r.query.at("value") : "";
        emit(
            "ChannelVarset",
            {{"variable", r.query.at("variable")}, {"value", value}, {"channel", channel_json(c)}});
        co_return reply(req, http::status::no_content);
      }
    }
    if (seg[0] == "bridges" && seg.size() == 1 && verb == http::verb::post) {
      const std::string id = "0eacf636-1902-46ba-a452-" + std::to_string(100000000000 + next_id++);
      bridges[id] = {};
      co_return reply(req, http::status::ok, bridge_json(id));
    }
    if (seg[0] == "bridges" && seg.size() >= 2) {
      if (bridges.count(seg[1]) == 0) {
        co_return error(req, http::status::not_found, "Bridge not found");
      }
      const std::string bid = seg[1];
      if (seg.size() == 2 && verb == http::verb::delete_) {
        for (const std::string& cid : std::vector<std::string>(bridges[bid])) {
          leave_bridge(channels.at(cid));
        }
        emit("BridgeDestroyed", {{"bridge", bridge_json(bid)}});
        bridges.erase(bid);
        co_return reply(req, http::status::no_content);
      }
      if (seg.size() == 3 && seg[2] == "addChannel" && verb == http::verb::post) {
        std::vector<std::string> ids;
        std::string list = r.query.count("channel") ? r.query.at("channel") : "";
        for (std::size_t at = 0; at <= list.size();) {
          const auto comma = list.find(',', at);
          ids.push_back(list.substr(at, comma - at));
          if (comma == std::string::npos) break;
          at = comma + 1;
        }
        for (const auto& id : ids) {
          auto it = channels.find(id);
          if (it == channels.end()) {
            co_return error(req, http::status::bad_request, "Channel not found");
          }
          if (!it->second.in_stasis) {
            co_return error(req, http::status::unprocessable_entity,
                            "Channel not in Stasis application");
          }
        }
        for (const auto& id : ids) {
          Channel& c = channels.at(id);
          leave_bridge(c);
          c.bridge = bid;
          bridges[bid].push_back(id);
          emit("ChannelEnteredBridge",
               {{"bridge", bridge_json(bid)}, {"channel", channel_json(c)}});
        }
        co_return reply(req, http::status::no_content);
      }
    }
    co_return error(req, http::status::not_found, "Not found");
  }

  /// POST /channels/externalMedia: connects to external_host as AudioSocket's channel driver.
  awaitable<Response> external_media(const http::request<http::string_body>& req, Request r) {
    auto q = [&](const char* k) { return r.query.count(k) ? r.query.at(k) : std::string(); };
    if (q("data").empty()) co_return error(req, http::status::bad_request, "data can not be empty");
    if (q("encapsulation") != "audiosocket" || q("transport") != "tcp") {
      co_return error(req, http::status::bad_request,
                      "transport must be 'tcp' for audiosocket encapsulation");
    }
    if (q("format") != "slin16") {  // the fake's own limit; Asterisk takes any format
      co_return error(req, http::status::bad_request, "the fake Asterisk sends slin16 only");
    }
    const std::string host_port = q("external_host");
    const auto uuid = audiosocket::Uuid::parse(q("data"));
    const auto colon = host_port.rfind(':');
    auto leg = std::make_shared<Leg>(io);
    boost::system::error_code ec =
        uuid ? boost::system::error_code() : asio::error::invalid_argument;
    tcp::endpoint to;
    if (!ec && colon != std::string::npos) {
      to = {asio::ip::make_address(host_port.substr(0, colon), ec),
            static_cast<unsigned short>(std::atoi(host_port.c_str() + colon + 1))};
    }
    if (!ec) std::tie(ec) = co_await leg->socket.async_connect(to, kTuple);
    std::array<std::uint8_t, 19> hello{0x01, 0x00, 0x10};
    if (!ec) {
      std::copy(uuid->bytes.begin(), uuid->bytes.end(), hello.begin() + 3);
      std::tie(ec, std::ignore) =
          co_await asio::async_write(leg->socket, asio::buffer(hello), kTuple);
    }
    if (ec) {
      co_return error(req, http::status::internal_server_error,
                      "An internal error prevented this request from being handled");
    }
    std::lock_guard lock(mu);
    Channel c;
    c.id = new_id();
    c.name = "AudioSocket/" + host_port + "-" + q("data");
    c.state = "Up";
    c.context = "default";
    c.exten = "s";
    c.app_data = app + "," + q("data");
    c.vars = {{"AUDIOSOCKET_SERVICE", host_port}, {"AUDIOSOCKET_UUID", q("data")}};
    c.leg = leg;
    leg->index = legs.size();
    leg->audio = caller_audio;
    legs.emplace_back().channel = c.id;
    legs.back().uuid = q("data");
    emit("StasisStart",
         {{"args", json::array{json::string(q("data"))}}, {"channel", channel_json(c)}});
    const json::object body = channel_json(c);
    const std::string id = c.id;
    channels[id] = std::move(c);
    asio::co_spawn(io, send_audio(leg, id), asio::detached);
    asio::co_spawn(io, read_audio(leg, id), asio::detached);
    co_return reply(req, http::status::ok, body);
  }

  /// The caller's audio, 20 ms frames, while the leg is bridged with another channel (Asterisk
  /// only sends what the bridge's other side produces).
  awaitable<void> send_audio(std::shared_ptr<Leg> leg, std::string id) {
    std::size_t sample = 0;
    auto next = std::chrono::steady_clock::now();
    std::array<std::uint8_t, 3 + kFrameBytes> frame{0x12, kFrameBytes >> 8, kFrameBytes & 0xff};
    while (!leg->closed) {
      next += std::chrono::milliseconds(20);
      leg->timer.expires_at(next);
      co_await leg->timer.async_wait(kTuple);
      if (leg->closed) break;
      {
        std::lock_guard lock(mu);
        auto it = channels.find(id);
        if (it == channels.end() || it->second.bridge.empty() ||
            bridges[it->second.bridge].size() < 2) {
          continue;
        }
        for (std::size_t i = 0; i < kFrameBytes / 2; ++i, ++sample) {
          std::int16_t v = 0;
          if (!leg->audio) {
            v = tone(sample);
          } else if (sample < leg->audio->size()) {
            v = (*leg->audio)[sample];
          }
          frame[3 + 2 * i] = static_cast<std::uint8_t>(v & 0xff);
          frame[4 + 2 * i] = static_cast<std::uint8_t>((v >> 8) & 0xff);
        }
        ++legs[leg->index].frames_sent;
      }
      auto [ec, n] = co_await asio::async_write(leg->socket, asio::buffer(frame), kTuple);
      if (ec) break;
    }
  }

  /// What voxbridge sends back; its hangup (0x00) or close ends the media channel as
  /// chan_audiosocket does: StasisEnd and ChannelDestroyed with cause 0.
  awaitable<void> read_audio(std::shared_ptr<Leg> leg, std::string id) {
    std::array<std::uint8_t, 3> header{};
    std::vector<std::uint8_t> payload;
    for (;;) {
      auto [ec, n] = co_await asio::async_read(leg->socket, asio::buffer(header), kTuple);
      if (ec) break;
      payload.resize((std::size_t{header[1]} << 8) | header[2]);
      std::tie(ec, n) = co_await asio::async_read(leg->socket, asio::buffer(payload), kTuple);
      if (ec) break;
      std::lock_guard lock(mu);
      MediaLeg& m = legs[leg->index];
      if (header[0] == 0x00) {
        m.hangup_received = true;
        break;
      }
      if (static_cast<audiosocket::Kind>(header[0]) != audiosocket::Kind::slin16) {
        if (audiosocket::is_audio(static_cast<audiosocket::Kind>(header[0]))) {
          ++m.other_audio_frames;
        }
      } else {
        ++m.frames_received;
        m.bytes_received += payload.size();
        for (std::size_t i = 0; i + 1 < payload.size() && m.received.size() < kMaxRecorded;
             i += 2) {
          m.received.push_back(static_cast<std::int16_t>(payload[i] | (payload[i + 1] << 8)));
        }
      }
    }
    std::lock_guard lock(mu);
    if (leg->closed) co_return;  // hung up over REST: already gone
    close_leg(*leg);
    end_channel(id, 0, 0);
  }

  /// POST /channels: an outbound call into the app; answered or failed a moment later.
  Response originate(const http::request<http::string_body>& req, const Request& r) {  // under mu
    if (r.query.count("endpoint") == 0) {
      return error(req, http::status::bad_request, "Endpoint must be specified");
    }
    Channel c;
    c.id = r.query.count("channelId") ? r.query.at("channelId") : new_id();
    if (channels.count(c.id) != 0) {
      return error(req, http::status::conflict, "Channel with given unique ID already exists");
    }
    c.name = r.query.at("endpoint") + "-00000001";
    c.state = "Down";
    c.context = "default";
    c.exten = "s";
    c.in_stasis = false;
    c.app_data = app + "," + (r.query.count("appArgs") ? r.query.at("appArgs") : "");
    boost::system::error_code ec;
    const json::value body = r.body.empty() ? json::value() : json::parse(r.body, ec);
    if (ec) return error(req, http::status::bad_request, "Invalid JSON body");
    if (const auto* v = body.is_object() ? body.as_object().if_contains("variables") : nullptr;
        v != nullptr && v->is_object()) {
      for (const auto& [k, val] : v->as_object()) {
        if (val.is_string()) c.vars[k] = std::string(val.as_string());
      }
    }
    const json::object out = channel_json(c);
    const std::string id = c.id;
    const std::string args = r.query.count("appArgs") ? r.query.at("appArgs") : "";
    channels[id] = std::move(c);
    auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(30));
    timer->async_wait([this, timer, id, args, cause = originate_cause](auto) {
      std::lock_guard lock(mu);
      auto it = channels.find(id);
      if (it == channels.end()) return;
      if (cause != 0) {
        end_channel(id, cause, 0);
        return;
      }
      it->second.state = "Up";
      it->second.in_stasis = true;
      emit("StasisStart",
           {{"args", json::array{json::string(args)}}, {"channel", channel_json(it->second)}});
    });
    return reply(req, http::status::ok, out);
  }
};

// --- the test API -------------------------------------------------------------------------------

FakeAri::FakeAri(std::string username, std::string password, std::string app, bool tls)
    : impl_(std::make_unique<Impl>(std::move(username), std::move(password), std::move(app), tls)) {
  port_ = impl_->acceptor.local_endpoint().port();
  if (tls) {
    ca_file_ = (std::filesystem::temp_directory_path() /
                ("vb-fake-ari-ca-" + std::to_string(port_) + ".pem"))
                   .string();
    std::ofstream(ca_file_) << impl_->certificate;
  }
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([io = &impl_->io] {
    auto work = asio::make_work_guard(*io);
    io->run();
  });
}

FakeAri::~FakeAri() {
  impl_->sync([this] {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->drop_connections();
    std::lock_guard lock(impl_->mu);
    for (auto& [id, c] : impl_->channels) {
      if (c.leg) impl_->close_leg(*c.leg);
    }
  });
  impl_->io.stop();
  impl_->thread.join();
  if (!ca_file_.empty()) std::filesystem::remove(ca_file_);
}

std::string FakeAri::start_call(const std::string& caller_number, const std::string& exten,
                                const std::map<std::string, std::string>& vars) {
  return impl_->sync([&] {
    std::lock_guard lock(impl_->mu);
    Channel c;
    c.id = impl_->new_id();
    c.name = "PJSIP/trunk-0000" + std::to_string(impl_->next_id);
    c.state = "Ring";
    c.number = caller_number;
    c.context = "from-trunk";
    c.exten = exten;
    c.app_data = impl_->app;
    c.vars = vars;
    impl_->emit("StasisStart", {{"args", json::array{}}, {"channel", impl_->channel_json(c)}});
    const std::string id = c.id;
    impl_->channels[id] = std::move(c);
    return id;
  });
}

void FakeAri::hangup_caller(const std::string& id) {
  impl_->sync([&] {
    std::lock_guard lock(impl_->mu);
    impl_->end_channel(id, 16, 16);
  });
}

void FakeAri::caller_dtmf(const std::string& id, char digit) {
  impl_->sync([&] {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->channels.find(id);
    if (it == impl_->channels.end()) return;
    impl_->emit("ChannelDtmfReceived", {{"digit", std::string(1, digit)},
                                        {"duration_ms", 100},
                                        {"channel", impl_->channel_json(it->second)}});
    if (it->second.bridge.empty()) return;
    for (const auto& peer : impl_->bridges[it->second.bridge]) {
      auto& leg = impl_->channels.at(peer).leg;
      if (!leg || leg->closed) continue;
      auto msg = std::make_shared<std::array<std::uint8_t, 4>>(
          std::array<std::uint8_t, 4>{0x03, 0x00, 0x01, static_cast<std::uint8_t>(digit)});
      asio::async_write(leg->socket, asio::buffer(*msg), [msg](auto, auto) {});
    }
  });
}

void FakeAri::drop_connections() {
  impl_->sync([this] { impl_->drop_connections(); });
}

void FakeAri::set_caller_audio(std::vector<std::int16_t> samples) {
  std::lock_guard lock(impl_->mu);
  impl_->caller_audio = samples.empty()
                            ? nullptr
                            : std::make_shared<const std::vector<std::int16_t>>(std::move(samples));
}

std::int16_t FakeAri::tone(std::size_t i) {
  return static_cast<std::int16_t>(
      std::lround(8000 * std::sin(2 * std::numbers::pi * 440.0 * static_cast<double>(i) / 16000)));
}

void FakeAri::refuse_action(const std::string& action) {
  std::lock_guard lock(impl_->mu);
  impl_->refused_actions.insert(action);
}

void FakeAri::set_originate_cause(int cause) {
  std::lock_guard lock(impl_->mu);
  impl_->originate_cause = cause;
}

std::size_t FakeAri::live_channels() const {
  return impl_->locked([&] { return impl_->channels.size(); });
}
std::size_t FakeAri::live_bridges() const {
  return impl_->locked([&] { return impl_->bridges.size(); });
}
int FakeAri::websocket_connects() const {
  return impl_->locked([&] { return impl_->ws_connects; });
}
int FakeAri::tls_failures() const {
  return impl_->locked([&] { return impl_->tls_failures; });
}
std::vector<FakeAri::Request> FakeAri::requests() const {
  return impl_->locked([&] { return impl_->log; });
}
std::vector<FakeAri::MediaLeg> FakeAri::media_legs() const {
  return impl_->locked([&] { return impl_->legs; });
}

std::optional<FakeAri::Request> FakeAri::find_request(const std::string& method,
                                                      const std::string& prefix) const {
  for (auto& r : requests()) {
    if (r.method == method && r.path.rfind(prefix, 0) == 0) return r;
  }
  return std::nullopt;
}

std::size_t FakeAri::count_requests(const std::string& method, const std::string& prefix) const {
  std::size_t n = 0;
  for (const auto& r : requests()) n += r.method == method && r.path.rfind(prefix, 0) == 0;
  return n;
}

bool FakeAri::wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) const {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace voxbridge::testing
