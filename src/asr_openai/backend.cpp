#include "voxbridge/asr_openai/backend.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "voxbridge/asr_openai/transcription.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/llm_openai/sse_parser.hpp"
#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/net/http_pool.hpp"
#include "voxbridge/vad/vad.hpp"

namespace voxbridge::asr_openai {

namespace asio = boost::asio;
using providers::StreamStatus;

namespace {

/// An answer is a line of text, or verbose_json's segments for 30 s: far under this.
constexpr std::size_t kMaxAnswerBytes = 1u << 20;

}  // namespace

struct TranscriptionBackend::State {
  explicit State(TranscriptionOptions o)
      : options(std::move(o)),
        log_name("transcription " + options.name),
        http(pool_options(options), options.ca_file, options.threads) {}
  static net::HttpPoolOptions pool_options(const TranscriptionOptions& o) {
    net::HttpPoolOptions po;
    po.base_url = o.base_url;
    po.connect_timeout = o.connect_timeout;
    po.stall_timeout = o.timeout;
    po.max_body_bytes = kMaxAnswerBytes;
    po.max_idle = o.max_idle;
    return po;
  }
  TranscriptionOptions options;
  std::string log_name;
  TranscriptionCounters counters;
  net::HttpPools http;
  std::atomic<std::size_t> open{0};
};

namespace {

using State = TranscriptionBackend::State;

/// One utterance's request and answer (its io thread).
class Request : public std::enable_shared_from_this<Request> {
 public:
  Request(std::shared_ptr<State> st, std::shared_ptr<net::HttpPool> pool, providers::Poster post,
          providers::AsrEvents ev, TranscriptionRequest req, int rate)
      : st_(std::move(st)),
        pool_(std::move(pool)),
        post_(std::move(post)),
        ev_(std::move(ev)),
        req_(std::move(req)),
        rate_(rate) {}

  ~Request() { st_->open.fetch_sub(1, std::memory_order_relaxed); }

  void run(std::vector<std::int16_t> pcm) {
    if (ended_) return;
    const auto& o = st_->options;
    const auto duration_ms =
        static_cast<std::uint32_t>(pcm.size() * 1000 / static_cast<std::size_t>(rate_));
    duration_ms_ = duration_ms;
    voiced_ms_ = voiced_ms(pcm);
    if (voiced_ms_ < static_cast<std::uint64_t>(o.min_speech.count())) {
      st_->counters.gated.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("{}: an utterance of {} ms with {} ms voiced is not sent (min_speech_ms {})",
                    st_->log_name, duration_ms, voiced_ms_, o.min_speech.count());
      return end({});
    }
    net::HttpRequest r;
    r.method = "POST";
    r.target = "/audio/transcriptions";
    r.content_type = multipart_content_type();
    if (!o.api_key.empty()) r.headers.emplace_back("Authorization", "Bearer " + o.api_key);
    try {
      r.body = multipart_body(req_, wav_file(pcm, rate_));
    } catch (const std::invalid_argument& e) {
      return end({StreamStatus::kInvalidArgument, st_->log_name + ": " + e.what()});
    }
    pcm = {};
    st_->counters.requests.fetch_add(1, std::memory_order_relaxed);
    st_->counters.audio_ms.fetch_add(duration_ms, std::memory_order_relaxed);
    net::HttpHandlers h;
    h.head = [self = shared_from_this()](const net::HttpResponseHead& head) {
      self->head_ = head;
      self->streaming_ = head.status == 200 && head.content_type.starts_with("text/event-stream");
    };
    h.body = [self = shared_from_this()](std::string_view piece) { self->body(piece); };
    h.done = [self = shared_from_this()](const net::HttpDone& d) { self->done(d); };
    x_ = pool_->start(std::move(r), std::move(h));
  }

  void cancel() {
    if (ended_) return;
    if (x_)
      x_->cancel();  // its done handler ends the stream, cancelled
    else
      end({StreamStatus::kCancelled, "cancelled"});
  }

 private:
  std::uint64_t voiced_ms(const std::vector<std::int16_t>& pcm) const {
    vad::VadOptions vo;
    vo.rate_hz = rate_;
    vo.noise_suppression = false;
    vo.narrowband = true;
    vad::Vad v(vo);
    const std::size_t frame = v.frame_samples();
    const std::size_t whole = pcm.size() / frame * frame;
    const std::size_t voiced = v.process(std::span<const std::int16_t>(pcm.data(), whole));
    return voiced * 10;
  }

