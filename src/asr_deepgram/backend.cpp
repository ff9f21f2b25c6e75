#include "voxbridge/asr_deepgram/backend.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "voxbridge/asr_deepgram/listen.hpp"
#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/net/ws_client.hpp"

namespace voxbridge::asr_deepgram {

namespace asio = boost::asio;
using providers::StreamStatus;

namespace {

/// A Results message carries a second of text at most; Metadata a few hundred bytes.
constexpr std::size_t kMaxServerMessageBytes = 1u << 20;
/// Final results that end within this of the audio sent cover it (Deepgram reports times in
/// its own steps; one 20 ms frame of slack).
constexpr double kCoverSlackS = 0.025;
constexpr int kUnauthenticated = 16;
constexpr int kPermissionDenied = 7;

class CallSocket;

}  // namespace

struct DeepgramBackend::State {
  explicit State(DeepgramOptions o)
      : options(std::move(o)),
        log_name("deepgram " + options.name),
        sessions(log_name, options.url, options.ca_file, options.threads, options.max_sessions,
                 counters) {}
  DeepgramOptions options;
  std::string log_name;
  DeepgramCounters counters;
  ws_agent::Sessions sessions;
  std::mutex mu;
  std::map<std::string, std::weak_ptr<CallSocket>, std::less<>> calls;  // by call UUID
};

namespace {

double seconds_of(std::size_t bytes, const AudioFormat& f) {
  const double per_second =
      f.sample_rate_hz * (f.encoding == AudioFormat::Encoding::mulaw ? 1.0 : 2.0);
  return static_cast<double>(bytes) / per_second;
}

std::uint32_t ms_after(double t, double origin) {
  return t <= origin ? 0 : static_cast<std::uint32_t>((t - origin) * 1000.0 + 0.5);
}

/// What an HTTP refusal of the upgrade means for the pipeline, and its words (Deepgram answers
/// with {"err_code","err_msg","request_id"}; only err_msg is kept, and never the request's key).
StreamStatus refusal(const std::string& log_name, const net::WsClose& c) {
  int code = StreamStatus::kUnavailable;
  if (c.http_status == 401) code = kUnauthenticated;
  if (c.http_status == 403) code = kPermissionDenied;
  if (c.http_status == 400) code = StreamStatus::kInvalidArgument;
  if (c.http_status == 429) code = StreamStatus::kResourceExhausted;
  std::string said;
  boost::system::error_code ec;
  const auto v = boost::json::parse(c.http_body, ec);
  if (!ec && v.is_object()) {
    if (const auto* m = v.as_object().if_contains("err_msg"); m != nullptr && m->is_string()) {
      said = std::string(m->as_string().data(), std::min<std::size_t>(m->as_string().size(), 200));
    }
  }
  return {code, log_name + " refused the connection: HTTP " + std::to_string(c.http_status) +
                    (said.empty() ? std::string() : ": " + said)};
}

/// One call's socket, on one of the backend's io threads. Holds at most one utterance at a
/// time (the pipeline opens the next one after the last has closed).
class CallSocket : public std::enable_shared_from_this<CallSocket> {
 public:
  CallSocket(std::shared_ptr<DeepgramBackend::State> st, asio::io_context& io, std::string uuid,
             AudioFormat audio_format, std::string socket_url)
      : ex(io.get_executor()),
        format(audio_format),
        url(std::move(socket_url)),
        st_(std::move(st)),
        uuid_(std::move(uuid)),
        keepalive_(io),
        wait_(io),
        linger_(io) {}
  ~CallSocket() { st_->sessions.release(); }
  CallSocket(const CallSocket&) = delete;
  CallSocket& operator=(const CallSocket&) = delete;

  const asio::any_io_executor ex;
  const AudioFormat format;
  const std::string url;
  /// Audio messages posted by the call and not yet taken by the io thread.
  std::atomic<std::size_t> queued{0};
  /// The socket has ended or is ending: the call's next utterance needs a new one.
  std::atomic<bool> done{false};

