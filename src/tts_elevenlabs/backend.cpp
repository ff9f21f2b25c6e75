#include "voxbridge/tts_elevenlabs/backend.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "voxbridge/audio/g711.hpp"
#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/net/ws_client.hpp"
#include "voxbridge/tts_elevenlabs/stream_input.hpp"

namespace voxbridge::tts_elevenlabs {

namespace asio = boost::asio;
using providers::StreamStatus;

namespace {

/// An audio message carries well under a second (base64 in JSON with its alignment).
constexpr std::size_t kMaxServerMessageBytes = 2u << 20;
constexpr int kUnauthenticated = 16;
constexpr int kPermissionDenied = 7;

class ReplySocket;

}  // namespace

struct ElevenLabsBackend::State {
  explicit State(ElevenLabsOptions o)
      : options(std::move(o)),
        log_name("elevenlabs " + options.name),
        sessions(log_name, options.url, options.ca_file, options.threads, options.max_sessions,
                 counters) {}
  ElevenLabsOptions options;
  std::string log_name;
  ElevenLabsCounters counters;
  ws_agent::Sessions sessions;
  std::mutex mu;
  std::set<std::weak_ptr<ReplySocket>, std::owner_less<>> open;  // for the destructor
};

namespace {

/// Characters (UTF-8 code points) of `s`: what the service's alignment counts.
std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

/// One reply's socket, on one of the backend's io threads.
class ReplySocket : public std::enable_shared_from_this<ReplySocket> {
 public:
  ReplySocket(std::shared_ptr<ElevenLabsBackend::State> st, asio::io_context& io,
              OutputFormat out_format, std::string socket_url, providers::Poster post,
              providers::TtsEvents events)
      : ex(io.get_executor()),
        st_(std::move(st)),
        format_(std::move(out_format)),
        url_(std::move(socket_url)),
        post_(std::move(post)),
        ev_(std::make_shared<providers::TtsEvents>(std::move(events))) {}
  ~ReplySocket() { st_->sessions.release(); }
  ReplySocket(const ReplySocket&) = delete;
  ReplySocket& operator=(const ReplySocket&) = delete;

  const asio::any_io_executor ex;
  /// Text messages posted by the call and not yet taken by the io thread.
  std::atomic<std::size_t> queued{0};

  // --- the io thread ---

  void start() {
    const auto& o = st_->options;
    net::WsOptions w;
    w.url = url_;
    w.headers.emplace_back("xi-api-key", o.api_key);
    w.connect_timeout = o.connect_timeout;
    w.max_message_bytes = kMaxServerMessageBytes;
    net::WsHandlers h;
    h.open = [] {};
    h.message = [self = shared_from_this()](std::string_view m) { self->on_message(m); };
    h.closed = [self = shared_from_this()](const net::WsClose& c) { self->on_closed(c); };
    try {
      ws_ = net::WsClient::create(ex, st_->sessions.tls(), true, std::move(w), std::move(h));
    } catch (const std::exception& e) {
      return end({StreamStatus::kInvalidArgument, st_->log_name + ": " + e.what()});
    }
    ws_->send(initialize_message(o));  // queued until the socket opens
    ws_->connect();
  }

  void text(std::string t, std::uint64_t chunk_id) {
    queued.fetch_sub(1, std::memory_order_relaxed);
    if (ended_ || closed_input_ || !ws_) return;
    t.resize(std::min(t.size(), kMaxTextBytes));
    // The service counts the characters it speaks, the trailing space we add included.
    const std::size_t n = code_points(t) + (t.empty() || t.back() != ' ' ? 1 : 0);
    chars_sent_ += n;
    chunks_.push_back({chunk_id, chars_sent_});
    st_->counters.characters.fetch_add(n, std::memory_order_relaxed);
    if (!ws_->send(text_message(t))) {
      fail({StreamStatus::kUnavailable, st_->log_name + " is not taking text (send queue full)"});
    }
  }