  void body(std::string_view piece) {
    if (!streaming_) {
      answer_.append(piece);
      return;
    }
    const auto err = sse_.feed(piece, [this](std::string_view data) { event(data); });
    if (err && !bad_stream_) {
      bad_stream_ = true;
      stream_error_ =
          "an event line over " + std::to_string(llm_openai::SseParser::kMaxLineBytes) + " bytes";
      if (x_) x_->cancel();
    }
  }

  void event(std::string_view data) {
    if (bad_stream_ || data == "[DONE]") return;
    StreamEvent e = parse_stream_event(data);
    switch (e.kind) {
      case StreamEvent::Kind::delta: {
        partial_ += e.text;
        cap_transcript(partial_);
        providers::AsrResult r;
        r.transcript = partial_;
        r.end_ms = duration_ms_;
        deliver_result(std::move(r));
        break;
      }
      case StreamEvent::Kind::done:
        final_ = std::move(e.usage);
        final_->text = std::move(e.text);
        final_->ok = true;
        break;
      case StreamEvent::Kind::other:
        break;
      case StreamEvent::Kind::malformed:
        bad_stream_ = true;
        stream_error_ = "a malformed event";
        if (x_) x_->cancel();
        break;
    }
  }

  void done(const net::HttpDone& d) {
    x_.reset();
    if (d.cancelled && !bad_stream_) return end({StreamStatus::kCancelled, "cancelled"});
    if (bad_stream_) return failed(StreamStatus::kInternal, "answered with " + stream_error_);
    if (!d.complete) {
      return failed(d.error.find("within") != std::string::npos ||
                            d.error.find("stalled") != std::string::npos
                        ? StreamStatus::kDeadlineExceeded
                        : StreamStatus::kUnavailable,
                    d.error);
    }
    if (d.status != 200) {
      return failed(providers::status_from_http(d.status),
                    "HTTP " + std::to_string(d.status) + ": " + error_message(answer_));
    }
    Transcript t;
    if (streaming_) {
      if (!final_)
        return failed(StreamStatus::kInternal,
                      "the event stream ended without transcript.text.done");
      t = std::move(*final_);
    } else {
      t = parse_transcript(answer_, head_.content_type, st_->options.no_speech_threshold);
      if (!t.ok) return failed(StreamStatus::kInternal, t.error);
    }
    deliver_final(t);
  }

  void deliver_final(const Transcript& t) {
    const auto& o = st_->options;
    if (is_empty_transcript(t.text)) {
      st_->counters.dropped_empty.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("{}: an answer without words dropped: \"{}\"", st_->log_name,
                    logtext::log_text(t.text));
      return end({});
    }
    if (voiced_ms_ < static_cast<std::uint64_t>(o.hallucination_guard.count()) &&
        is_known_phrase(t.text, o.hallucinations)) {
      st_->counters.dropped_phrases.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("{}: \"{}\" from {} ms of voiced audio dropped (a known hallucination)",
                    st_->log_name, logtext::log_text(t.text), voiced_ms_);
      return end({});
    }
    providers::AsrResult r;
    r.transcript = t.text;
    cap_transcript(r.transcript);
    r.is_final = true;
    r.stability = 1;
    r.end_ms = duration_ms_;
    deliver_result(std::move(r));
    end({});
  }

  void failed(int code, const std::string& why) {
    st_->counters.failed.fetch_add(1, std::memory_order_relaxed);
    end({code, st_->log_name + ": " + why});
  }

  void deliver_result(providers::AsrResult r) {
    post_([ev = &ev_, keep = shared_from_this(), r = std::move(r)] {
      if (ev->result) ev->result(r);
    });
  }

  void end(StreamStatus st) {
    if (ended_) return;
    ended_ = true;
    post_([keep = shared_from_this(), st = std::move(st)] {
      if (keep->ev_.closed) keep->ev_.closed(st);
      keep->ev_ = {};
    });
  }