  // --- the io thread ---

  /// A new utterance, `id`, whose events go to `post`.
  void begin(std::uint64_t id, providers::Poster post, providers::AsrEvents events) {
    auto ev = std::make_shared<providers::AsrEvents>(std::move(events));
    if (cur_) end_utterance({StreamStatus::kCancelled, "superseded by the next utterance"});
    if (closing_ || ended_) {
      post([ev] {
        if (ev->closed) ev->closed({StreamStatus::kUnavailable, "the Deepgram socket closed"});
      });
      return;
    }
    cur_.emplace();
    cur_->id = id;
    cur_->post = std::move(post);
    cur_->ev = std::move(ev);
    cur_->begin_s = sent_s_;
    cur_->covered_s = sent_s_;
    linger_.cancel();
    keepalive_.cancel();
    st_->counters.utterances.fetch_add(1, std::memory_order_relaxed);
    if (!ws_) connect();
  }

  void audio(std::uint64_t id, std::string bytes) {
    queued.fetch_sub(1, std::memory_order_relaxed);
    if (!cur_ || cur_->id != id || cur_->finishing || !ws_ || closing_) return;
    sent_s_ += seconds_of(bytes.size(), format);
    if (!ws_->send_binary(std::move(bytes))) {
      fail({StreamStatus::kUnavailable, st_->log_name + " is not taking audio (send queue full)"});
    }
  }

  void finish(std::uint64_t id) {
    if (!cur_ || cur_->id != id || cur_->finishing) return;
    cur_->finishing = true;
    // Deepgram's endpointer ended the turn (speech_final, UtteranceEnd): every word of it is in
    // a final result, and what followed was silence. The turn goes on at once.
    if (covered() || cur_->ended_turn) return end_utterance({});
    // Deepgram answers Finalize with the final results of what it holds (from_finalize);
    // when it holds nothing it may not answer at all: the wait is bounded.
    if (ws_ && !closing_) ws_->send(std::string(kFinalize));
    wait_.expires_after(st_->options.finalize_timeout);
    wait_.async_wait([self = shared_from_this(), id](boost::system::error_code ec) {
      if (ec || !self->cur_ || self->cur_->id != id) return;
      self->st_->counters.finalize_timeouts.fetch_add(1, std::memory_order_relaxed);
      self->end_utterance({});
    });
  }

  void cancel(std::uint64_t id) {
    if (!cur_ || cur_->id != id) return;
    end_utterance({StreamStatus::kCancelled, "cancelled"});
    // What Deepgram still says of it would land in the next utterance: start afresh.
    close_stream();
  }

  /// The call is over (or the backend is stopping).
  void call_over() {
    if (cur_) end_utterance({StreamStatus::kCancelled, "the call ended"});
    close_stream();
  }

 private:
  struct Utterance {
    std::uint64_t id = 0;
    providers::Poster post;
    std::shared_ptr<providers::AsrEvents> ev;
    double begin_s = 0;    // audio of the socket before it
    double covered_s = 0;  // what final results have covered so far
    bool finishing = false;
    bool ended_turn = false;  // end_of_utterance posted
  };

  bool covered() const { return cur_->covered_s >= sent_s_ - kCoverSlackS; }

  void connect() {
    const auto& o = st_->options;
    net::WsOptions w;
    w.url = url;
    w.headers.emplace_back("Authorization", "Token " + o.api_key);
    w.connect_timeout = o.connect_timeout;
    w.max_message_bytes = kMaxServerMessageBytes;
    net::WsHandlers h;
    h.open = [] {};
    h.message = [self = shared_from_this()](std::string_view m) { self->on_message(m); };
    h.closed = [self = shared_from_this()](const net::WsClose& c) { self->on_closed(c); };
    try {
      ws_ = net::WsClient::create(ex, st_->sessions.tls(), true, std::move(w), std::move(h));
    } catch (const std::exception& e) {
      return fail({StreamStatus::kInvalidArgument, st_->log_name + ": " + e.what()});
    }
    ws_->connect();
  }

