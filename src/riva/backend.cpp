#include "voxbridge/riva/backend.hpp"

#include <algorithm>
#include <deque>
#include <stdexcept>

#include "vendor/riva/riva_asr.grpc.pb.h"
#include "vendor/riva/riva_tts.grpc.pb.h"
#include "voxbridge/providers/provider.hpp"
#include "voxbridge/providers/stream.hpp"
#include "voxbridge/providers/vendor_grpc.hpp"

namespace voxbridge::riva {

namespace ra = nvidia::riva::asr;
namespace rt = nvidia::riva::tts;

namespace {
constexpr std::size_t kMaxTextBytes = 4096;
constexpr std::int64_t kMaxOffsetMs = 24LL * 3600 * 1000;

std::uint32_t clamp_ms(std::int64_t ms) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(ms, 0, kMaxOffsetMs));
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

providers::ProviderTarget service_target(const RivaOptions& o, const std::string& function_id) {
  providers::ProviderTarget t;
  t.name = o.name;
  t.address = o.address;
  t.tls = o.tls;
  t.ca_file = o.ca_file;
  if (!o.api_key.empty()) t.metadata.emplace_back("authorization", "Bearer " + o.api_key);
  if (!function_id.empty()) t.metadata.emplace_back("function-id", function_id);
  return t;
}
}  // namespace

struct RivaBackend::State {
  RivaOptions options;
  std::string log_name;
  providers::ProviderTarget asr_target, tts_target;
  providers::ChannelPool channels;
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<std::atomic<std::size_t>> open = std::make_shared<std::atomic<std::size_t>>(0);
  RivaCounters counters;
};

namespace {

// --- recognition ---

using AsrRpc = providers::BidiStream<ra::StreamingRecognizeRequest, ra::StreamingRecognizeResponse>;

/// One utterance's responses, mapped on the call's thread.
struct AsrMapper {
  providers::AsrEvents events;
  bool end_on_final = true;
  bool ended = false;

  void on_response(const ra::StreamingRecognizeResponse& r) {
    for (const auto& res : r.results()) {
      if (res.alternatives_size() == 0 || res.channel_tag() > 1) continue;  // mono: channel 0/1
      const auto& a = res.alternatives(0);
      providers::AsrResult out;
      out.transcript = trimmed(a.transcript());
      if (out.transcript.empty()) continue;
      providers::cap_text(out.transcript, kMaxTextBytes);
      out.is_final = res.is_final();
      out.stability = res.is_final() ? 1.0f : std::clamp(res.stability(), 0.0f, 1.0f);
      out.confidence = res.is_final() ? std::clamp(a.confidence(), 0.0f, 1.0f) : 0.0f;
      if (a.words_size() > 0) {
        out.start_ms = clamp_ms(a.words(0).start_time());
        out.end_ms = std::max(out.start_ms, clamp_ms(a.words(a.words_size() - 1).end_time()));
      } else if (res.audio_processed() > 0) {
        out.end_ms = clamp_ms(static_cast<std::int64_t>(res.audio_processed() * 1000.0f));
      }
      if (events.result) events.result(out);
      if (out.is_final && end_on_final && !ended) {
        ended = true;
        if (events.end_of_utterance) events.end_of_utterance(out.end_ms);
      }
    }
  }
};

class RivaAsr final : public providers::AsrStream {
 public:
  RivaAsr(std::shared_ptr<AsrRpc> rpc, int rate, int bytes_per_sample, RivaCounters& counters)
      : rpc_(std::move(rpc)),
        rate_(rate),
        bytes_per_sample_(bytes_per_sample),
        counters_(counters) {}
  bool send_audio(std::span<const std::uint8_t> bytes) override {
    // An empty message is no audio (vosk-server fails the RPC on one: a division by its length).
    if (bytes.empty()) return true;
    ra::StreamingRecognizeRequest m;
    m.set_audio_content(bytes.data(), bytes.size());
    if (!rpc_->send(std::move(m))) return false;
    counters_.asr_audio_ms.fetch_add(bytes.size() / static_cast<unsigned>(bytes_per_sample_) *
                                         1000 / static_cast<unsigned>(rate_),
                                     std::memory_order_relaxed);
    return true;
  }
  void finish() override { rpc_->finish(); }
  void cancel() override { rpc_->cancel(); }
  std::uint64_t dropped() const override { return rpc_->dropped(); }

