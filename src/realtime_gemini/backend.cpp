#include "voxbridge/realtime_gemini/backend.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <deque>
#include <optional>
#include <stdexcept>
#include <thread>

#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/net/io_pool.hpp"
#include "voxbridge/net/tls_client.hpp"
#include "voxbridge/net/ws_client.hpp"
#include "voxbridge/realtime_gemini/conversation.hpp"

namespace voxbridge::realtime_gemini {

namespace asio = boost::asio;
using providers::StreamStatus;

namespace {

/// A server message can carry a few seconds of audio as base64.
constexpr std::size_t kMaxServerMessageBytes = 4u << 20;
/// The model's audio held for the call while it has paused reads.
constexpr std::size_t kMaxHeldResponses = 1500;

std::string query_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

std::string session_url(const GeminiOptions& o) {
  return o.key_in_query ? o.url + "?key=" + query_escape(o.api_key) : o.url;
}

struct GeminiBackend::Shared {
  std::shared_ptr<const GeminiOptions> options;
  int quality = 2;
  std::shared_ptr<asio::ssl::context> tls;  // null for ws:// (tests, a local proxy)
  BackendCounters counters;
  std::atomic<std::size_t> sessions{0};
  std::atomic<std::size_t> next_thread{0};
  std::unique_ptr<net::IoPool> pool;
};

namespace {

class Stream final : public providers::AgentStream, public std::enable_shared_from_this<Stream> {
 public:
  Stream(std::shared_ptr<GeminiBackend::Shared> shared, asio::io_context& io,
         providers::Poster post, providers::AgentEvents events, std::size_t max_queued)
      : sh_(std::move(shared)),
        io_(io),
        post_(std::move(post)),
        ev_(std::move(events)),
        max_queued_(max_queued),
        cap_timer_(io) {}

  ~Stream() override { sh_->sessions.fetch_sub(1); }

  /// On the call's thread, once, right after construction.
  void start(agent::v1::AgentConfig config) {
    asio::post(io_, [self = shared_from_this(), config = std::move(config)]() mutable {
      self->open(std::move(config));
    });
  }

  // --- the call's thread ---

  bool send(agent::v1::AgentRequest request) override {
    if (finished_.load(std::memory_order_relaxed) ||
        queued_.load(std::memory_order_relaxed) >= max_queued_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      sh_->counters.dropped_messages.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queued_.fetch_add(1, std::memory_order_relaxed);
    asio::post(io_, [self = shared_from_this(), r = std::move(request)]() mutable {
      self->queued_.fetch_sub(1, std::memory_order_relaxed);
      self->handle(r);
    });
    return true;
  }
  void finish() override {
    finished_ = true;
    asio::post(io_, [self = shared_from_this()] { self->close_socket(); });
  }
  void cancel() override {
    finished_ = true;
    asio::post(io_, [self = shared_from_this()] {
      self->closing_ = true;
      if (self->ws_) self->ws_->abort();
      self->end({StreamStatus::kCancelled, "cancelled"});
    });
  }
  void close(std::chrono::milliseconds grace) override {
    // What is queued (an action's result) goes out, then the socket is closed politely
    // (bounded by the client's close handshake limit, well under `grace`).
    (void)grace;
    owner_gone_ = true;
    finished_ = true;
    asio::post(io_, [self = shared_from_this()] { self->close_socket(); });
  }
  void pause_reads() override {
    asio::post(io_, [self = shared_from_this()] { self->paused_ = true; });
  }
  void resume_reads() override {
    asio::post(io_, [self = shared_from_this()] {
      self->paused_ = false;
      while (!self->held_.empty()) {
        self->deliver(std::move(self->held_.front()));
        self->held_.pop_front();
      }
    });
  }
  std::uint64_t dropped() const override { return dropped_.load(std::memory_order_relaxed); }

 private:
  // --- the backend's thread from here on ---

  void open(agent::v1::AgentConfig config) {
    Conversation::Sink sink;
    sink.send = [this](std::string json) {
      if (ws_ && !ws_->send(std::move(json))) {
        // The service does not read what we send (1 MiB waiting): it is as good as gone.
        fail(StreamStatus::kUnavailable, "the service stopped reading (send queue full)");
      }
    };
    sink.respond = [this](agent::v1::AgentResponse r) { deliver(std::move(r)); };
    try {
      conv_.emplace(sh_->options, std::move(config), sh_->quality, std::move(sink));
    } catch (const std::exception& e) {
      end({StreamStatus::kInvalidArgument, e.what()});
      return;
    }
    connect();
  }

  void connect() {
    const GeminiOptions& o = *sh_->options;
    net::WsOptions w;
    w.url = session_url(o);
    if (!o.key_in_query) w.headers.emplace_back("x-goog-api-key", o.api_key);
    w.connect_timeout = o.connect_timeout;
    w.idle_timeout = o.idle_timeout;
    w.max_message_bytes = kMaxServerMessageBytes;
    // Each socket's handlers carry its generation: a replaced socket's late messages and its
    // close are ignored.
    const std::uint64_t gen = ++gen_;
    net::WsHandlers h;
    auto weak = weak_from_this();
    h.open = [weak, gen] {
      if (auto s = weak.lock(); s && s->gen_ == gen) s->on_open();
    };
    h.message = [weak, gen](std::string_view m) {
      if (auto s = weak.lock(); s && s->gen_ == gen) s->on_message(m);
    };
    h.closed = [weak, gen](const net::WsClose& c) {
      if (auto s = weak.lock(); s && s->gen_ == gen) s->on_socket_closed(c);
    };
    try {
      ws_ = net::WsClient::create(io_.get_executor(), sh_->tls, true, std::move(w), std::move(h));
    } catch (const std::exception& e) {
      end({StreamStatus::kInvalidArgument, e.what()});
      return;
    }
    ws_->connect();
  }

  void on_open() {
    if (ended_) return;
    was_open_ = true;
    conv_->opened();
    const auto cap = sh_->options->max_call_duration;
    if (cap.count() > 0 && !cap_armed_) {
      cap_armed_ = true;
      cap_timer_.expires_after(cap);
      cap_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        auto s = weak.lock();
        if (!ec && s && !s->ended_ && s->conv_) s->conv_->end_call("call duration cap reached");
      });
    }
  }

