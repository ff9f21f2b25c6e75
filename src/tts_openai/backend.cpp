#include "voxbridge/tts_openai/backend.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/tts_openai/speech.hpp"

namespace voxbridge::tts_openai {

namespace asio = boost::asio;
using providers::StreamStatus;

namespace {

/// A sentence's audio: minutes of speech at most.
constexpr std::size_t kMaxAudioBytes = 16u << 20;
/// An error answer kept for its message.
constexpr std::size_t kMaxErrorBody = 4096;

/// The words of an error answer: OpenAI's {"error":{"message"}}, FastAPI's {"detail"} (a string,
/// or an object with "message"), else the body's start.
std::string error_words(const std::string& body) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    const boost::json::value* m = nullptr;
    if (const auto* e = o.if_contains("error"); e != nullptr && e->is_object()) {
      m = e->as_object().if_contains("message");
    } else if (const auto* d = o.if_contains("detail")) {
      m = d->is_object() ? d->as_object().if_contains("message") : d;
    }
    if (m != nullptr && m->is_string()) return std::string(m->as_string()).substr(0, 200);
  }
  return body.substr(0, 200);
}

}  // namespace

struct SpeechBackend::State {
  explicit State(SpeechOptions o)
      : options(std::move(o)),
        log_name("speech " + options.name),
        http(pool_options(options), options.ca_file, options.threads) {}
  static net::HttpPoolOptions pool_options(const SpeechOptions& o) {
    net::HttpPoolOptions po;
    po.base_url = o.base_url;
    po.connect_timeout = o.connect_timeout;
    po.stall_timeout = o.timeout;
    po.max_body_bytes = kMaxAudioBytes;
    po.max_idle = o.max_idle;
    return po;
  }
  SpeechOptions options;
  std::string log_name;
  SpeechCounters counters;
  net::HttpPools http;
  std::atomic<std::size_t> open{0};
};

namespace {

using State = SpeechBackend::State;

/// One reply: its sentences' requests, one after the other (its io thread).
class Reply : public std::enable_shared_from_this<Reply> {
 public:
  Reply(std::shared_ptr<State> st, std::shared_ptr<net::HttpPool> pool, providers::Poster post,
        providers::TtsEvents ev, std::string voice, double speed, int rate)
      : st_(std::move(st)),
        pool_(std::move(pool)),
        post_(std::move(post)),
        ev_(std::make_shared<providers::TtsEvents>(std::move(ev))),
        voice_(std::move(voice)),
        speed_(speed),
        rate_(rate) {
    if (rate_ != st_->options.sample_rate) {
      resampler_.emplace(st_->options.sample_rate, rate_, 5, false);
    }
  }
  ~Reply() { st_->open.fetch_sub(1, std::memory_order_relaxed); }

  std::atomic<std::size_t> queued{0};  // sentences posted, not yet taken (the call's counter)

  void text(std::string t, std::uint64_t chunk_id) {
    queued.fetch_sub(1, std::memory_order_relaxed);
    if (ended_ || input_closed_) return;
    sentences_.push_back({std::move(t), chunk_id});
    if (!x_) next();
  }

  void finish() {
    if (ended_ || input_closed_) return;
    input_closed_ = true;
    if (!x_ && sentences_.empty()) end({});
  }

  void cancel() {
    if (ended_ && !closing_status_) return;  // its closed event is already on its way
    st_->counters.cancelled.fetch_add(1, std::memory_order_relaxed);
    held_.clear();
    paused_ = false;
    sentences_.clear();
    if (closing_status_) {
      closing_status_.reset();
      post_closed({StreamStatus::kCancelled, "cancelled"});
      return;
    }
    end({StreamStatus::kCancelled, "cancelled"});
    if (x_) x_->cancel();  // its done handler sees the reply ended
  }

  void pause() { paused_ = true; }
  void resume() {
    paused_ = false;
    while (!held_.empty() && !paused_) {
      post(std::move(held_.front()));
      held_.pop_front();
    }
    if (held_.empty() && closing_status_) {
      post_closed(std::move(*closing_status_));
      closing_status_.reset();
    }
  }

 private:
  struct Sentence {
    std::string text;
    std::uint64_t chunk_id = 0;
  };