 private:
  std::shared_ptr<AsrRpc> rpc_;
  int rate_;
  int bytes_per_sample_;
  RivaCounters& counters_;
};

// --- voice ---

using TtsRpc = providers::BidiStream<rt::SynthesizeSpeechRequest, rt::SynthesizeSpeechResponse>;

/// One reply: its sentences, one SynthesizeOnline RPC each, in order. Everything but the
/// constructor runs on the call's thread (the methods, and the RPCs' posted events).
class RivaReply final : public providers::TtsStream,
                        public std::enable_shared_from_this<RivaReply> {
 public:
  RivaReply(std::shared_ptr<RivaBackend::State> state, std::shared_ptr<void> slot,
            providers::ProviderTarget target, providers::Poster post, providers::TtsEvents events,
            std::string voice, std::string language, int rate, std::size_t max_queued)
      : state_(std::move(state)),
        slot_(std::move(slot)),
        target_(std::move(target)),
        post_(std::move(post)),
        events_(std::move(events)),
        voice_(std::move(voice)),
        language_(std::move(language)),
        rate_(rate),
        max_queued_(max_queued) {}

  bool send_text(const std::string& text, std::uint64_t chunk_id) override {
    if (finishing_ || ended_) return false;
    if (pending_.size() >= max_queued_) return false;
    pending_.emplace_back(text, chunk_id);
    providers::cap_text(pending_.back().first, kMaxTextBytes);
    schedule();
    return true;
  }

  void finish() override {
    if (finishing_ || ended_) return;
    finishing_ = true;
    schedule();
  }

  void cancel() override {
    if (ended_ || cancelled_) return;
    cancelled_ = true;
    pending_.clear();
    if (rpc_) {
      rpc_->cancel();  // its closed handler ends the reply, cancelled
    } else {
      schedule();
    }
  }

  void pause_reads() override {
    paused_ = true;
    if (rpc_) rpc_->pause_reads();
  }
  void resume_reads() override {
    paused_ = false;
    if (rpc_) rpc_->resume_reads();
  }

 private:
  /// Runs pump() later, on the call's thread: handlers never run inside a method.
  void schedule() {
    if (scheduled_) return;
    scheduled_ = true;
    post_([self = shared_from_this()] {
      self->scheduled_ = false;
      self->pump();
    });
  }

  void end(const providers::StreamStatus& st) {
    if (ended_) return;
    ended_ = true;
    slot_.reset();
    if (!st.ok() && !st.cancelled())
      state_->counters.failed.fetch_add(1, std::memory_order_relaxed);
    if (events_.closed) events_.closed(st);
  }

  /// Starts the next sentence, or ends the reply when there is none and no more will come.
  void pump() {
    if (rpc_ || ended_) return;
    if (cancelled_) return end({providers::StreamStatus::kCancelled, "cancelled"});
    while (!pending_.empty()) {
      auto [text, id] = std::move(pending_.front());
      pending_.pop_front();
      if (trimmed(text).empty()) {  // nothing to say: done at once
        chunk_done(id, 0);
        if (ended_ || rpc_) return;
        continue;
      }
      return start(std::move(text), id);
    }
    if (finishing_) end({});
  }

  void chunk_done(std::uint64_t id, std::uint64_t bytes) {
    tts::v1::SynthesizeResponse r;
    r.mutable_chunk_done()->set_chunk_id(id);
    r.mutable_chunk_done()->set_audio_ms(
        static_cast<std::uint32_t>(bytes / 2 * 1000 / static_cast<unsigned>(rate_)));
    if (events_.response) events_.response(r);
  }

  void start(std::string text, std::uint64_t id) {
    auto& c = state_->counters;
    if (!state_->channel) return end({providers::StreamStatus::kUnavailable, "shutting down"});
    c.sentences.fetch_add(1, std::memory_order_relaxed);
    c.characters.fetch_add(text.size(), std::memory_order_relaxed);
    rt::SynthesizeSpeechRequest req;
    req.set_text(std::move(text));
    req.set_language_code(language_);
    req.set_encoding(nvidia::riva::LINEAR_PCM);
    req.set_sample_rate_hz(rate_);
    req.set_voice_name(voice_);
    current_id_ = id;
    current_bytes_ = 0;
    odd_ = false;
    const std::weak_ptr<RivaReply> w = weak_from_this();
    const std::uint64_t gen = ++gen_;
    auto stub = std::shared_ptr<rt::RivaSpeechSynthesis::Stub>(
        rt::RivaSpeechSynthesis::NewStub(state_->channel));
    rpc_ = TtsRpc::start([stub](grpc::ClientContext* ctx,
                                TtsRpc::Reactor* r) { stub->async()->SynthesizeOnline(ctx, r); },
                         stub, target_, std::move(req), post_,
                         [w, gen](rt::SynthesizeSpeechResponse& r) {
                           if (auto self = w.lock(); self && self->gen_ == gen) self->on_audio(r);
                         },
                         [w, gen](const grpc::Status& st) {
                           if (auto self = w.lock(); self && self->gen_ == gen)
                             self->on_rpc_closed(st);
                         },
                         1);
    rpc_->finish();  // one request, then the half-close (Riva 2.x's shape)
    if (paused_) rpc_->pause_reads();
  }

  void on_audio(rt::SynthesizeSpeechResponse& r) {
    std::string& audio = *r.mutable_audio();
    if (audio.empty()) return;
    current_bytes_ += audio.size();
    state_->counters.tts_audio_ms.fetch_add(audio.size() * 500 / static_cast<unsigned>(rate_),
                                            std::memory_order_relaxed);
    // Whole 16-bit samples only: a byte left over waits for the next piece.
    tts::v1::SynthesizeResponse out;
    std::string& pcm = *out.mutable_audio();
    if (odd_) {
      pcm.reserve(audio.size() + 1);
      pcm.push_back(odd_byte_);
      pcm.append(audio);
    } else {
      pcm = std::move(audio);
    }
    odd_ = pcm.size() % 2 != 0;
    if (odd_) {
      odd_byte_ = pcm.back();
      pcm.pop_back();
    }
    if (!pcm.empty() && events_.response) events_.response(out);
  }

  void on_rpc_closed(const grpc::Status& st) {
    rpc_.reset();
    if (cancelled_) return end({providers::StreamStatus::kCancelled, "cancelled"});
    if (!st.ok()) return end(providers::status_of(st));
    chunk_done(current_id_, current_bytes_);
    pump();
  }

  std::shared_ptr<RivaBackend::State> state_;
  std::shared_ptr<void> slot_;
  const providers::ProviderTarget target_;
  const providers::Poster post_;
  providers::TtsEvents events_;
  const std::string voice_, language_;
  const int rate_;
  const std::size_t max_queued_;
  std::deque<std::pair<std::string, std::uint64_t>> pending_;
  std::shared_ptr<TtsRpc> rpc_;
  std::uint64_t gen_ = 0, current_id_ = 0, current_bytes_ = 0;
  bool odd_ = false;
  char odd_byte_ = 0;
  bool finishing_ = false, cancelled_ = false, ended_ = false, paused_ = false, scheduled_ = false;
};

}  // namespace