  void on_message(std::string_view text) {
    const ServerMessage m = parse_server_message(text);
    using T = ServerMessage::Type;
    if (m.type == T::malformed) {
      st_->counters.malformed.fetch_add(1, std::memory_order_relaxed);
      return fail({StreamStatus::kInternal, st_->log_name + " sent a malformed message (" + m.why +
                                                "): " + std::string(text.substr(0, 200))});
    }
    if (m.type == T::metadata) {
      spdlog::debug("{}: call uuid={} request_id={} {:.2f} s of audio", st_->log_name, uuid_,
                    logtext::log_text(m.request_id), m.time);
      return;
    }
    if (!cur_) return;  // between utterances: what is left of the last one
    if (m.type == T::speech_started) {
      if (m.time + kCoverSlackS < cur_->begin_s) return;
      return emit([offset = ms_after(m.time, cur_->begin_s)](providers::AsrEvents& e) {
        if (e.speech_started) e.speech_started(offset);
      });
    }
    if (m.type == T::utterance_end) {
      if (m.time + kCoverSlackS < cur_->begin_s) return;
      end_turn(m.time);
      if (cur_->finishing && covered()) end_utterance({});
      return;
    }
    if (m.type != T::results) return;
    const double end = m.start + m.duration;
    if (end <= cur_->begin_s + kCoverSlackS && !m.from_finalize) return;  // the last utterance's
    if (!m.transcript.empty()) {
      providers::AsrResult r;
      r.transcript = m.transcript;
      r.is_final = m.is_final;
      r.confidence = m.is_final ? static_cast<float>(m.confidence) : 0.0f;
      r.start_ms = ms_after(m.start, cur_->begin_s);
      r.end_ms = ms_after(end, cur_->begin_s);
      emit([r = std::move(r)](providers::AsrEvents& e) {
        if (e.result) e.result(r);
      });
    }
    if (!m.is_final) return;
    cur_->covered_s = std::max(cur_->covered_s, end);
    if (m.speech_final) end_turn(end);
    if (cur_->finishing && (m.from_finalize || covered())) end_utterance({});
  }

  /// Deepgram says the caller has finished (speech_final, UtteranceEnd): once per utterance.
  void end_turn(double at) {
    if (cur_->ended_turn) return;
    cur_->ended_turn = true;
    emit([offset = ms_after(at, cur_->begin_s)](providers::AsrEvents& e) {
      if (e.end_of_utterance) e.end_of_utterance(offset);
    });
  }

  template <class F>
  void emit(F f) {
    cur_->post([ev = cur_->ev, f = std::move(f)]() mutable { f(*ev); });
  }

  /// The utterance's stream closes (once, last); the socket waits for the call's next one.
  void end_utterance(StreamStatus st) {
    wait_.cancel();
    auto u = std::move(*cur_);
    cur_.reset();
    u.post([ev = std::move(u.ev), st = std::move(st)] {
      if (ev->closed) ev->closed(st);
    });
    if (uuid_.empty()) return close_stream();  // no call to reuse it for
    if (!closing_ && !ended_) idle();
  }

