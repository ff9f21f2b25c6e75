#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>

#include "voxbridge/events/call_event.hpp"
#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/net/error_text.hpp"
#include "voxbridge/net/io_pool.hpp"
#include "voxbridge/net/tls_client.hpp"
#include "voxbridge/net/url.hpp"
#include "voxbridge/tools/tools.hpp"

namespace voxbridge::tools {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

/// How a tool call ended, as voxbridge_tool_calls_total{outcome} says it.
enum class Outcome { ok, http_error, timeout, failed, too_large, refused, kCount };
constexpr std::array<const char*, static_cast<std::size_t>(Outcome::kCount)> kOutcomeNames = {
    "ok", "http_error", "timeout", "failed", "too_large", "refused"};

/// The excerpt of a non-2xx body in the error result.
constexpr std::size_t kExcerptBytes = 200;
/// What the `tool` event keeps of the arguments and of the output.
constexpr std::size_t kEventTextBytes = 1024;
/// The response's status line and headers.
constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;

struct Answer {
  Outcome outcome = Outcome::failed;
  std::string output;
  std::int64_t bytes = 0;  // of the response body
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// A header value from outside (caller ID, Asterisk variables): one line, whatever it holds.
std::string header_safe(std::string_view v) {
  std::string out(v.substr(0, 1024));
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

/// `s` cut to at most `max` bytes without splitting a UTF-8 sequence, then made valid UTF-8.
std::string excerpt(std::string_view s, std::size_t max) {
  std::size_t n = std::min(s.size(), max);
  if (n < s.size()) {
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  }
  return events::valid_utf8(s.substr(0, n));
}

/// An argument as text for a URL: a string as it is, a number or boolean as JSON writes it.
bool argument_text(const json::value& v, std::string& out) {
  if (v.is_string()) {
    out = std::string(v.as_string());
    return true;
  }
  if (v.is_number() || v.is_bool()) {
    out = json::serialize(v);
    return true;
  }
  return false;
}

/// The tool's url with each {NAME} replaced by argument NAME, percent-encoded; false and `why`
/// (for the model) when an argument is missing or cannot fill it.
bool fill_url(const std::string& url, const json::object& args, std::string& out,
              std::string& why) {
  out.clear();
  for (std::size_t i = 0; i < url.size(); ++i) {
    if (url[i] != '{') {
      out += url[i];
      continue;
    }
    const auto e = url.find('}', i);  // config checked the braces
    const std::string name = url.substr(i + 1, e - i - 1);
    const auto* v = args.if_contains(name);
    std::string text;
    if (v == nullptr) {
      why = "the argument '" + name + "' is missing";
      return false;
    }
    if (!argument_text(*v, text)) {
      why = "the argument '" + name + "' must be a string or a number";
      return false;
    }
    if (text.empty() || text == "." || text == "..") {
      why = "the argument '" + name + "' cannot be empty, '.' or '..'";
      return false;
    }
    out += percent_encode(text);
    i = e;
  }
  return true;
}

/// One [tool-NAME], prepared; shared by every call (the counters are atomics or under `mu`).
struct Tool {
  ToolOptions o;
  common::v1::ToolDefinition def;
  bool https = false;
  std::unique_ptr<asio::ssl::context> tls;  // https only
  std::string allowed_host;                 // lower case
  agent::CallTools::Filler filler;
  std::atomic<std::size_t> running{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Outcome::kCount)> outcomes{};

  std::mutex mu;                         // guards the two below
  std::deque<Clock::time_point> recent;  // requests started in the last minute
  metrics::Histogram latency;            // of the requests made (written under mu)

  void count(Outcome what) { outcomes[static_cast<std::size_t>(what)].fetch_add(1); }

  /// Takes a place in the per-minute window; false if it is full.
  bool take_rate(Clock::time_point now) {
    std::lock_guard lock(mu);
    while (!recent.empty() && now - recent.front() >= std::chrono::minutes(1)) recent.pop_front();
    if (recent.size() >= o.max_per_minute) return false;
    recent.push_back(now);
    return true;
  }
};

/// What a call's requests carry of it.
struct CallFacts {
  std::string uuid, caller_number, caller_name, called_number;
  std::map<std::string, std::string> variables;  // VB_* only
};

/// One request's connection, on the runner thread: what stop() cancels.
struct Conn {
  explicit Conn(asio::io_context& io) : resolver(io), stream(io), watchdog(io) {}
  tcp::resolver resolver;
  beast::tcp_stream stream;
  asio::steady_timer watchdog;  // bounds name resolution
  bool cancelled = false;
  void cancel() {
    cancelled = true;
    resolver.cancel();
    watchdog.cancel();
    stream.cancel();
    boost::system::error_code ec;
    stream.socket().close(ec);
  }
};

/// The requests of one call in flight; on the call's runner thread only.
struct Flights {
  std::vector<std::weak_ptr<Conn>> conns;
  bool stopped = false;
  void cancel_all() {
    stopped = true;
    for (auto& w : conns) {
      if (auto c = w.lock()) c->cancel();
    }
    conns.clear();
  }
};

}  // namespace

struct ToolRunner::Impl {
  explicit Impl(RunnerOptions o) : pool(std::max<std::size_t>(1, o.threads)) {
    std::map<std::string, std::shared_ptr<const std::vector<std::int16_t>>> spoken;
    std::map<std::string, std::shared_ptr<Offer>> building;
    for (auto& t : o.tools) {
      auto tool = std::make_unique<Tool>();
      tool->o = t;
      tool->def.set_name(t.name);
      tool->def.set_description(t.description);
      tool->def.set_parameters_json(t.parameters_json);
      tool->https = t.url.rfind("https://", 0) == 0;
      tool->allowed_host = lower(t.allowed_host);
      if (tool->allowed_host.empty()) {
        // Config refuses a placeholder in the host without allowed_host: the host is as written.
        const auto start = t.url.find("://") + 3;
        tool->allowed_host =
            lower(net::parse_http_url(t.url.substr(0, t.url.find_first_of("/?#", start))).host);
      }
      if (tool->https) {
        try {
          tool->tls = std::make_unique<asio::ssl::context>(net::tls_client_context({t.ca_file}));
        } catch (const std::runtime_error& e) {
          throw std::runtime_error("tool " + t.name + ": " + e.what());
        }
      }
      tool->filler.after = t.filler_after;
      tool->filler.phrase = t.filler;
      tool->filler.moh_class = t.filler_moh;
      if (o.voice && t.filler_after.count() > 0 && !t.filler.empty()) {
        auto& audio = spoken[t.filler];
        if (!audio) audio = std::make_shared<const std::vector<std::int16_t>>(o.voice(t.filler));
        tool->filler.audio = audio;
      }
      for (const auto& a : t.agents) {
        auto& offer = building[a];
        if (!offer) offer = std::make_shared<Offer>();
        offer->tools.push_back(tool.get());
        offer->definitions.push_back(tool->def);
      }
      tools.push_back(std::move(tool));
    }
    for (auto& [agent, offer] : building) offers[agent] = std::move(offer);
  }