  void finish() {
    if (ended_ || closed_input_ || !ws_) return;
    closed_input_ = true;
    ws_->send(std::string(kCloseMessage));
  }

  void cancel() {
    if (ended_ && !closing_status_) return;  // its closed event is already on its way
    st_->counters.cancelled.fetch_add(1, std::memory_order_relaxed);
    held_.clear();
    paused_ = false;
    if (closing_status_) {
      // The service had finished, and the reply's end waited behind audio the call had not
      // taken yet: that audio is dropped, and the stream ends cancelled.
      closing_status_.reset();
      post_closed({StreamStatus::kCancelled, "cancelled"});
      return;
    }
    end({StreamStatus::kCancelled, "cancelled"});
    if (ws_) ws_->abort();
  }

  void pause() { paused_ = true; }

  void resume() {
    paused_ = false;
    while (!held_.empty() && !paused_) {
      post(std::move(held_.front()));
      held_.pop_front();
    }
    if (held_.empty() && closing_status_) {
      auto st = std::move(*closing_status_);
      closing_status_.reset();
      post_closed(std::move(st));
    }
  }

 private:
  struct Chunk {
    std::uint64_t id = 0;
    std::size_t end_chars = 0;  // characters sent up to its end
  };

  void on_message(std::string_view text) {
    if (ended_) return;
    ServerMessage m = parse_server_message(text);
    using T = ServerMessage::Type;
    if (m.type == T::malformed) {
      return fail({StreamStatus::kInternal, st_->log_name + " sent a malformed message (" + m.why +
                                                "): " + std::string(text.substr(0, 200))});
    }
    if (m.type == T::error) {
      // The service's error codes (its error-messages guide): a key problem, a voice or input
      // it cannot take, or its own trouble.
      int code = StreamStatus::kUnavailable;
      if (m.why.rfind("invalid_api_key", 0) == 0) code = kUnauthenticated;
      if (m.why.rfind("voice_not_found", 0) == 0 || m.why.rfind("invalid_input", 0) == 0) {
        code = StreamStatus::kInvalidArgument;
      }
      if (m.why.rfind("quota_exceeded", 0) == 0 || m.why.rfind("max_character", 0) == 0) {
        code = StreamStatus::kResourceExhausted;
      }
      return fail({code, st_->log_name + ": " + m.why});
    }
    if (m.type == T::audio && !m.audio.empty()) audio(std::move(m.audio));
    chars_done_ += m.chars;
    // A chunk is done once the alignment has reached its last character (its trailing space,
    // which the service may not align, aside).
    while (!chunks_.empty() && chars_done_ + 1 >= chunks_.front().end_chars) {
      chunk_done(chunks_.front().id);
      chunks_.pop_front();
    }
    if (m.is_final) {
      while (!chunks_.empty()) {
        chunk_done(chunks_.front().id);
        chunks_.pop_front();
      }
      end({});
      if (ws_) ws_->close();
    }
  }

  void audio(std::string bytes) {
    tts::v1::SynthesizeResponse r;
    if (format_.ulaw) {
      std::string pcm(bytes.size() * 2, '\0');
      for (std::size_t i = 0; i < bytes.size(); ++i) {
        const auto s =
            static_cast<std::uint16_t>(audio::ulaw_to_linear(static_cast<std::uint8_t>(bytes[i])));
        pcm[2 * i] = static_cast<char>(s & 0xFF);
        pcm[2 * i + 1] = static_cast<char>(s >> 8);
      }
      bytes = std::move(pcm);
    }
    if (bytes.size() % 2 != 0) bytes.pop_back();  // whole samples only
    audio_bytes_ += bytes.size();
    r.set_audio(std::move(bytes));
    deliver(std::move(r));
  }