  /// Between utterances: KeepAlive, and the socket let go after `linger`.
  void idle() {
    arm_keepalive();
    linger_.expires_after(st_->options.linger);
    linger_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->cur_) self->close_stream();
    });
  }

  void arm_keepalive() {
    keepalive_.expires_after(st_->options.keepalive);
    keepalive_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->cur_ || self->closing_ || !self->ws_) return;
      self->ws_->send(std::string(kKeepAlive));
      self->st_->counters.keepalives.fetch_add(1, std::memory_order_relaxed);
      self->arm_keepalive();
    });
  }

  /// CloseStream: Deepgram sends what is left and a Metadata message, then closes the socket;
  /// one that does not within finalize_timeout is closed by us.
  void close_stream() {
    done = true;
    forget();
    keepalive_.cancel();
    linger_.cancel();
    if (closing_ || ended_) return;
    closing_ = true;
    if (!ws_) return;
    ws_->send(std::string(kCloseStream));
    wait_.expires_after(st_->options.finalize_timeout);
    wait_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && self->ws_) self->ws_->close();
    });
  }

  /// Ends the utterance with `st` and the socket with it.
  void fail(StreamStatus st) {
    st_->counters.sessions_failed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("call uuid={}: {}", uuid_, logtext::log_text(st.message));
    done = true;
    closing_ = true;  // before the utterance ends: the socket goes with it
    forget();
    if (cur_) end_utterance(std::move(st));
    keepalive_.cancel();
    linger_.cancel();
    if (ws_) ws_->abort();
  }

  void on_closed(const net::WsClose& c) {
    ended_ = true;
    done = true;
    forget();
    keepalive_.cancel();
    linger_.cancel();
    wait_.cancel();
    ws_.reset();  // its handlers hold this socket: let both go
    st_->counters.audio_ms.fetch_add(static_cast<std::uint64_t>(sent_s_ * 1000.0),
                                     std::memory_order_relaxed);
    if (!cur_) return;
    StreamStatus st;
    if (c.http_status != 0) {
      st = refusal(st_->log_name, c);
    } else if (c.clean && c.code == 1000) {
      st = {StreamStatus::kUnavailable, st_->log_name + " closed the socket mid-utterance"};
    } else {
      // Deepgram's errors close the socket: 1008 DATA-... (audio it cannot decode), 1011
      // NET-... (its timeouts), with the reason in words.
      st = {c.code == 1008 ? StreamStatus::kInvalidArgument : StreamStatus::kUnavailable,
            st_->log_name + ": " + (c.clean ? "closed (" + std::to_string(c.code) + "): " : "") +
                c.reason.substr(0, 200)};
    }
    st_->counters.sessions_failed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("call uuid={}: {}", uuid_, logtext::log_text(st.message));
    end_utterance(std::move(st));
  }

  /// No later utterance of the call comes here.
  void forget() {
    if (uuid_.empty()) return;
    std::lock_guard lock(st_->mu);
    const auto it = st_->calls.find(uuid_);
    if (it != st_->calls.end() && it->second.lock().get() == this) st_->calls.erase(it);
  }

  std::shared_ptr<DeepgramBackend::State> st_;
  const std::string uuid_;
  std::shared_ptr<net::WsClient> ws_;
  std::optional<Utterance> cur_;
  double sent_s_ = 0;  // audio sent on the socket, seconds (Deepgram's clock)
  asio::steady_timer keepalive_, wait_, linger_;
  bool closing_ = false;
  bool ended_ = false;
};

/// One utterance's stream, as the pipeline holds it (the call's thread).
class UtteranceStream final : public providers::AsrStream {
 public:
  UtteranceStream(std::shared_ptr<CallSocket> s, std::uint64_t id, std::size_t max_queued,
                  DeepgramCounters& counters)
      : s_(std::move(s)), id_(id), max_queued_(max_queued), counters_(counters) {}

  bool send_audio(std::span<const std::uint8_t> bytes) override {
    if (finished_) return false;
    if (s_->queued.load(std::memory_order_relaxed) >= max_queued_) {
      ++dropped_;
      counters_.dropped_messages.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    s_->queued.fetch_add(1, std::memory_order_relaxed);
    asio::post(s_->ex, [s = s_, id = id_, b = std::string(bytes.begin(), bytes.end())]() mutable {
      s->audio(id, std::move(b));
    });
    return true;
  }
  void finish() override {
    if (finished_) return;
    finished_ = true;
    asio::post(s_->ex, [s = s_, id = id_] { s->finish(id); });
  }
  void cancel() override {
    finished_ = true;
    asio::post(s_->ex, [s = s_, id = id_] { s->cancel(id); });
  }
  std::uint64_t dropped() const override { return dropped_; }

 private:
  std::shared_ptr<CallSocket> s_;
  std::uint64_t id_;
  std::size_t max_queued_;
  DeepgramCounters& counters_;
  bool finished_ = false;
  std::uint64_t dropped_ = 0;
};

std::atomic<std::uint64_t> next_utterance{1};

}  // namespace