  /// What one agent offers.
  struct Offer {
    std::vector<Tool*> tools;
    std::vector<common::v1::ToolDefinition> definitions;
  };

  // Declared before `pool`: the requests' coroutines, destroyed with the pool's io_contexts,
  // may still point to them.
  std::vector<std::unique_ptr<Tool>> tools;
  std::map<std::string, std::shared_ptr<const Offer>> offers;  // by agent name
  net::IoPool pool;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stopped{false};
  std::mutex start_mu;
  bool started = false;
};

namespace {

/// One request, from the call's thread to the runner's and back.
struct Job {
  Tool* tool = nullptr;
  std::string arguments;
  std::shared_ptr<const CallFacts> facts;
  std::shared_ptr<Flights> flights;
  std::function<void(Answer)> reply;  // posts the answer back to the call
  bool requested = false;             // a request went out (its latency is counted)
};

http::request<http::string_body> make_request(const Tool& t, const net::HttpUrl& url,
                                              const json::object& args, const CallFacts& f) {
  const bool get = t.o.method == "GET";
  std::string target = url.target;
  if (get && !args.empty()) {
    char sep = target.find('?') == std::string::npos ? '?' : '&';
    for (const auto& [k, v] : args) {
      std::string text;
      if (!argument_text(v, text)) text = json::serialize(v);
      target += sep;
      target += percent_encode(k);
      target += '=';
      target += percent_encode(text);
      sep = '&';
    }
  }
  http::request<http::string_body> req{get ? http::verb::get : http::verb::post, target, 11};
  req.set(http::field::host, url.authority);
  req.set(http::field::user_agent, "voxbridge");
  req.set("X-Voxbridge-Call-Id", header_safe(f.uuid));
  req.set("X-Voxbridge-Tool", t.o.name);
  if (get) {
    req.set("X-Voxbridge-Caller-Number", header_safe(f.caller_number));
    req.set("X-Voxbridge-Caller-Name", header_safe(f.caller_name));
    req.set("X-Voxbridge-Called-Number", header_safe(f.called_number));
    json::object vars;
    for (const auto& [k, v] : f.variables) vars[k] = events::valid_utf8(v);
    req.set("X-Voxbridge-Variables", json::serialize(vars));  // JSON escapes control bytes
  } else {
    json::object call;
    call["uuid"] = f.uuid;
    call["caller_number"] = events::valid_utf8(f.caller_number);
    call["caller_name"] = events::valid_utf8(f.caller_name);
    call["called_number"] = events::valid_utf8(f.called_number);
    json::object vars;
    for (const auto& [k, v] : f.variables) vars[k] = events::valid_utf8(v);
    call["variables"] = std::move(vars);
    json::object body;
    body["tool"] = t.o.name;
    body["arguments"] = args;
    body["call"] = std::move(call);
    req.set(http::field::content_type, "application/json");
    req.body() = json::serialize(body);
  }
  for (const auto& [name, value] : t.o.headers) req.set(name, value);
  req.keep_alive(false);  // a connection per request
  req.prepare_payload();
  return req;
}

template <class Stream>
awaitable<Answer> exchange(Stream& s, const Tool& t, const http::request<http::string_body>& req) {
  co_await http::async_write(s, req, use_awaitable);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(t.o.max_response_bytes);
  parser.header_limit(kMaxHeaderBytes);
  auto [ec, n] = co_await http::async_read(s, buf, parser, asio::as_tuple(use_awaitable));
  (void)n;
  const unsigned status = parser.is_header_done() ? parser.get().result_int() : 0;
  const bool two_xx = status >= 200 && status < 300;
  if (ec == http::error::body_limit) {
    if (two_xx) {
      co_return Answer{Outcome::too_large,
                       "the tool's response is larger than " +
                           std::to_string(t.o.max_response_bytes) + " bytes (max_response_bytes)",
                       0};
    }
    co_return Answer{Outcome::http_error, "HTTP " + std::to_string(status) + " from the tool", 0};
  }
  // A TLS peer that closes without close_notify after a body delimited by the close.
  const bool truncated_end = ec == asio::ssl::error::stream_truncated && parser.is_header_done() &&
                             !parser.content_length();
  if (ec && !truncated_end) throw boost::system::system_error(ec);
  std::string& body = parser.get().body();
  const auto bytes = static_cast<std::int64_t>(body.size());
  if (two_xx) co_return Answer{Outcome::ok, events::valid_utf8(body), bytes};
  std::string why = "HTTP " + std::to_string(status) + " from the tool";
  if (!body.empty()) why += ": " + excerpt(body, kExcerptBytes);
  if (status >= 300 && status < 400) why += " (redirects are not followed)";
  co_return Answer{Outcome::http_error, std::move(why), bytes};
}

/// The request of `job` on a connection of its own, within the tool's timeout. Never throws.
awaitable<Answer> attempt(Job& job, Conn& conn) {
  const Tool& t = *job.tool;
  boost::system::error_code ec;
  const json::value parsed = json::parse(job.arguments, ec);
  if (ec || !parsed.is_object()) {
    co_return Answer{Outcome::refused, "the arguments are not a JSON object", 0};
  }
  const json::object& args = parsed.as_object();
  std::string url_text, why;
  if (!fill_url(t.o.url, args, url_text, why)) co_return Answer{Outcome::refused, why, 0};
  net::HttpUrl url;
  try {
    url = net::parse_http_url(url_text);
  } catch (const std::invalid_argument&) {
    co_return Answer{Outcome::refused, "these arguments do not make a valid URL for the tool", 0};
  }
  if (lower(url.host) != t.allowed_host || url.tls != t.https) {
    spdlog::warn("call uuid={}: tool {}: refused: its arguments would reach host {}, not {}",
                 job.facts->uuid, t.o.name, logtext::log_text(url.host, 100), t.allowed_host);
    co_return Answer{Outcome::refused, "these arguments would make the tool reach another host", 0};
  }
  const auto req = make_request(t, url, args, *job.facts);
  const auto deadline = Clock::now() + t.o.timeout;
  const std::string no_answer =
      "the tool did not answer within " + std::to_string(t.o.timeout.count()) + " ms";
  job.requested = true;
  conn.watchdog.expires_at(deadline);
  conn.watchdog.async_wait([&conn](boost::system::error_code e) {
    if (!e) conn.resolver.cancel();
  });
  auto [rec, endpoints] =
      co_await conn.resolver.async_resolve(url.host, url.port, asio::as_tuple(use_awaitable));
  conn.watchdog.cancel();
  if (conn.cancelled) co_return Answer{Outcome::failed, "cancelled: the call ended", 0};
  if (rec) {
    co_return Answer{
        Clock::now() >= deadline ? Outcome::timeout : Outcome::failed,
        Clock::now() >= deadline ? no_answer : "cannot resolve the tool's host: " + rec.message(),
        0};
  }
  conn.stream.expires_at(deadline);  // connect, TLS, request and answer
  try {
    try {
      co_await conn.stream.async_connect(endpoints, use_awaitable);
    } catch (const boost::system::system_error& e) {
      if (e.code() == beast::error::timeout) throw;
      co_return Answer{Outcome::failed, "cannot reach the tool: " + e.code().message(), 0};
    }
    if (!t.tls) co_return co_await exchange(conn.stream, t, req);
    asio::ssl::stream<beast::tcp_stream&> tls(conn.stream, *t.tls);
    net::tls_client_prepare(tls.native_handle(), url.host, true);
    auto [hec] =
        co_await tls.async_handshake(asio::ssl::stream_base::client, asio::as_tuple(use_awaitable));
    if (hec == beast::error::timeout) co_return Answer{Outcome::timeout, no_answer, 0};
    if (hec) {
      const std::string failure = net::tls_verify_failure(tls.native_handle());
      co_return Answer{Outcome::failed,
                       "TLS with the tool failed: " + (failure.empty() ? hec.message() : failure),
                       0};
    }
    co_return co_await exchange(tls, t, req);
  } catch (const boost::system::system_error& e) {
    if (conn.cancelled) co_return Answer{Outcome::failed, "cancelled: the call ended", 0};
    if (e.code() == beast::error::timeout) co_return Answer{Outcome::timeout, no_answer, 0};
    co_return Answer{Outcome::failed, "the tool's answer failed: " + e.code().message(), 0};
  } catch (const std::exception& e) {  // TLS: the host's name refused
    co_return Answer{Outcome::failed, std::string("TLS with the tool failed: ") + e.what(), 0};
  }
}

/// Runs `job` on the runner thread, then counts it and posts its answer back.
awaitable<void> perform(std::shared_ptr<Job> job, asio::io_context& io) {
  Tool& t = *job->tool;
  const auto started = Clock::now();
  Answer a;
  if (job->flights->stopped) {
    a = Answer{Outcome::failed, "cancelled: the call ended", 0};
  } else {
    auto conn = std::make_shared<Conn>(io);
    job->flights->conns.push_back(conn);
    a = co_await attempt(*job, *conn);
    std::erase_if(job->flights->conns,
                  [&](const std::weak_ptr<Conn>& w) { return w.expired() || w.lock() == conn; });
  }
  t.running.fetch_sub(1);
  t.count(a.outcome);
  if (job->requested) {
    std::lock_guard lock(t.mu);
    t.latency.observe(Clock::now() - started);
  }
  job->reply(std::move(a));
}

/// One call's handle (see tools.hpp).
class CallHandle final : public agent::CallTools, public std::enable_shared_from_this<CallHandle> {
 public:
  CallHandle(std::shared_ptr<ToolRunner::Impl> impl,
             std::shared_ptr<const ToolRunner::Impl::Offer> offer,
             std::shared_ptr<const CallFacts> facts, agent::CallControl::Poster post,
             std::function<void(events::Event)> transcript, asio::io_context& io)
      : impl_(std::move(impl)),
        offer_(std::move(offer)),
        facts_(std::move(facts)),
        post_(std::move(post)),
        transcript_(std::move(transcript)),
        io_(io) {}
  ~CallHandle() override {
    if (!stopped_) asio::post(io_, [f = flights_] { f->cancel_all(); });
  }