  void next() {
    if (ended_) return;
    if (sentences_.empty()) {
      if (input_closed_) end({});
      return;
    }
    Sentence s = std::move(sentences_.front());
    sentences_.pop_front();
    const auto& o = st_->options;
    net::HttpRequest r;
    r.method = "POST";
    r.target = "/audio/speech";
    r.content_type = "application/json";
    if (!o.api_key.empty()) r.headers.emplace_back("Authorization", "Bearer " + o.api_key);
    r.body = speech_body(o, voice_, speed_, s.text);
    st_->counters.requests.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t chars = 0;  // UTF-8 code points: what a hosted service counts
    for (const char c : s.text) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    st_->counters.characters.fetch_add(chars, std::memory_order_relaxed);
    chunk_id_ = s.chunk_id;
    status_ = 0;
    error_body_.clear();
    odd_.reset();
    if (resampler_) resampler_->reset();
    net::HttpHandlers h;
    h.head = [self = shared_from_this()](const net::HttpResponseHead& head) {
      self->status_ = head.status;
    };
    h.body = [self = shared_from_this()](std::string_view piece) { self->body(piece); };
    h.done = [self = shared_from_this()](const net::HttpDone& d) { self->done(d); };
    x_ = pool_->start(std::move(r), std::move(h));
  }

  void body(std::string_view piece) {
    if (ended_) return;
    if (status_ != 200) {
      const std::size_t room = kMaxErrorBody - std::min(kMaxErrorBody, error_body_.size());
      error_body_.append(piece.substr(0, room));
      return;
    }
    // Whole samples only: a piece may end inside one.
    std::string bytes;
    bytes.reserve(piece.size() + 1);
    if (odd_) bytes.push_back(*odd_);
    bytes.append(piece);
    odd_.reset();
    if (bytes.size() % 2 != 0) {
      odd_ = bytes.back();
      bytes.pop_back();
    }
    if (bytes.empty()) return;
    audio(std::move(bytes));
  }

  void audio(std::string bytes) {
    if (resampler_) {
      const std::size_t n = bytes.size() / 2;
      in_.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        in_[i] = static_cast<std::int16_t>(
            static_cast<std::uint16_t>(static_cast<std::uint8_t>(bytes[2 * i])) |
            (static_cast<std::uint16_t>(static_cast<std::uint8_t>(bytes[2 * i + 1])) << 8));
      }
      out_.resize(resampler_->max_output(n));
      const std::size_t m = resampler_->process(in_, out_);
      bytes.resize(m * 2);
      for (std::size_t i = 0; i < m; ++i) {
        const auto v = static_cast<std::uint16_t>(out_[i]);
        bytes[2 * i] = static_cast<char>(v & 0xff);
        bytes[2 * i + 1] = static_cast<char>(v >> 8);
      }
      if (bytes.empty()) return;
    }
    audio_bytes_ += bytes.size();
    tts::v1::SynthesizeResponse r;
    r.set_audio(std::move(bytes));
    deliver(std::move(r));
  }

  void done(const net::HttpDone& d) {
    x_.reset();
    if (ended_) return;
    if (!d.complete) {
      return fail({d.error.find("within") != std::string::npos ||
                           d.error.find("stalled") != std::string::npos
                       ? StreamStatus::kDeadlineExceeded
                       : StreamStatus::kUnavailable,
                   st_->log_name + ": " + d.error});
    }
    if (d.status != 200) {
      return fail(
          {providers::status_from_http(d.status),
           st_->log_name + ": HTTP " + std::to_string(d.status) + ": " + error_words(error_body_)});
    }
    tts::v1::SynthesizeResponse r;
    r.mutable_chunk_done()->set_chunk_id(chunk_id_);
    r.mutable_chunk_done()->set_audio_ms(
        static_cast<std::uint32_t>(audio_bytes_ * 1000 / (2 * static_cast<std::uint64_t>(rate_))));
    deliver(std::move(r));
    next();
  }