  void on_message(std::string_view m) {
    if (ended_ || !conv_) return;
    std::string why;
    switch (conv_->server_event(m, why)) {
      case Conversation::Verdict::go_on:
        break;
      case Conversation::Verdict::fatal:
        fail(StreamStatus::kUnavailable, why);
        break;
      case Conversation::Verdict::resume:
        resume("the service sent goAway");
        break;
    }
  }

  /// A new socket goes on with the call (the old one, if still open, is closed politely).
  void resume(const std::string& why) {
    if (resumes_ >= sh_->options->max_resumes) {
      fail(StreamStatus::kUnavailable,
           why + ", and the call has resumed " + std::to_string(resumes_) + " times (max_resumes)");
      return;
    }
    ++resumes_;
    sh_->counters.resumptions.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("gemini {}: {}; resuming on a new socket{}", sh_->options->name, why,
                 conv_->resumption_handle().empty() ? " (no handle: a new session)" : "");
    conv_->disconnected();
    if (ws_) ws_->close();  // its handlers are of an older generation from now on
    connect();
  }

  void on_socket_closed(const net::WsClose& c) {
    if (ended_) return;
    if (closing_) {
      end({StreamStatus::kOk, ""});
      return;
    }
    if (c.http_status != 0) {
      std::string why = "the service refused the session: HTTP " + std::to_string(c.http_status);
      if (!c.retry_after.empty()) why += " (retry after " + logtext::log_text(c.retry_after) + ")";
      if (!c.http_body.empty()) why += ": " + logtext::log_text(c.http_body.substr(0, 300));
      fail(c.http_status == 429 ? StreamStatus::kResourceExhausted : StreamStatus::kUnavailable,
           why);
      return;
    }
    // The service ends what it refuses with a close frame: 1007 for a bad setup or message,
    // 1008 for policy (key, quota), 1011 for its own failure. Those end the call; a normal close
    // (1000) or a broken socket mid-call is resumed.
    const bool refused = c.clean && c.code != 1000;
    const std::string what = c.clean ? "the service closed the session (" + std::to_string(c.code) +
                                           " " + logtext::log_text(c.reason) + ")"
                                     : "the socket broke (" + logtext::log_text(c.reason) + ")";
    if (was_open_ && conv_->ready() && !refused && sh_->options->resume) {
      resume(what);
      return;
    }
    fail(c.code == 1008 ? StreamStatus::kResourceExhausted : StreamStatus::kUnavailable,
         was_open_ ? what : "cannot connect: " + logtext::log_text(c.reason));
  }

  void handle(agent::v1::AgentRequest& r) {
    if (ended_ || !conv_) return;
    switch (r.request_case()) {
      case agent::v1::AgentRequest::kAudio:
        conv_->caller_audio(r.audio());
        break;
      case agent::v1::AgentRequest::kEvent:
        conv_->call_event(r.event());
        break;
      default:
        break;
    }
  }

  void close_socket() {
    if (ended_) return;
    closing_ = true;
    cap_timer_.cancel();
    if (ws_) {
      ws_->close();
    } else {
      end({StreamStatus::kOk, ""});
    }
  }

  void fail(int code, const std::string& why) {
    if (ended_) return;
    sh_->counters.sessions_failed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("gemini {}: {}", sh_->options->name, why);
    closing_ = true;
    if (ws_) ws_->abort();
    end({code, why});
  }