  const std::vector<common::v1::ToolDefinition>& definitions() const override {
    return offer_->definitions;
  }

  void run(const common::v1::ToolCall& call,
           std::function<void(const common::v1::ToolResult&)> done) override {
    if (stopped_) return;
    const std::uint64_t seq = ++seq_;
    Pending& p = pending_[seq];
    p.done = std::move(done);
    p.id = call.id();
    p.name = call.name();
    p.arguments = logtext::log_text(call.arguments_json(), kEventTextBytes);
    p.started = Clock::now();
    Tool* t = find(call.name());
    if (t == nullptr) {
      return refuse(
          seq, nullptr,
          "tool '" + logtext::log_text(call.name(), 64) + "' is not available on this call");
    }
    if (impl_->stopped.load()) return refuse(seq, t, "the tools are stopped (server shutdown)");
    if (call.arguments_json().size() > kMaxArgumentsBytes) {
      return refuse(
          seq, t, "the arguments are larger than " + std::to_string(kMaxArgumentsBytes) + " bytes");
    }
    std::size_t& used = used_[t];
    if (used >= t->o.max_per_call) {
      return refuse(seq, t,
                    "tool '" + t->o.name + "' was used " + std::to_string(used) +
                        " times on this call, its limit (max_per_call)");
    }
    if (t->running.fetch_add(1) >= t->o.max_concurrent) {
      t->running.fetch_sub(1);
      return refuse(seq, t,
                    "tool '" + t->o.name + "' is busy (" + std::to_string(t->o.max_concurrent) +
                        " requests at once, max_concurrent); try again later");
    }
    if (!t->take_rate(p.started)) {
      t->running.fetch_sub(1);
      return refuse(seq, t,
                    "tool '" + t->o.name + "' was used " + std::to_string(t->o.max_per_minute) +
                        " times in the last minute (max_per_minute); try again later");
    }
    ++used;
    auto job = std::make_shared<Job>();
    job->tool = t;
    job->arguments = call.arguments_json();
    job->facts = facts_;
    job->flights = flights_;
    job->reply = [w = weak_from_this(), post = post_, seq](Answer a) {
      post([w, seq, a = std::move(a)]() mutable {
        if (auto h = w.lock()) h->finish(seq, std::move(a));
      });
    };
    asio::co_spawn(io_, perform(job, io_), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("tools: a request failed: {}", net::error_text(ex));
      }
    });
  }