DeepgramBackend::DeepgramBackend(DeepgramOptions options)
    : PartialClients("deepgram " + options.name, "speech recognition"),
      state_(std::make_shared<State>(std::move(options))) {}

DeepgramBackend::~DeepgramBackend() {
  std::vector<std::shared_ptr<CallSocket>> open;
  {
    std::lock_guard lock(state_->mu);
    for (auto& [uuid, w] : state_->calls) {
      if (auto s = w.lock()) open.push_back(std::move(s));
    }
  }
  for (auto& s : open) asio::post(s->ex, [s] { s->call_over(); });
  open.clear();
  state_->sessions.stop();  // waits (bounded) for the sockets to close
}

std::shared_ptr<providers::AsrStream> DeepgramBackend::open_asr(
    const providers::ProviderTarget&, const asr::v1::RecognitionConfig& config,
    providers::Poster post, providers::AsrEvents events, std::size_t max_queued) {
  AudioFormat f;
  const auto enc = config.format().encoding();
  if (enc == common::v1::MULAW) {
    f.encoding = AudioFormat::Encoding::mulaw;
  } else if (enc != common::v1::LINEAR16) {
    throw std::runtime_error(state_->log_name + " takes LINEAR16 or MULAW audio");
  }
  f.sample_rate_hz = static_cast<int>(config.format().sample_rate_hz());
  if (f.sample_rate_hz < 8000 || f.sample_rate_hz > 48000) {
    throw std::runtime_error(state_->log_name + ": a sample rate of 8000 to 48000 Hz");
  }
  const std::vector<std::string> hints(config.phrase_hints().begin(), config.phrase_hints().end());
  std::string url = listen_url(state_->options, f, config.language(), hints);
  const std::string& uuid = config.call().call_id();

  std::shared_ptr<CallSocket> s;
  std::shared_ptr<CallSocket> replaced;
  {
    std::lock_guard lock(state_->mu);
    if (!uuid.empty()) {
      const auto it = state_->calls.find(uuid);
      if (it != state_->calls.end()) s = it->second.lock();
      if (s && (s->done || s->url != url)) {
        replaced = std::move(s);  // its audio format or hints changed, or it is closing
        s.reset();
      }
    }
    if (s) {
      state_->counters.sockets_reused.fetch_add(1, std::memory_order_relaxed);
    } else {
      auto& io = state_->sessions.acquire();  // throws over max_sessions
      s = std::make_shared<CallSocket>(state_, io, uuid, f, std::move(url));
      if (!uuid.empty()) state_->calls[uuid] = s;
    }
  }
  if (replaced) asio::post(replaced->ex, [r = replaced] { r->call_over(); });
  const std::uint64_t id = next_utterance.fetch_add(1, std::memory_order_relaxed);
  asio::post(s->ex, [s, id, post, ev = std::move(events)]() mutable {
    s->begin(id, std::move(post), std::move(ev));
  });
  return std::make_shared<UtteranceStream>(s, id, max_queued, state_->counters);
}

void DeepgramBackend::call_ended(std::string_view call_uuid) {
  std::shared_ptr<CallSocket> s;
  {
    std::lock_guard lock(state_->mu);
    const auto it = state_->calls.find(call_uuid);
    if (it == state_->calls.end()) return;
    s = it->second.lock();
    state_->calls.erase(it);
  }
  if (s) asio::post(s->ex, [s] { s->call_over(); });
}

const DeepgramOptions& DeepgramBackend::options() const {
  return state_->options;
}
const DeepgramCounters& DeepgramBackend::counters() const {
  return state_->counters;
}
std::size_t DeepgramBackend::sessions() const {
  return state_->sessions.count();
}

}  // namespace voxbridge::asr_deepgram