  void deliver(agent::v1::AgentResponse r) {
    if (ended_) return;
    if (paused_) {
      if (held_.size() >= kMaxHeldResponses) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      held_.push_back(std::move(r));
      return;
    }
    post_([self = shared_from_this(), r = std::move(r)]() mutable {
      if (!self->owner_gone_ && self->ev_.response) self->ev_.response(r);
    });
  }

  void end(StreamStatus st) {
    if (ended_) return;
    ended_ = true;
    cap_timer_.cancel();
    held_.clear();
    post_([self = shared_from_this(), st = std::move(st)] {
      if (!self->owner_gone_ && self->ev_.closed) self->ev_.closed(st);
    });
  }

  std::shared_ptr<GeminiBackend::Shared> sh_;
  asio::io_context& io_;
  providers::Poster post_;
  providers::AgentEvents ev_;
  std::size_t max_queued_;
  // Touched by the call's thread.
  std::atomic<std::size_t> queued_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<bool> finished_{false};
  std::atomic<bool> owner_gone_{false};
  // The backend's thread.
  std::optional<Conversation> conv_;
  std::shared_ptr<net::WsClient> ws_;
  std::uint64_t gen_ = 0;
  int resumes_ = 0;
  asio::steady_timer cap_timer_;
  std::deque<agent::v1::AgentResponse> held_;
  bool paused_ = false;
  bool was_open_ = false;
  bool closing_ = false;
  bool ended_ = false;
  bool cap_armed_ = false;
};

[[noreturn]] void not_served(const char* what) {
  throw std::runtime_error(
      std::string("a Gemini Live backend serves speech-to-speech agents only, not ") + what);
}

}  // namespace

GeminiBackend::GeminiBackend(GeminiOptions options, int resampler_quality)
    : shared_(std::make_shared<Shared>()) {
  shared_->options = std::make_shared<const GeminiOptions>(std::move(options));
  shared_->quality = resampler_quality;
  if (shared_->options->url.rfind("wss://", 0) == 0) {
    shared_->tls = std::make_shared<asio::ssl::context>(
        net::tls_client_context({shared_->options->ca_file, true}));
  }
  shared_->pool = std::make_unique<net::IoPool>(
      static_cast<std::size_t>(std::max(1, shared_->options->threads)));
  shared_->pool->start();
}

GeminiBackend::~GeminiBackend() {
  // Calls have ended before the server drops its backends; what is left is a socket closing.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (shared_->sessions.load() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  shared_->pool->stop_now();
}

std::shared_ptr<providers::AgentStream> GeminiBackend::open_agent(
    const providers::ProviderTarget& target, const agent::v1::AgentConfig& config,
    providers::Poster post, providers::AgentEvents events, std::size_t max_queued) {
  (void)target;
  const auto max = shared_->options->max_sessions;
  const std::size_t now = shared_->sessions.fetch_add(1) + 1;
  if (max > 0 && now > max) {
    shared_->sessions.fetch_sub(1);
    shared_->counters.sessions_refused.fetch_add(1, std::memory_order_relaxed);
    throw std::runtime_error("gemini " + shared_->options->name + ": all " + std::to_string(max) +
                             " sessions (max_sessions) are in use");
  }
  shared_->counters.sessions_opened.fetch_add(1, std::memory_order_relaxed);
  auto& io = shared_->pool->context(shared_->next_thread.fetch_add(1) % shared_->pool->size());
  auto s = std::make_shared<Stream>(shared_, io, std::move(post), std::move(events), max_queued);
  s->start(config);
  return s;
}

std::shared_ptr<providers::AsrStream> GeminiBackend::open_asr(const providers::ProviderTarget&,
                                                              const asr::v1::RecognitionConfig&,
                                                              providers::Poster,
                                                              providers::AsrEvents, std::size_t) {
  not_served("speech recognition");
}
std::shared_ptr<providers::LlmTurn> GeminiBackend::open_llm(const providers::ProviderTarget&,
                                                            const llm::v1::TurnRequest&,
                                                            providers::Poster,
                                                            providers::LlmEvents) {
  not_served("LLM turns");
}
std::shared_ptr<providers::TtsStream> GeminiBackend::open_tts(const providers::ProviderTarget&,
                                                              const tts::v1::SynthesisConfig&,
                                                              providers::Poster,
                                                              providers::TtsEvents, std::size_t) {
  not_served("speech synthesis");
}

std::size_t GeminiBackend::sessions() const {
  return shared_->sessions.load();
}
const BackendCounters& GeminiBackend::counters() const {
  return shared_->counters;
}
const GeminiOptions& GeminiBackend::options() const {
  return *shared_->options;
}

}  // namespace voxbridge::realtime_gemini