  Filler filler(const std::string& name) const override {
    const Tool* t = find(name);
    return t == nullptr ? Filler{} : t->filler;
  }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    pending_.clear();  // the results still owed are dropped
    asio::post(io_, [f = flights_] { f->cancel_all(); });
  }

 private:
  struct Pending {
    std::function<void(const common::v1::ToolResult&)> done;
    std::string id, name, arguments;
    Clock::time_point started;
  };

  Tool* find(const std::string& name) const {
    for (Tool* t : offer_->tools) {
      if (t->o.name == name) return t;
    }
    return nullptr;
  }

  /// Refused without a request: the answer comes back like any other, posted (never inside
  /// run(), so an agent is not re-entered).
  void refuse(std::uint64_t seq, Tool* t, std::string why) {
    if (t != nullptr) t->count(Outcome::refused);
    spdlog::info("call uuid={}: tool {}: refused: {}", facts_->uuid,
                 logtext::log_text(pending_[seq].name, 64), why);
    post_([w = weak_from_this(), seq, why = std::move(why)]() mutable {
      if (auto h = w.lock()) h->finish(seq, Answer{Outcome::refused, std::move(why), 0});
    });
  }

  void finish(std::uint64_t seq, Answer a) {
    const auto it = pending_.find(seq);
    if (stopped_ || it == pending_.end()) return;
    Pending p = std::move(it->second);
    pending_.erase(it);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - p.started).count();
    const bool ok = a.outcome == Outcome::ok;
    if (!ok && a.outcome != Outcome::refused) {
      spdlog::info("call uuid={}: tool {}: {} ({} ms)", facts_->uuid, logtext::log_text(p.name, 64),
                   logtext::log_text(a.output, kExcerptBytes + 64), ms);
    }
    if (transcript_) {
      events::ToolFields f;
      f.name = logtext::log_text(p.name, 64);  // the model's word: bounded like the rest
      f.id = logtext::log_text(p.id, 64);
      f.ok = ok;
      f.duration_ms = ms;
      f.bytes = a.bytes;
      f.arguments = p.arguments;
      f.output = logtext::log_text(a.output, kEventTextBytes);
      transcript_(events::tool(f));
    }
    common::v1::ToolResult r;
    r.set_id(events::valid_utf8(p.id));
    r.set_name(events::valid_utf8(p.name));
    r.set_ok(ok);
    r.set_output(std::move(a.output));
    p.done(r);
  }

  std::shared_ptr<ToolRunner::Impl> impl_;
  std::shared_ptr<const ToolRunner::Impl::Offer> offer_;
  std::shared_ptr<const CallFacts> facts_;
  agent::CallControl::Poster post_;
  std::function<void(events::Event)> transcript_;
  asio::io_context& io_;  // the runner thread of this call's requests
  std::shared_ptr<Flights> flights_ = std::make_shared<Flights>();  // used on io_ only
  std::map<std::uint64_t, Pending> pending_;
  std::map<const Tool*, std::size_t> used_;
  std::uint64_t seq_ = 0;
  bool stopped_ = false;
};

}  // namespace