RivaBackend::RivaBackend(RivaOptions options)
    : PartialClients("riva-" + options.name, "speech recognition and synthesis"),
      state_(std::make_shared<State>()) {
  state_->options = std::move(options);
  const auto& o = state_->options;
  state_->log_name = "riva-" + o.name;
  state_->asr_target = service_target(o, o.asr_function_id);
  state_->tts_target = service_target(o, o.tts_function_id);
  state_->channel = state_->channels.get(state_->asr_target);  // throws for an unreadable CA file
}

RivaBackend::~RivaBackend() {
  state_->channel.reset();
  state_->channels.wait_unused(std::chrono::seconds(2));
}

std::shared_ptr<providers::AsrStream> RivaBackend::open_asr(
    const providers::ProviderTarget& target, const asr::v1::RecognitionConfig& config,
    providers::Poster post, providers::AsrEvents events, std::size_t max_queued) {
  nvidia::riva::AudioEncoding enc;
  int bytes_per_sample = 1;
  switch (config.format().encoding()) {
    case common::v1::LINEAR16:
      enc = nvidia::riva::LINEAR_PCM;
      bytes_per_sample = 2;
      break;
    case common::v1::MULAW:
      enc = nvidia::riva::MULAW;
      break;
    case common::v1::ALAW:
      enc = nvidia::riva::ALAW;
      break;
    default:
      throw std::runtime_error(state_->log_name +
                               " takes LINEAR16, MULAW or ALAW: set asr_encoding = linear16 or "
                               "mulaw");
  }
  const int rate = static_cast<int>(config.format().sample_rate_hz());
  if (rate < 8000 || rate > 48000) {
    throw std::runtime_error(state_->log_name + ": a sample rate of 8000 to 48000 Hz");
  }
  const auto& o = state_->options;
  auto slot = providers::SessionSlot::admit(state_->open, o.max_sessions, state_->log_name);
  state_->counters.utterances.fetch_add(1, std::memory_order_relaxed);

  ra::StreamingRecognizeRequest first;
  auto* sc = first.mutable_streaming_config();
  sc->set_interim_results(config.interim_results());
  auto* rc = sc->mutable_config();
  rc->set_encoding(enc);
  rc->set_sample_rate_hertz(rate);
  rc->set_language_code(o.language.empty() ? config.language() : o.language);
  rc->set_max_alternatives(1);
  rc->set_audio_channel_count(1);
  rc->set_enable_word_time_offsets(true);
  rc->set_enable_automatic_punctuation(o.punctuation);
  rc->set_model(o.asr_model);
  if (config.phrase_hints_size() > 0) {
    auto* ctx = rc->add_speech_contexts();
    for (const auto& h : config.phrase_hints()) ctx->add_phrases(h);
    ctx->set_boost(o.phrase_boost);
  }

  auto mapper = std::make_shared<AsrMapper>();
  mapper->events = std::move(events);
  mapper->end_on_final = o.end_on_final;
  auto stub = std::shared_ptr<ra::RivaSpeechRecognition::Stub>(
      ra::RivaSpeechRecognition::NewStub(state_->channel));
  auto keep = std::make_shared<std::tuple<decltype(stub), decltype(slot), std::shared_ptr<State>>>(
      stub, std::move(slot), state_);
  auto rpc = AsrRpc::start([stub](grpc::ClientContext* c,
                                  AsrRpc::Reactor* r) { stub->async()->StreamingRecognize(c, r); },
                           keep, providers::rpc_target(state_->asr_target, target),
                           std::move(first), std::move(post),
                           [mapper](ra::StreamingRecognizeResponse& r) { mapper->on_response(r); },
                           [mapper, counters = &state_->counters](const grpc::Status& st) {
                             if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED) {
                               counters->failed.fetch_add(1, std::memory_order_relaxed);
                             }
                             if (mapper->events.closed)
                               mapper->events.closed(providers::status_of(st));
                           },
                           max_queued);
  return std::make_shared<RivaAsr>(std::move(rpc), rate, bytes_per_sample, state_->counters);
}