  void chunk_done(std::uint64_t id) {
    tts::v1::SynthesizeResponse r;
    r.mutable_chunk_done()->set_chunk_id(id);
    r.mutable_chunk_done()->set_audio_ms(static_cast<std::uint32_t>(
        audio_bytes_ * 1000 / (2 * static_cast<std::uint64_t>(format_.rate_hz))));
    deliver(std::move(r));
  }

  void deliver(tts::v1::SynthesizeResponse r) {
    if (!paused_ && held_.empty()) return post(std::move(r));
    if (held_.size() >= ElevenLabsBackend::kMaxHeld) {
      st_->counters.held_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    held_.push_back(std::move(r));
  }

  void post(tts::v1::SynthesizeResponse r) {
    post_([ev = ev_, r = std::move(r)]() mutable {
      if (ev->response) ev->response(r);
    });
  }

  void post_closed(StreamStatus st) {
    post_([ev = ev_, st = std::move(st)] {
      if (ev->closed) ev->closed(st);
    });
  }

  /// The stream ends (once): `closed` after what is held, unless cancelled.
  void end(StreamStatus st) {
    if (ended_) return;
    ended_ = true;
    forget();
    if (!held_.empty()) {
      closing_status_ = std::move(st);  // after the held responses, on resume
      return;
    }
    post_closed(std::move(st));
  }

  void fail(StreamStatus st) {
    st_->counters.sessions_failed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("{}", logtext::log_text(st.message));  // it names the voice
    held_.clear();  // a broken reply is retried from its unfinished chunks
    end(std::move(st));
    if (ws_) ws_->abort();
  }

  void on_closed(const net::WsClose& c) {
    ws_.reset();  // its handlers hold this socket: let both go
    st_->counters.audio_ms.fetch_add(
        audio_bytes_ * 1000 / (2 * static_cast<std::uint64_t>(format_.rate_hz)),
        std::memory_order_relaxed);
    if (ended_) return;
    StreamStatus st;
    if (c.http_status != 0) {
      int code = StreamStatus::kUnavailable;
      if (c.http_status == 401) code = kUnauthenticated;
      if (c.http_status == 403) code = kPermissionDenied;
      if (c.http_status == 400 || c.http_status == 404 || c.http_status == 422) {
        code = StreamStatus::kInvalidArgument;
      }
      if (c.http_status == 429) code = StreamStatus::kResourceExhausted;
      std::string said;
      boost::system::error_code ec;
      const auto v = boost::json::parse(c.http_body, ec);
      if (!ec && v.is_object()) {
        // {"detail": {"status": "...", "message": "..."}} or {"detail": "..."}
        if (const auto* d = v.as_object().if_contains("detail")) {
          const auto* msg = d->is_object() ? d->as_object().if_contains("message") : d;
          if (msg != nullptr && msg->is_string()) {
            said = std::string(msg->as_string().data(),
                               std::min<std::size_t>(msg->as_string().size(), 200));
          }
        }
      }
      st = {code, st_->log_name + " refused the connection: HTTP " + std::to_string(c.http_status) +
                      (said.empty() ? "" : ": " + said)};
    } else {
      st = {c.code == 1008 ? StreamStatus::kInvalidArgument : StreamStatus::kUnavailable,
            st_->log_name + " closed the socket before the end of the reply" +
                (c.clean ? " (" + std::to_string(c.code) + "): " : ": ") + c.reason.substr(0, 200)};
    }
    fail(std::move(st));
  }

  void forget() {
    std::lock_guard lock(st_->mu);
    st_->open.erase(weak_from_this());
  }

  std::shared_ptr<ElevenLabsBackend::State> st_;
  const OutputFormat format_;
  const std::string url_;
  providers::Poster post_;
  std::shared_ptr<providers::TtsEvents> ev_;
  std::shared_ptr<net::WsClient> ws_;
  std::deque<Chunk> chunks_;
  std::deque<tts::v1::SynthesizeResponse> held_;
  std::optional<StreamStatus> closing_status_;
  std::size_t chars_sent_ = 0, chars_done_ = 0;
  std::uint64_t audio_bytes_ = 0;  // PCM bytes delivered
  bool paused_ = false;
  bool closed_input_ = false;
  bool ended_ = false;
};

/// One reply's stream, as the pipeline holds it (the call's thread).
class ReplyStream final : public providers::TtsStream {
 public:
  ReplyStream(std::shared_ptr<ReplySocket> s, std::size_t max_queued, ElevenLabsCounters& counters)
      : s_(std::move(s)), max_queued_(max_queued), counters_(counters) {}