ToolRunner::ToolRunner(RunnerOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

ToolRunner::~ToolRunner() {
  stop();
}

void ToolRunner::start() {
  std::lock_guard lock(impl_->start_mu);
  if (impl_->started || impl_->stopped.load()) return;
  impl_->started = true;
  impl_->pool.start();
  for (const auto& t : impl_->tools) {
    spdlog::info("tool {}: {} {}://{} for {}", t->o.name, t->o.method, t->https ? "https" : "http",
                 t->allowed_host, [&] {
                   std::string a;
                   for (const auto& n : t->o.agents) a += (a.empty() ? "" : ", ") + n;
                   return a;
                 }());
  }
}

void ToolRunner::stop() {
  if (impl_->stopped.exchange(true)) return;
  impl_->pool.stop_now();
}

bool ToolRunner::offers(const std::string& agent) const {
  return impl_->offers.count(agent) != 0;
}

std::shared_ptr<agent::CallTools> ToolRunner::for_call(const std::string& agent,
                                                       const agent::CallInfo& info,
                                                       agent::CallControl::Poster post) {
  const auto it = impl_->offers.find(agent);
  if (it == impl_->offers.end()) return nullptr;
  auto facts = std::make_shared<CallFacts>();
  facts->uuid = info.uuid;
  facts->caller_number = info.caller_number;
  facts->caller_name = info.caller_name;
  facts->called_number = info.called_number;
  for (const auto& [k, v] : info.variables) {
    if (k.rfind("VB_", 0) == 0) facts->variables.emplace(k, v);
  }
  auto& io = impl_->pool.context(impl_->next.fetch_add(1) % impl_->pool.size());
  return std::make_shared<CallHandle>(impl_, it->second, std::move(facts), std::move(post),
                                      info.transcript, io);
}

void ToolRunner::write_metrics(metrics::Writer& w) const {
  w.family("voxbridge_tool_calls_total", "counter",
           "Business tool calls by tool and outcome (ok, http_error, timeout, failed, "
           "too_large, refused).");
  for (const auto& t : impl_->tools) {
    for (std::size_t i = 0; i < kOutcomeNames.size(); ++i) {
      w.sample("voxbridge_tool_calls_total", {{"tool", t->o.name}, {"outcome", kOutcomeNames[i]}},
               static_cast<double>(t->outcomes[i].load()));
    }
  }
  w.family("voxbridge_tool_duration_seconds", "histogram",
           "Business tool requests made: from the call's request to the tool's answer.");
  for (const auto& t : impl_->tools) {
    metrics::Histogram::Snapshot s;
    {
      std::lock_guard lock(t->mu);
      s.merge(t->latency);
    }
    w.histogram("voxbridge_tool_duration_seconds", {{"tool", t->o.name}}, s);
  }
}

}  // namespace voxbridge::tools