  void deliver(tts::v1::SynthesizeResponse r) {
    if (!paused_ && held_.empty()) return post(std::move(r));
    if (held_.size() >= SpeechBackend::kMaxHeld) {
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

  /// The reply ends (once): `closed` after what is held, unless cancelled.
  void end(StreamStatus st) {
    if (ended_) return;
    ended_ = true;
    st_->counters.audio_ms.fetch_add(audio_bytes_ * 1000 / (2 * static_cast<std::uint64_t>(rate_)),
                                     std::memory_order_relaxed);
    if (!held_.empty()) {
      closing_status_ = std::move(st);  // after the held responses, on resume
      return;
    }
    post_closed(std::move(st));
  }

  void fail(StreamStatus st) {
    st_->counters.failed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("{}", logtext::log_text(st.message));
    held_.clear();  // a broken reply is retried from its unfinished chunks
    sentences_.clear();
    end(std::move(st));
  }

  std::shared_ptr<State> st_;
  std::shared_ptr<net::HttpPool> pool_;
  providers::Poster post_;
  std::shared_ptr<providers::TtsEvents> ev_;
  const std::string voice_;
  const double speed_;
  const int rate_;
  std::optional<audio::Resampler> resampler_;
  std::vector<std::int16_t> in_, out_;
  std::deque<Sentence> sentences_;
  std::shared_ptr<net::HttpExchange> x_;
  std::uint64_t chunk_id_ = 0;
  int status_ = 0;
  std::string error_body_;
  std::optional<char> odd_;
  std::deque<tts::v1::SynthesizeResponse> held_;
  std::optional<StreamStatus> closing_status_;
  std::uint64_t audio_bytes_ = 0;  // PCM bytes delivered, the whole reply
  bool paused_ = false;
  bool input_closed_ = false;
  bool ended_ = false;
};

/// One reply's stream, as the pipeline holds it (the call's thread).
class ReplyStream final : public providers::TtsStream {
 public:
  ReplyStream(std::shared_ptr<Reply> r, asio::any_io_executor ex, std::size_t max_queued,
              SpeechCounters& counters)
      : r_(std::move(r)), ex_(std::move(ex)), max_queued_(max_queued), counters_(counters) {}

  bool send_text(const std::string& text, std::uint64_t chunk_id) override {
    if (finished_) return false;
    if (r_->queued.load(std::memory_order_relaxed) >= max_queued_) {
      counters_.dropped_text.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    r_->queued.fetch_add(1, std::memory_order_relaxed);
    asio::post(ex_, [r = r_, text, chunk_id]() mutable { r->text(std::move(text), chunk_id); });
    return true;
  }
  void finish() override {
    if (finished_) return;
    finished_ = true;
    asio::post(ex_, [r = r_] { r->finish(); });
  }
  void cancel() override {
    finished_ = true;
    asio::post(ex_, [r = r_] { r->cancel(); });
  }
  void pause_reads() override {
    asio::post(ex_, [r = r_] { r->pause(); });
  }
  void resume_reads() override {
    asio::post(ex_, [r = r_] { r->resume(); });
  }

 private:
  std::shared_ptr<Reply> r_;
  asio::any_io_executor ex_;
  std::size_t max_queued_;
  SpeechCounters& counters_;
  bool finished_ = false;
};

}  // namespace

SpeechBackend::SpeechBackend(SpeechOptions options)
    : PartialClients("speech " + options.name, "speech synthesis"),
      state_(std::make_shared<State>(std::move(options))) {}

SpeechBackend::~SpeechBackend() {
  // Calls have ended before the server drops its backends; what is still in flight is given
  // a moment, then the threads stop.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (state_->open.load() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  state_->http.stop();
}

std::shared_ptr<providers::TtsStream> SpeechBackend::open_tts(
    const providers::ProviderTarget&, const tts::v1::SynthesisConfig& config,
    providers::Poster post, providers::TtsEvents events, std::size_t max_queued) {
  if (config.format().encoding() != common::v1::LINEAR16) {
    throw std::runtime_error(state_->log_name + " gives LINEAR16 audio");
  }
  const int rate = static_cast<int>(config.format().sample_rate_hz());
  if (rate < 8000 || rate > 48000) {
    throw std::runtime_error(state_->log_name + ": a sample rate of 8000 to 48000 Hz");
  }
  const auto& o = state_->options;
  const std::size_t now = state_->open.fetch_add(1) + 1;
  if (o.max_sessions > 0 && now > o.max_sessions) {
    state_->open.fetch_sub(1);
    state_->counters.refused.fetch_add(1, std::memory_order_relaxed);
    throw std::runtime_error(state_->log_name + ": all " + std::to_string(o.max_sessions) +
                             " sessions (max_sessions) are in use");
  }
  state_->counters.replies.fetch_add(1, std::memory_order_relaxed);
  const auto& pool = state_->http.next();
  auto r = std::make_shared<Reply>(state_, pool, std::move(post), std::move(events), config.voice(),
                                   static_cast<double>(config.speaking_rate()), rate);
  return std::make_shared<ReplyStream>(std::move(r), pool->executor(), max_queued,
                                       state_->counters);
}

const SpeechOptions& SpeechBackend::options() const {
  return state_->options;
}
const SpeechCounters& SpeechBackend::counters() const {
  return state_->counters;
}
std::size_t SpeechBackend::sessions() const {
  return state_->open.load();
}
net::HttpPoolCounters SpeechBackend::http_counters() const {
  return state_->http.counters();
}

}  // namespace voxbridge::tts_openai