  bool send_text(const std::string& text, std::uint64_t chunk_id) override {
    if (finished_) return false;
    if (s_->queued.load(std::memory_order_relaxed) >= max_queued_) {
      counters_.dropped_messages.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    s_->queued.fetch_add(1, std::memory_order_relaxed);
    asio::post(s_->ex, [s = s_, text, chunk_id]() mutable { s->text(std::move(text), chunk_id); });
    return true;
  }
  void finish() override {
    if (finished_) return;
    finished_ = true;
    asio::post(s_->ex, [s = s_] { s->finish(); });
  }
  void cancel() override {
    finished_ = true;
    asio::post(s_->ex, [s = s_] { s->cancel(); });
  }
  void pause_reads() override {
    asio::post(s_->ex, [s = s_] { s->pause(); });
  }
  void resume_reads() override {
    asio::post(s_->ex, [s = s_] { s->resume(); });
  }

 private:
  std::shared_ptr<ReplySocket> s_;
  std::size_t max_queued_;
  ElevenLabsCounters& counters_;
  bool finished_ = false;
};

}  // namespace

ElevenLabsBackend::ElevenLabsBackend(ElevenLabsOptions options)
    : PartialClients("elevenlabs " + options.name, "speech synthesis"),
      state_(std::make_shared<State>(std::move(options))) {}

ElevenLabsBackend::~ElevenLabsBackend() {
  std::vector<std::shared_ptr<ReplySocket>> open;
  {
    std::lock_guard lock(state_->mu);
    for (const auto& w : state_->open) {
      if (auto s = w.lock()) open.push_back(std::move(s));
    }
  }
  for (auto& s : open) asio::post(s->ex, [s] { s->cancel(); });
  open.clear();
  state_->sessions.stop();
}

std::shared_ptr<providers::TtsStream> ElevenLabsBackend::open_tts(
    const providers::ProviderTarget&, const tts::v1::SynthesisConfig& config,
    providers::Poster post, providers::TtsEvents events, std::size_t max_queued) {
  if (config.format().encoding() != common::v1::LINEAR16) {
    throw std::runtime_error(state_->log_name + " gives LINEAR16 audio");
  }
  const OutputFormat f =
      output_format(state_->options, static_cast<int>(config.format().sample_rate_hz()));
  if (f.name.empty()) {
    throw std::runtime_error(state_->log_name +
                             ": speaks at 8000, 16000, 22050, 24000, 44100 or 48000 Hz");
  }
  const std::string& voice = config.voice().empty() ? state_->options.voice_id : config.voice();
  auto& io = state_->sessions.acquire();  // throws over max_sessions
  auto s = std::make_shared<ReplySocket>(state_, io, f, socket_url(state_->options, voice, f),
                                         std::move(post), std::move(events));
  {
    std::lock_guard lock(state_->mu);
    state_->open.insert(s);
  }
  asio::post(s->ex, [s] { s->start(); });
  return std::make_shared<ReplyStream>(s, max_queued, state_->counters);
}

const ElevenLabsOptions& ElevenLabsBackend::options() const {
  return state_->options;
}
const ElevenLabsCounters& ElevenLabsBackend::counters() const {
  return state_->counters;
}
std::size_t ElevenLabsBackend::sessions() const {
  return state_->sessions.count();
}

}  // namespace voxbridge::tts_elevenlabs