std::shared_ptr<providers::TtsStream> RivaBackend::open_tts(const providers::ProviderTarget& target,
                                                            const tts::v1::SynthesisConfig& config,
                                                            providers::Poster post,
                                                            providers::TtsEvents events,
                                                            std::size_t max_queued) {
  if (config.format().encoding() != common::v1::LINEAR16) {
    throw std::runtime_error(state_->log_name + " gives LINEAR16 audio");
  }
  const int rate = static_cast<int>(config.format().sample_rate_hz());
  if (rate < 8000 || rate > 48000) {
    throw std::runtime_error(state_->log_name + ": a sample rate of 8000 to 48000 Hz");
  }
  const auto& o = state_->options;
  auto slot = providers::SessionSlot::admit(state_->open, o.max_sessions, state_->log_name);
  state_->counters.replies.fetch_add(1, std::memory_order_relaxed);
  return std::make_shared<RivaReply>(
      state_, std::move(slot), providers::rpc_target(state_->tts_target, target), std::move(post),
      std::move(events), config.voice().empty() ? o.voice : config.voice(),
      o.language.empty() ? config.language() : o.language, rate,
      std::max<std::size_t>(max_queued, 1));
}

const RivaOptions& RivaBackend::options() const {
  return state_->options;
}
const RivaCounters& RivaBackend::counters() const {
  return state_->counters;
}
std::size_t RivaBackend::sessions() const {
  return state_->open->load();
}

}  // namespace voxbridge::riva