  std::shared_ptr<State> st_;
  std::shared_ptr<net::HttpPool> pool_;
  providers::Poster post_;
  providers::AsrEvents ev_;
  TranscriptionRequest req_;
  int rate_;
  std::shared_ptr<net::HttpExchange> x_;
  net::HttpResponseHead head_;
  std::string answer_;
  llm_openai::SseParser sse_;
  std::string partial_;
  std::optional<Transcript> final_;
  std::string stream_error_;
  std::uint32_t duration_ms_ = 0;
  std::uint64_t voiced_ms_ = 0;
  bool streaming_ = false;
  bool bad_stream_ = false;
  bool ended_ = false;
};

/// One utterance as the pipeline holds it (the call's thread): the audio is kept here until
/// finish() hands it to the io thread.
class UtteranceStream final : public providers::AsrStream {
 public:
  UtteranceStream(std::shared_ptr<Request> req, asio::any_io_executor ex, bool mulaw, int rate,
                  std::size_t max_samples, TranscriptionCounters& counters)
      : req_(std::move(req)),
        ex_(std::move(ex)),
        mulaw_(mulaw),
        max_samples_(max_samples),
        counters_(counters) {
    pcm_.reserve(static_cast<std::size_t>(rate) * 4);  // 4 s; doubles beyond
  }

  ~UtteranceStream() override {
    if (!finished_) cancel();
  }

  bool send_audio(std::span<const std::uint8_t> bytes) override {
    if (finished_) return false;
    const std::size_t n = mulaw_ ? bytes.size() : bytes.size() / 2;
    if (pcm_.size() + n > max_samples_) {
      ++dropped_;
      counters_.dropped_audio.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    const std::size_t at = pcm_.size();
    pcm_.resize(at + n);
    if (mulaw_) {
      audio::ulaw_decode(bytes, std::span<std::int16_t>(pcm_.data() + at, n));
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        pcm_[at + i] =
            static_cast<std::int16_t>(static_cast<std::uint16_t>(bytes[2 * i]) |
                                      (static_cast<std::uint16_t>(bytes[2 * i + 1]) << 8));
      }
    }
    return true;
  }

  void finish() override {
    if (finished_) return;
    finished_ = true;
    asio::post(ex_, [r = req_, pcm = std::move(pcm_)]() mutable { r->run(std::move(pcm)); });
  }

  void cancel() override {
    finished_ = true;
    asio::post(ex_, [r = req_] { r->cancel(); });
  }

  std::uint64_t dropped() const override { return dropped_; }

 private:
  std::shared_ptr<Request> req_;
  asio::any_io_executor ex_;
  bool mulaw_;
  std::size_t max_samples_;
  TranscriptionCounters& counters_;
  std::vector<std::int16_t> pcm_;
  bool finished_ = false;
  std::uint64_t dropped_ = 0;
};

}  // namespace

TranscriptionBackend::TranscriptionBackend(TranscriptionOptions options)
    : PartialClients("transcription " + options.name, "speech recognition"),
      state_(std::make_shared<State>(std::move(options))) {}

TranscriptionBackend::~TranscriptionBackend() {
  // Calls have ended before the server drops its backends; what is still in flight is given
  // a moment, then the threads stop.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (state_->open.load() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  state_->http.stop();
}

std::shared_ptr<providers::AsrStream> TranscriptionBackend::open_asr(
    const providers::ProviderTarget&, const asr::v1::RecognitionConfig& config,
    providers::Poster post, providers::AsrEvents events, std::size_t) {
  const auto enc = config.format().encoding();
  if (enc != common::v1::LINEAR16 && enc != common::v1::MULAW) {
    throw std::runtime_error(state_->log_name + " takes LINEAR16 or MULAW audio");
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
  state_->counters.utterances.fetch_add(1, std::memory_order_relaxed);
  const std::vector<std::string> hints(config.phrase_hints().begin(), config.phrase_hints().end());
  const auto& pool = state_->http.next();
  auto req = std::make_shared<Request>(state_, pool, std::move(post), std::move(events),
                                       make_request(o, config.language(), hints), rate);
  const auto max_samples =
      static_cast<std::size_t>(o.max_utterance.count()) * static_cast<std::size_t>(rate) / 1000;
  return std::make_shared<UtteranceStream>(std::move(req), pool->executor(),
                                           enc == common::v1::MULAW, rate, max_samples,
                                           state_->counters);
}

const TranscriptionOptions& TranscriptionBackend::options() const {
  return state_->options;
}
const TranscriptionCounters& TranscriptionBackend::counters() const {
  return state_->counters;
}
std::size_t TranscriptionBackend::sessions() const {
  return state_->open.load();
}
net::HttpPoolCounters TranscriptionBackend::http_counters() const {
  return state_->http.counters();
}

}  // namespace voxbridge::asr_openai
