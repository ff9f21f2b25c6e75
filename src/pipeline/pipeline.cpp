#include "voxbridge/pipeline/pipeline.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <optional>

#include "voxbridge/audio/g711.hpp"
#include "voxbridge/audio/opus.hpp"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/llm/v1/llm.grpc.pb.h"
#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/pipeline/action_event.hpp"
#include "voxbridge/providers/asr_client.hpp"
#include "voxbridge/providers/stream.hpp"
#include "voxbridge/tts/v1/tts.grpc.pb.h"

namespace voxbridge::pipeline {

namespace {

using Clock = std::chrono::steady_clock;
using TtsStream = providers::BidiStream<tts::v1::SynthesizeRequest, tts::v1::SynthesizeResponse>;
using LlmStream = providers::ReadStream<llm::v1::TurnResponse>;
constexpr int kTickMs = 20;

double ms_between(Clock::time_point a, Clock::time_point b) {
  if (a == Clock::time_point{} || b == Clock::time_point{}) return -1;
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string ms_text(double v) {
  return v < 0 ? "-" : fmt::format("{:.0f}", v);
}

/// A duration for an event: whole milliseconds, or nullopt when a milestone is missing.
std::optional<std::int64_t> whole_ms(double v) {
  if (v < 0) return std::nullopt;
  return std::llround(v);
}

std::size_t word_count(std::string_view s) {
  std::size_t n = 0;
  bool in = false;
  for (char c : s) {
    const bool space = c == ' ' || c == '\t' || c == '\n';
    if (!space && !in) ++n;
    in = !space;
  }
  return n;
}

/// A 10 ms block whose peak stays under this (-50 dBFS) holds no voice, whatever the VAD's
/// hangover says: digital silence, a muted phone, a quiet line.
constexpr std::int16_t kHushPeak = 100;

std::int16_t peak_of(std::span<const std::int16_t> x) {
  int p = 0;
  for (const std::int16_t s : x) p = std::max(p, std::abs(static_cast<int>(s)));
  return static_cast<std::int16_t>(std::min(p, 32767));
}

class PipelineAgent final : public agent::Agent {
 public:
  PipelineAgent(std::shared_ptr<const PipelineSpec> spec, int rate_hz, int quality,
                std::shared_ptr<providers::ChannelPool> channels)
      : spec_(std::move(spec)),
        rate_hz_(rate_hz),
        quality_(quality),
        channels_(std::move(channels)),
        n10_(static_cast<std::size_t>(rate_hz / 100)),
        detector_(spec_->detector),
        pre_roll_(static_cast<std::size_t>(spec_->pre_roll.count() * rate_hz / 1000)),
        src_rate_(rate_hz),
        to_asr_(rate_hz, spec_->asr_rate_hz, quality),
        asr_rate_(spec_->asr_rate_hz),
        from_tts_(spec_->tts_rate_hz, rate_hz, quality, false),
        far_peaks_(kFarBlocks, 0) {
    replay_.reserve(static_cast<std::size_t>(spec_->asr_replay.count()) *
                    static_cast<std::size_t>(spec_->asr_rate_hz) / 1000);
  }

  // A call torn down without on_end (the server stopping) still ends its streams: they must
  // not outlive the server's channels (see ChannelPool::wait_unused).
  ~PipelineAgent() override {
    if (asr_) asr_->cancel();
    if (llm_) llm_->cancel();
    if (tts_) tts_->cancel();
  }

  void on_start(agent::CallControl& control, const agent::CallInfo& info) override {
    control_ = &control;
    poster_ = control.poster();
    info_ = info;
    m_ = info.metrics;
    call_start_ = Clock::now();
    if (m_ != nullptr) {
      auto& slots = metrics::provider_slots();
      asr_slot_ = slots.slot(spec_->asr.name);
      llm_slot_ = slots.slot(spec_->llm.name);
      tts_slot_ = slots.slot(spec_->tts.name);
    }
    call_.set_call_id(info.uuid);
    call_.set_listener(info.listener);
    call_.set_language(spec_->language);
    apply_channel_facts();
    if (spec_->greeting_prompt && !spec_->greeting_prompt->empty()) {
      begin_reply();
      reply_->llm_done = true;
      out_.assign(spec_->greeting_prompt->begin(), spec_->greeting_prompt->end());
      feed_playout();
    } else if (!spec_->greeting.empty()) {
      begin_reply();
      reply_->llm_done = true;
      const std::string greeting = fill_placeholders(spec_->greeting, info);
      reply_->text = greeting;
      speak(greeting);
      finish_speaking();
      history_.add(llm::v1::ASSISTANT, greeting);
    } else {
      listening_since_ = tick_;
    }
  }

  void on_leg_audio(std::span<const std::int16_t> samples, int rate_hz) override {
    if (rate_hz != leg_rate_) use_leg_rate(rate_hz);
    leg_ = samples;
  }

  void on_audio(std::span<const std::int16_t> samples) override {
    const auto leg = std::exchange(leg_, {});
    if (ending_) return;
    if (!vad_) vad_.emplace(vad_options(rate_hz_));
    // The VAD and the recognizer take the leg's own audio where its rate is theirs: no
    // resampling there and back (and none of its filter delay before the endpoint).
    const bool vad_on_leg = vad_on_leg_ && !leg.empty();
    const std::span<const std::int16_t> heard = vad_on_leg ? leg : samples;
    const std::span<const std::int16_t> to_asr = asr_on_leg_ && !leg.empty() ? leg : samples;
    const std::size_t v10 = vad_->frame_samples();
    bool voiced = false;
    bool hushed = false;
    for (std::size_t k = 0; (k + 1) * v10 <= heard.size(); ++k) {
      const auto block = heard.subspan(k * v10, v10);
      voiced = vad_->process(block) > 0;
      hushed = peak_of(block) < kHushPeak;
      if (voiced && agent_audible()) {
        // Double talk or echo? The agent's own voice comes back from the line weaker than it
        // left; only the caller speaking over it passes (peaks at the internal rate, as the
        // agent's are kept).
        const std::size_t at = std::min(k * n10_, samples.size());
        voiced = peak_of(samples.subspan(at, std::min(n10_, samples.size() - at))) >
                 spec_->echo_ratio * far_peak();
      }
      const auto ev = detector_.update(voiced);
      if (ev == vad::SpeechDetector::Event::started) on_speech_started();
      if (ev == vad::SpeechDetector::Event::ended) on_speech_ended();
      // Barge-in counts the caller's voice heard over the agent, not speech that began before
      // the agent did (the endpointing silence of the previous utterance is still "speech").
      if (detector_.in_speech() && agent_audible()) {
        if (voiced && overlap_units_++ == 0) overlap_started_ = Clock::now();
      } else {
        overlap_units_ = 0;
      }
    }
    if (spec_->barge_in && reply_ && !reply_->interrupted &&
        overlap_units_ * 10 >= spec_->barge_in_after.count()) {
      barge_in("caller spoke over the agent for " + std::to_string(overlap_units_ * 10) + " ms");
    }
    if (asr_ && asr_streaming_) {
      send_to_asr(to_asr);
      // Silence goes out at once: the recognizer's endpointer counts it, so holding it for a
      // full asr_chunk would delay the final transcript by up to a chunk. The VAD holds on to
      // "voiced" for a while after the voice stops (its hangover), so a frame that is hushed
      // by level counts as silence here too. (Opus packets are whole frames: they wait.)
      if ((!voiced || hushed) && spec_->asr_encoding != AsrEncoding::opus) flush_asr();
    } else if (asr_retry_at_ != kNever && !retry_speech_ended_) {
      keep_for_retry(to_asr);  // the utterance goes on while its ASR stream is retried
    } else {
      pre_roll_.push(to_asr);
    }
  }

  std::string_view state() const override {
    if (failed_) return "fallback";
    if (reply_) return control_->queued_samples() > 0 ? "speaking" : "thinking";
    if (hearing()) return "hearing";
    return "listening";
  }

  void on_dtmf(char digit) override {
    if (ending_) return;
    if (spec_->dtmf == DtmfMode::event) {
      digits_event(std::string(1, digit));
      return;
    }
    if (digit == spec_->dtmf_terminator) {
      if (!digits_.empty()) digits_event(std::exchange(digits_, {}));
      return;
    }
    digits_.push_back(digit);
    digits_since_ = tick_;
    if (digits_.size() >= spec_->dtmf_max_digits) digits_event(std::exchange(digits_, {}));
  }

  void on_tick() override {
    ++tick_;
    if (first_frame_due_) {
      // This tick took the reply's first frame from the queue: it is on its way to the caller.
      first_frame_due_ = false;
      if (reply_) {
        reply_->timeline.first_frame = Clock::now();
        if (!first_audio_counted_ && m_ != nullptr) {
          first_audio_counted_ = true;
          m_->first_agent_audio.observe(reply_->timeline.first_frame - call_start_);
        }
      }
    }
    if (llm_retry_at_ != kNever && tick_ >= llm_retry_at_ && reply_) {
      llm_retry_at_ = kNever;
      open_llm();
    }
    if (tts_retry_at_ != kNever && tick_ >= tts_retry_at_ && reply_) retry_tts();
    if (asr_retry_at_ != kNever && tick_ >= asr_retry_at_) retry_asr();
    feed_playout();
    if (!digits_.empty() && (tick_ - digits_since_) * kTickMs >=
                                static_cast<std::uint64_t>(spec_->dtmf_timeout.count())) {
      digits_event(std::exchange(digits_, {}));
    }
    if (reply_ && reply_complete()) end_reply();
    if (hangup_when_drained_ && !reply_ && out_.empty() && control_->queued_samples() == 0) {
      hangup_when_drained_ = false;
      control_->hangup(hangup_reason_, true);
      return;
    }
    if (transfer_when_drained_ && !reply_ && out_.empty() && control_->queued_samples() == 0) {
      // The words before the transfer ("Let me put you through") have been heard: go.
      const common::v1::Action a = std::move(*transfer_when_drained_);
      transfer_when_drained_.reset();
      if (info_.actions) {
        run_action(a);
      } else {
        transfer_without_control(a);
      }
    }
    if (!ending_ && !reply_ && !hearing() && !detector_.in_speech() && listening_since_ != kNever &&
        (tick_ - listening_since_) * kTickMs >=
            static_cast<std::uint64_t>(spec_->no_input_timeout.count())) {
      listening_since_ = kNever;
      ++no_input_;
      if (no_input_ > spec_->max_no_input) {
        begin_reply();
        reply_->llm_done = true;
        speak(spec_->goodbye);
        finish_speaking();
        hangup_after_reply("no input");
      } else {
        llm::v1::Event e;
        e.mutable_no_input()->set_count(static_cast<std::uint32_t>(no_input_));
        pending_events_.push_back(e);
        start_turn("");
      }
    }
  }

  void on_end(std::string_view) override {
    ending_ = true;
    alive_.reset();
    if (asr_) asr_dropped_ += asr_->dropped();
    if (asr_dropped_ > 0 || dropped_tts_samples_ > 0) {
      spdlog::warn("call uuid={}: slow providers: {} ASR messages and {} ms of TTS audio dropped",
                   info_.uuid, asr_dropped_,
                   dropped_tts_samples_ * 1000 / static_cast<unsigned>(rate_hz_));
    }
    if (asr_) asr_->cancel();
    cancel_reply_streams();
  }

 private:
  static constexpr std::uint64_t kNever = ~0ull;
  static constexpr std::size_t kFarBlocks = 1024;  // 10 ms peaks of what was queued (10 s)

  struct Chunk {
    std::uint64_t id;
    std::string text;
    std::uint32_t done_ms = 0;  // audio of the reply up to this chunk's end (0 = not yet)
  };
  struct Reply {
    std::uint64_t gen = 0;
    bool llm_done = false;
    bool tts_done = true;  // no TTS stream yet
    bool interrupted = false;
    bool text_cut = false;  // the model wrote more than kMaxReplyBytes
    std::string text;
    std::vector<Chunk> chunks;
    std::uint64_t pushed_samples = 0;  // reply audio handed to playout
    TurnTimeline timeline;
    std::string user_text;
  };

  // --- helpers that deliver gRPC events on the call's thread, only while it lives ---
  template <class F>
  auto guarded(F f) {
    return [w = std::weak_ptr<int>(alive_), f = std::move(f)](auto&&... args) mutable {
      if (w.lock()) f(std::forward<decltype(args)>(args)...);
    };
  }
  providers::Poster post_fn() const { return poster_; }

  /// The provider as configured, with the pipeline's RPC deadline if it sets none: no stream
  /// or turn can hang a call.
  static providers::ProviderTarget bounded(const providers::ProviderTarget& t,
                                           std::chrono::milliseconds deadline) {
    providers::ProviderTarget b = t;
    if (b.deadline.count() == 0) b.deadline = deadline;
    return b;
  }

  bool agent_audible() const {
    return (reply_ && reply_->pushed_samples > 0) || control_->queued_samples() > 0;
  }

  double far_peak() const {
    // Blocks of 10 ms, indexed by their position in everything queued for playout; the one
    // playing now is (pushed - queued) / block.
    const std::uint64_t playing = (pushed_total_ - control_->queued_samples()) / n10_;
    const std::uint64_t span = static_cast<std::uint64_t>(spec_->echo_window.count() / 10);
    std::int16_t p = 0;
    for (std::uint64_t b = playing > span ? playing - span : 0; b <= playing && b < far_blocks_;
         ++b) {
      p = std::max(p, far_peaks_[b % kFarBlocks]);
    }
    return p;
  }

  vad::VadOptions vad_options(int rate_hz) const {
    return vad::VadOptions{rate_hz, spec_->vad.aggressiveness, spec_->vad.noise_suppression,
                           spec_->vad.narrowband};
  }

  /// The caller's leg carries `rate` (its first audio, or a format change): the VAD analyses
  /// 8 kHz legs as they are when it works on the telephone band anyway, and the recognizer is
  /// fed the leg's audio when it gets the leg's rate (it never gets more than the leg has).
  void use_leg_rate(int rate) {
    leg_rate_ = rate;
    const bool vad_leg = spec_->vad.narrowband && rate == 8000;
    if (!vad_ || vad_leg != vad_on_leg_) {
      vad_on_leg_ = vad_leg;
      vad_.emplace(vad_options(vad_leg ? rate : rate_hz_));
    }
    asr_on_leg_ = rate <= spec_->asr_rate_hz;
    const int src = asr_on_leg_ ? rate : rate_hz_;
    if (src != src_rate_) {
      src_rate_ = src;
      pre_roll_ = vad::PreRoll(static_cast<std::size_t>(spec_->pre_roll.count() * src / 1000));
      to_asr_ = audio::Resampler(src_rate_, asr_rate_, quality_);
      replay_whole_ = false;  // what was kept came at the old rate
    }
  }

  // --- listening ---
  void on_speech_started() {
    listening_since_ = kNever;
    if (hearing()) return;  // still finishing the previous utterance (or retrying its stream)
    open_asr();
  }

  /// An ASR stream is open, or about to be reopened for the current utterance.
  bool hearing() const { return asr_ != nullptr || asr_retry_at_ != kNever; }

  void on_speech_ended() {
    if (asr_retry_at_ != kNever && !retry_speech_ended_) {
      retry_speech_ended_ = true;  // the retry sends the utterance and finishes at once
      speech_end_ = Clock::now();
      return;
    }
    if (!asr_ || !asr_streaming_) return;
    asr_streaming_ = false;
    speech_end_ = Clock::now();
    flush_asr();
    asr_->finish();
  }

  void open_asr() {
    if (!start_asr_stream(kAsrQueue)) return;
    asr_pcm_.clear();
    utterance_.clear();
    speech_end_ = {};
    replay_.clear();
    replay_whole_ = replay_.capacity() > 0;
    pre_roll_.drain(scratch_);
    send_to_asr(scratch_);
  }

  /// Opens an ASR stream for the call's current utterance; false (and the call failed) if it
  /// could not be started.
  bool start_asr_stream(std::size_t max_queued) {
    asr::v1::RecognitionConfig cfg;
    *cfg.mutable_call() = call_;
    cfg.mutable_format()->set_encoding(spec_->asr_encoding == AsrEncoding::opus ? common::v1::OPUS
                                       : spec_->asr_encoding == AsrEncoding::mulaw
                                           ? common::v1::MULAW
                                           : common::v1::LINEAR16);
    const int leg = control_->caller_rate_hz();
    const int rate = leg > 0 ? std::min(spec_->asr_rate_hz, leg) : spec_->asr_rate_hz;
    if (rate != asr_rate_) {
      asr_rate_ = rate;
      to_asr_ = audio::Resampler(src_rate_, rate, quality_);
      replay_whole_ = false;  // what was kept is at the old rate
    }
    cfg.mutable_format()->set_sample_rate_hz(static_cast<std::uint32_t>(asr_rate_));
    if (spec_->asr_encoding == AsrEncoding::opus) {
      opus_ = std::make_unique<audio::OpusEncoderStream>(asr_rate_, spec_->asr_opus_bitrate);
    }
    cfg.set_language(spec_->language);
    cfg.set_interim_results(true);
    cfg.set_single_utterance(true);
    for (const auto& h : spec_->phrase_hints) cfg.add_phrase_hints(h);
    const std::uint64_t gen = ++asr_gen_;
    providers::AsrEvents ev;
    ev.result = guarded([this, gen](const providers::AsrResult& r) {
      if (gen != asr_gen_) return;
      if (!r.is_final && spec_->barge_in && spec_->barge_in_words > 0 && reply_ &&
          !reply_->interrupted && agent_audible() &&
          word_count(r.transcript) >= spec_->barge_in_words) {
        barge_in("caller said \"" + r.transcript + "\"");
      }
      if (r.is_final) {
        if (!utterance_.empty()) utterance_ += ' ';
        utterance_ += r.transcript;
        if (!r.transcript.empty()) note(events::user(r.transcript));
      } else if (!r.transcript.empty()) {
        note(events::interim(r.transcript));
      }
    });
    ev.end_of_utterance = guarded([this, gen](std::uint32_t) {
      if (gen == asr_gen_) on_speech_ended();
    });
    ev.closed = guarded([this, gen](const grpc::Status& st) {
      if (gen == asr_gen_) on_asr_closed(st);
    });
    try {
      if (m_ != nullptr) m_->providers[asr_slot_].streams.add();
      asr_ = providers::AsrStream::start(channels_->get(spec_->asr),
                                         bounded(spec_->asr, spec_->max_utterance), cfg, post_fn(),
                                         std::move(ev), max_queued);
    } catch (const std::exception& e) {
      fail(std::string("ASR: ") + e.what());
      return false;
    }
    asr_streaming_ = true;
    return true;
  }

  /// Keeps what is sent to ASR for a retry of this utterance's stream (see asr_replay).
  void remember(std::span<const std::int16_t> pcm) {
    if (!replay_whole_) return;
    if (replay_.size() + pcm.size() > replay_.capacity()) {
      replay_whole_ = false;  // too long to replay: a retry hears only what follows the break
      replay_.clear();
      return;
    }
    replay_.insert(replay_.end(), pcm.begin(), pcm.end());
  }

  /// Caller audio while the utterance's stream is being retried: resampled and kept only.
  void keep_for_retry(std::span<const std::int16_t> samples) {
    if (samples.empty()) return;
    rest_.resize(to_asr_.max_output(samples.size()));
    rest_.resize(to_asr_.process(samples, rest_));
    if (replay_whole_) remember(rest_);
    if (!replay_whole_) held_.insert(held_.end(), rest_.begin(), rest_.end());
  }

  /// The one retry of a stream that broke mid-utterance: a new stream, the utterance from its
  /// start (or what followed the break, if it was too long to keep), then live audio.
  void retry_asr() {
    asr_retry_at_ = kNever;
    const auto chunk = static_cast<std::size_t>(spec_->asr_chunk.count() * asr_rate_ / 1000);
    const std::vector<std::int16_t>& again = replay_whole_ ? replay_ : held_;
    const int rate_before = asr_rate_;
    // Room for all of it at once on top of the usual queue: the provider takes it at its pace.
    if (!start_asr_stream(kAsrQueue + again.size() / std::max<std::size_t>(chunk, 1) + 1)) return;
    spdlog::info("call uuid={}: ASR stream reopened; sending the {} ms of the utterance{}",
                 info_.uuid, again.size() * 1000 / static_cast<std::size_t>(asr_rate_),
                 replay_whole_ ? " from its start" : " after the break (too long to keep whole)");
    asr_pcm_.clear();
    if (asr_rate_ == rate_before) {
      for (std::size_t at = 0; at < again.size(); at += chunk) {
        const std::size_t n = std::min(chunk, again.size() - at);
        asr_pcm_.assign(again.begin() + static_cast<std::ptrdiff_t>(at),
                        again.begin() + static_cast<std::ptrdiff_t>(at + n));
        if (n == chunk) flush_asr();  // a partial last chunk waits for live audio
      }
    }
    held_.clear();
    if (retry_speech_ended_) {
      retry_speech_ended_ = false;
      asr_streaming_ = false;
      flush_asr();
      asr_->finish();
    }
  }

  /// Audio to ASR goes out in messages of asr_chunk (each one a gRPC write with its own
  /// completion, the dominant cost per call); what is left goes out at the endpoint.
  void send_to_asr(std::span<const std::int16_t> samples) {
    if (samples.empty()) return;
    const std::size_t at = asr_pcm_.size();
    asr_pcm_.resize(at + to_asr_.max_output(samples.size()));
    asr_pcm_.resize(at + to_asr_.process(samples, {asr_pcm_.data() + at, asr_pcm_.size() - at}));
    remember({asr_pcm_.data() + at, asr_pcm_.size() - at});
    const auto chunk = static_cast<std::size_t>(spec_->asr_chunk.count() * asr_rate_ / 1000);
    while (asr_pcm_.size() >= chunk) {
      if (asr_pcm_.size() == chunk) {
        flush_asr();
        break;
      }
      // More than one message's worth (the pre-roll): send it a chunk at a time.
      rest_.assign(asr_pcm_.begin() + static_cast<std::ptrdiff_t>(chunk), asr_pcm_.end());
      asr_pcm_.resize(chunk);
      flush_asr();
      asr_pcm_.swap(rest_);
    }
  }

  void flush_asr() {
    if (asr_pcm_.empty() || !asr_) return;
    if (opus_) {
      // An Opus packet is a whole frame: pad the last part of an utterance with silence.
      const auto chunk = static_cast<std::size_t>(spec_->asr_chunk.count() * asr_rate_ / 1000);
      asr_pcm_.resize(chunk, 0);
      opus_packet_.resize(audio::OpusEncoderStream::kMaxPacket);
      const std::size_t n = opus_->encode(asr_pcm_, opus_packet_);
      if (n > 0) asr_->send_audio({opus_packet_.data(), n});
    } else if (spec_->asr_encoding == AsrEncoding::mulaw) {
      asr_bytes_.resize(asr_pcm_.size());
      audio::ulaw_encode(asr_pcm_, asr_bytes_);
      asr_->send_audio(asr_bytes_);
    } else {
      asr_->send_audio(
          {reinterpret_cast<const std::uint8_t*>(asr_pcm_.data()), asr_pcm_.size() * 2});
    }
    asr_pcm_.clear();
  }

  void on_asr_closed(const grpc::Status& st) {
    if (asr_) asr_dropped_ += asr_->dropped();
    asr_.reset();
    const bool was_streaming = asr_streaming_;
    asr_streaming_ = false;
    if (!st.ok()) {
      if (m_ != nullptr) m_->providers[asr_slot_].errors.add();
      spdlog::warn("call uuid={}: ASR stream failed: {} ({})", info_.uuid,
                   logtext::log_text(st.error_message()), static_cast<int>(st.error_code()));
      if (++asr_failures_ >= 2) {
        fail("ASR failed twice: " + st.error_message());
        return;
      }
      // Broken before the utterance's final result: retry once after the backoff with the
      // utterance again, instead of losing what the caller said.
      if (was_streaming || utterance_.empty()) {
        asr_retry_at_ = tick_ + static_cast<std::uint64_t>(spec_->retry_backoff.count() / kTickMs);
        retry_speech_ended_ = !was_streaming;
        utterance_.clear();
        asr_pcm_.clear();
        held_.clear();
        return;
      }
    } else {
      asr_failures_ = 0;
    }
    std::string text = std::exchange(utterance_, {});
    spdlog::debug("call uuid={}: ASR heard \"{}\"", info_.uuid, logtext::log_text(text));
    if (detector_.in_speech()) open_asr();  // the caller is still talking: next utterance
    if (text.empty()) {
      if (!reply_) listening_since_ = tick_;
      return;
    }
    if (reply_) {
      spdlog::debug("call uuid={}: ignored '{}' said over the agent (no barge-in)", info_.uuid,
                    logtext::log_text(text));
      return;
    }
    const auto asr_final = Clock::now();
    start_turn(text);
    reply_->timeline.speech_end = speech_end_ == Clock::time_point{} ? asr_final : speech_end_;
    reply_->timeline.asr_final = asr_final;
  }

  void digits_event(std::string digits) {
    llm::v1::Event e;
    e.mutable_dtmf()->set_digits(digits);
    pending_events_.push_back(std::move(e));
    if (!reply_ && !hearing()) {
      start_turn("");
    } else if (!hearing()) {
      digits_waiting_ = true;  // a turn of their own once this reply has been spoken
    }                          // else they go with the caller's words
  }

  // --- thinking ---
  void begin_reply() {
    reply_ = std::make_unique<Reply>();
    reply_->gen = ++reply_gen_;
    tts_retries_ = 0;
    first_frame_due_ = false;

    splitter_ = SentenceSplitter();
    listening_since_ = kNever;
  }

  void start_turn(const std::string& user_text) {
    // Facts that arrived after the call started (AMI's VarSet raced the connection).
    if (info_.actions && info_.channel.empty() && info_.actions->describe(info_)) {
      apply_channel_facts();
    }
    begin_reply();
    reply_->user_text = user_text;
    llm_request_ = llm::v1::TurnRequest();
    *llm_request_.mutable_call() = call_;
    llm_request_.set_session_id(info_.uuid);
    for (const auto& [role, text] : history_.messages()) {
      auto* m = llm_request_.add_history();
      m->set_role(role);
      m->set_text(text);
    }
    for (const auto& m : interrupted_) *llm_request_.add_history() = m;
    llm_request_.set_user_text(user_text);
    for (auto& e : pending_events_) *llm_request_.add_events() = std::move(e);
    pending_events_.clear();
    reply_->timeline.turn = ++llm_turns_;
    llm_request_.set_turn(reply_->timeline.turn);
    if (!user_text.empty()) history_.add(llm::v1::USER, user_text);
    llm_retries_ = 0;
    open_llm();
  }

  void open_llm() {
    const std::uint64_t gen = reply_->gen;
    std::shared_ptr<llm::v1::Dialogue::Stub> stub;
    try {
      stub = llm::v1::Dialogue::NewStub(channels_->get(spec_->llm));
    } catch (const std::exception& e) {
      fail(std::string("LLM: ") + e.what());
      return;
    }
    if (m_ != nullptr) m_->providers[llm_slot_].streams.add();
    llm_ = LlmStream::start(
        [stub, req = &llm_request_](grpc::ClientContext* c, LlmStream* r) {
          stub->async()->Turn(c, req, r);
        },
        stub, bounded(spec_->llm, spec_->rpc_timeout), post_fn(),
        guarded([this, gen](llm::v1::TurnResponse& r) {
          if (reply_ && reply_->gen == gen) on_llm(r);
        }),
        guarded([this, gen](const grpc::Status& st) {
          if (reply_ && reply_->gen == gen) on_llm_closed(st);
        }));
  }

  void on_llm(llm::v1::TurnResponse& r) {
    switch (r.response_case()) {
      case llm::v1::TurnResponse::kTextDelta:
        if (reply_->timeline.llm_first_token == Clock::time_point{}) {
          reply_->timeline.llm_first_token = Clock::now();
        }
        if (const auto delta = reply_delta(r.text_delta()); !delta.empty()) {
          reply_->text += delta;
          for (auto& piece : splitter_.add(delta)) speak(piece);
        }
        break;
      case llm::v1::TurnResponse::kAction:
        on_action(r.action());
        break;
      default:
        break;  // end_of_turn: the stream's end says the same
    }
  }

  void on_llm_closed(const grpc::Status& st) {
    llm_.reset();
    if (!st.ok()) {
      if (m_ != nullptr) m_->providers[llm_slot_].errors.add();
      spdlog::warn("call uuid={}: LLM turn failed: {} ({})", info_.uuid,
                   logtext::log_text(st.error_message()), static_cast<int>(st.error_code()));
      if (reply_->text.empty() && llm_retries_ == 0) {
        ++llm_retries_;  // once more, after a short backoff (on_tick)
        llm_retry_at_ = tick_ + static_cast<std::uint64_t>(spec_->retry_backoff.count() / kTickMs);
        return;
      }
      fail("LLM failed: " + st.error_message());
      return;
    }
    reply_->llm_done = true;
    if (auto rest = splitter_.flush(); !rest.empty()) speak(rest);
    finish_speaking();
    if (!reply_->text.empty()) history_.add(llm::v1::ASSISTANT, reply_->text);
  }

  /// What of the model's `delta` fits in the reply (kMaxReplyBytes); warns once when cut.
  std::string_view reply_delta(std::string_view delta) {
    const std::size_t room =
        kMaxReplyBytes > reply_->text.size() ? kMaxReplyBytes - reply_->text.size() : 0;
    if (delta.size() <= room) return delta;
    if (!reply_->text_cut) {
      reply_->text_cut = true;
      spdlog::warn("call uuid={}: turn {}: the reply is longer than {} bytes; the rest is dropped",
                   info_.uuid, reply_->timeline.turn, kMaxReplyBytes);
    }
    std::size_t n = room;  // not inside a UTF-8 character
    while (n > 0 && (static_cast<unsigned char>(delta[n]) & 0xC0) == 0x80) --n;
    return delta.substr(0, n);
  }

  void on_action(const common::v1::Action& a) {
    if (a.has_hangup()) {
      // Text still in the splitter comes first; the final words are the last thing said.
      if (auto rest = splitter_.flush(); !rest.empty()) speak(rest);
      if (!a.hangup().final_words().empty()) {
        reply_->text += a.hangup().final_words();
        speak(a.hangup().final_words());
      }
      hangup_after_reply(a.hangup().reason().empty() ? "agent hung up" : a.hangup().reason());
      note_action(a, "");
      return;
    }
    if (a.has_transfer() && (info_.actions || spec_->transfer_hangs_up)) {
      // After the reply in progress (its last words usually announce the transfer).
      if (auto rest = splitter_.flush(); !rest.empty()) speak(rest);
      transfer_when_drained_ = a;
      ending_ = true;
      return;
    }
    if (info_.actions && (a.has_send_dtmf() || a.has_set_variable() || a.has_originate())) {
      run_action(a);
      return;
    }
    // Transfer, DTMF and variables need the Asterisk control path (not configured here).
    std::string what = a.has_transfer()       ? "transfer to " + a.transfer().target()
                       : a.has_send_dtmf()    ? "send DTMF " + a.send_dtmf().digits()
                       : a.has_set_variable() ? "set " + a.set_variable().name()
                       : a.has_originate()    ? "call " + a.originate().number()
                                              : "unknown action";
    spdlog::info("call uuid={}: action {}: not configured (no Asterisk control path)", info_.uuid,
                 logtext::log_text(what, 200));
    llm::v1::Event e;
    *e.mutable_action_result()->mutable_action() = a;
    e.mutable_action_result()->set_ok(false);
    e.mutable_action_result()->set_error("not configured: no Asterisk control path");
    note_action(a, e.action_result().error());
    pending_events_.push_back(std::move(e));
  }

  /// No control path: the same rule and allowlists decide. Allowed: noted for the dialplan
  /// (VB_TRANSFER, fetched over the HTTP API) and the socket closes, so the dialplan after
  /// AudioSocket() routes the call. Refused: the agent hears why and the call goes on.
  void transfer_without_control(const common::v1::Action& a) {
    const auto& t = a.transfer();
    const std::string refused = info_.note_transfer ? info_.note_transfer(t.target(), t.context())
                                                    : "no transfer policy for this call";
    if (!refused.empty()) {
      on_action_result(a, "denied: " + refused);
      return;
    }
    spdlog::info(
        "call uuid={}: transfer to {}{}{}: no Asterisk control path, hanging up after "
        "the reply so the dialplan continues",
        info_.uuid, t.target(), t.context().empty() ? "" : "@", t.context());
    hangup_after_reply("transfer to " + t.target());
    note_action(a, "", "the socket closes after the reply, the dialplan continues");
  }

  /// The action in the call's transcript: done (or on its way) if `error` is empty.
  void note_action(const common::v1::Action& a, const std::string& error,
                   const std::string& how = {}) {
    note(action_event(a, error, how));
  }

  /// What the control path (ARI/AMI) knows of the channel goes to every provider.
  void apply_channel_facts() {
    call_.set_caller_number(info_.caller_number);
    call_.set_caller_name(info_.caller_name);
    call_.set_called_number(info_.called_number);
    for (const auto& [k, v] : info_.variables) (*call_.mutable_metadata())[k] = v;
    if (auto l = info_.variables.find("VB_LANGUAGE");
        l != info_.variables.end() && !l->second.empty()) {
      call_.set_language(l->second);
    }
    if (!info_.channel.empty()) (*call_.mutable_metadata())["channel"] = info_.channel;
  }

  /// Hands an action to the Asterisk control path; its result comes back on this thread.
  void run_action(const common::v1::Action& a) {
    agent::ActionRequest req;
    if (a.has_transfer()) {
      req.kind = agent::ActionRequest::Kind::transfer;
      req.target = a.transfer().target();
      req.context = a.transfer().context();
    } else if (a.has_send_dtmf()) {
      req.kind = agent::ActionRequest::Kind::send_dtmf;
      req.digits = a.send_dtmf().digits();
      req.digit_ms = static_cast<int>(a.send_dtmf().duration_ms());
    } else if (a.has_originate()) {
      req.kind = agent::ActionRequest::Kind::originate;
      req.target = a.originate().number();
      req.name = a.originate().agent();
      for (const auto& [k, v] : a.originate().variables()) req.variables[k] = v;
    } else {
      req.kind = agent::ActionRequest::Kind::set_variable;
      req.name = a.set_variable().name();
      req.value = a.set_variable().value();
    }
    info_.actions->run(
        req, [post = poster_, w = std::weak_ptr<int>(alive_), this, a](std::string error) {
          post([w, this, a, error = std::move(error)] {
            if (w.lock()) on_action_result(a, error);
          });
        });
  }

  void on_action_result(const common::v1::Action& a, const std::string& error) {
    note_action(a, error);
    llm::v1::Event e;
    *e.mutable_action_result()->mutable_action() = a;
    e.mutable_action_result()->set_ok(error.empty());
    e.mutable_action_result()->set_error(error);
    pending_events_.push_back(std::move(e));
    if (a.has_transfer()) {
      if (error.empty()) return;  // Asterisk moves the caller; the AudioSocket closes
      // A model that keeps asking for transfers it cannot have gets no endless turns of its
      // own (each refusal starts one): the fallback, and the call ends.
      if (++refused_transfers_ >= kMaxRefusedTransfers) {
        fail("the agent asked for " + std::to_string(refused_transfers_) +
             " transfers that failed or were refused");
        return;
      }
      // Refused or failed: the call goes on, and the agent hears why at once.
      ending_ = false;
      if (!reply_) start_turn("");
    }
  }

  static std::string fill_placeholders(std::string text, const agent::CallInfo& info) {
    auto put = [&](const std::string& key, const std::string& value) {
      for (std::size_t p = 0; (p = text.find(key, p)) != std::string::npos; p += value.size()) {
        text.replace(p, key.size(), value);
      }
    };
    put("{caller_name}", info.caller_name);
    put("{caller_number}", info.caller_number);
    put("{called_number}", info.called_number);
    for (const auto& [k, v] : info.variables) put("{" + k + "}", v);
    return text;
  }

  void hangup_after_reply(std::string reason) {
    hangup_reason_ = std::move(reason);
    hangup_when_drained_ = true;
    ending_ = true;
  }

  // --- speaking ---
  void speak(const std::string& text) {
    if (text.empty() || !reply_) return;
    reply_->chunks.push_back({++chunk_id_, text, 0});
    if (tts_retry_at_ != kNever) return;  // the retry sends it
    if (!tts_ && !open_tts()) return;
    send_chunk(reply_->chunks.back());
  }

  bool open_tts() {
    tts::v1::SynthesizeRequest first;
    auto* cfg = first.mutable_config();
    *cfg->mutable_call() = call_;
    cfg->mutable_format()->set_encoding(common::v1::LINEAR16);
    cfg->mutable_format()->set_sample_rate_hz(static_cast<std::uint32_t>(spec_->tts_rate_hz));
    cfg->set_voice(spec_->voice);
    cfg->set_language(spec_->language);
    const std::uint64_t gen = reply_->gen;
    std::shared_ptr<tts::v1::Synthesizer::Stub> stub;
    try {
      stub = tts::v1::Synthesizer::NewStub(channels_->get(spec_->tts));
    } catch (const std::exception& e) {
      fail(std::string("TTS: ") + e.what());
      return false;
    }
    from_tts_.reset();
    tts_paused_ = false;
    tts_partial_samples_ = 0;
    reply_->tts_done = false;
    // Chunk marks of this stream count from its start; the reply's audio so far precedes it.
    tts_base_ms_ = static_cast<std::uint32_t>((reply_->pushed_samples + (out_.size() - out_pos_)) *
                                              1000 / static_cast<unsigned>(rate_hz_));
    if (m_ != nullptr) m_->providers[tts_slot_].streams.add();
    tts_ = TtsStream::start(
        [stub](grpc::ClientContext* c, TtsStream::Reactor* r) {
          stub->async()->StreamingSynthesize(c, r);
        },
        stub, bounded(spec_->tts, spec_->rpc_timeout), std::move(first), post_fn(),
        guarded([this, gen](tts::v1::SynthesizeResponse& r) {
          if (reply_ && reply_->gen == gen) on_tts(r);
        }),
        guarded([this, gen](const grpc::Status& st) {
          if (reply_ && reply_->gen == gen) on_tts_closed(st);
        }),
        64);
    return true;
  }

  void send_chunk(const Chunk& c) {
    tts::v1::SynthesizeRequest m;
    m.mutable_text()->set_text(c.text);
    m.mutable_text()->set_chunk_id(c.id);
    if (!tts_->send(std::move(m))) spdlog::warn("call uuid={}: TTS queue full", info_.uuid);
  }

  void finish_speaking() {
    if (tts_) tts_->finish();
  }

  /// The one retry of a broken TTS stream: a new stream for every chunk not yet complete.
  void retry_tts() {
    tts_retry_at_ = kNever;
    if (!open_tts()) return;
    for (const auto& c : reply_->chunks) {
      if (c.done_ms == 0) send_chunk(c);
    }
    if (reply_->llm_done) finish_speaking();
  }

  void on_tts(tts::v1::SynthesizeResponse& r) {
    if (r.has_chunk_done()) {
      for (auto& c : reply_->chunks) {
        if (c.id == r.chunk_done().chunk_id()) c.done_ms = tts_base_ms_ + r.chunk_done().audio_ms();
      }
      tts_partial_samples_ = 0;
      return;
    }
    const std::string& bytes = r.audio();
    if (bytes.size() < 2) return;
    if (reply_->timeline.tts_first_audio == Clock::time_point{}) {
      reply_->timeline.tts_first_audio = Clock::now();
    }
    tts_pcm_.resize(bytes.size() / 2);
    std::memcpy(tts_pcm_.data(), bytes.data(), tts_pcm_.size() * 2);
    const std::size_t at = out_.size();
    out_.resize(at + from_tts_.max_output(tts_pcm_.size()));
    out_.resize(at + from_tts_.process(tts_pcm_, {out_.data() + at, out_.size() - at}));
    tts_partial_samples_ += out_.size() - at;
    // Reads pause while audio waits beyond the playout queue (feed_playout), so this holds at
    // most a message or two; the cap is for a provider that sends minutes in one message.
    const auto cap = static_cast<std::size_t>(spec_->max_buffered_audio.count() * rate_hz_ / 1000);
    if (out_.size() - out_pos_ > cap) {
      dropped_tts_samples_ += out_.size() - out_pos_ - cap;
      out_.resize(out_pos_ + cap);
    }
    feed_playout();
  }

  void on_tts_closed(const grpc::Status& st) {
    tts_.reset();
    tts_paused_ = false;
    if (!st.ok()) {
      if (m_ != nullptr) m_->providers[tts_slot_].errors.add();
      spdlog::warn("call uuid={}: TTS stream failed: {} ({})", info_.uuid,
                   logtext::log_text(st.error_message()), static_cast<int>(st.error_code()));
      if (tts_retries_ == 0) {
        // Once more after a backoff, from the start of the chunk it broke in: what of that
        // chunk is still unplayed goes (the caller hears it restart, not a jump).
        ++tts_retries_;
        const std::size_t drop = std::min(tts_partial_samples_, out_.size() - out_pos_);
        out_.resize(out_.size() - drop);
        tts_retry_at_ = tick_ + static_cast<std::uint64_t>(spec_->retry_backoff.count() / kTickMs);
        return;
      }
      fail("TTS failed: " + st.error_message());
      return;
    }
    reply_->tts_done = true;
  }

  void feed_playout() {
    while (out_pos_ < out_.size() && !control_->playout_full()) {
      const bool was_empty = control_->queued_samples() == 0;
      const std::span<const std::int16_t> rest{out_.data() + out_pos_, out_.size() - out_pos_};
      const std::size_t n = control_->play(rest);
      if (n == 0) break;
      note_far(rest.first(n));
      if (reply_) {
        // Into an empty queue: the reply's first frame leaves on the next tick.
        if (reply_->pushed_samples == 0 && was_empty) first_frame_due_ = true;
        reply_->pushed_samples += n;
      }
      out_pos_ += n;
    }
    if (out_pos_ == out_.size()) {
      out_.clear();
      out_pos_ = 0;
    }
    // Backpressure: TTS reads stop while audio waits for room in the playout queue (above its
    // high watermark) and resume once all of it is queued; the provider's writes then wait on
    // the stream's flow-control window.
    if (tts_) {
      const bool backlog = !out_.empty();
      if (backlog && !tts_paused_) tts_->pause_reads();
      if (!backlog && tts_paused_) tts_->resume_reads();
      tts_paused_ = backlog;
    }
  }

  void note_far(std::span<const std::int16_t> x) {
    // Peaks of 10 ms blocks in queue order, for the echo test while the agent speaks.
    for (const std::int16_t s : x) {
      far_acc_ = std::max<int>(far_acc_, std::abs(static_cast<int>(s)));
      if (++far_fill_ == n10_) {
        far_peaks_[far_blocks_ % kFarBlocks] = static_cast<std::int16_t>(std::min(far_acc_, 32767));
        ++far_blocks_;
        far_fill_ = 0;
        far_acc_ = 0;
      }
    }
    pushed_total_ += x.size();
  }

  bool reply_complete() const {
    return reply_->llm_done && reply_->tts_done && !tts_ && out_.empty() &&
           control_->queued_samples() == 0;
  }

  void end_reply() {
    const auto& t = reply_->timeline;
    if (reply_->user_text.empty() && t.asr_final == Clock::time_point{}) {
      spdlog::debug("call uuid={}: turn {} spoken (no caller speech before it)", info_.uuid,
                    t.turn);
    } else {
      spdlog::info(
          "turn uuid={} n={} speech_end->asr_final={}ms ->llm_first_token={}ms "
          "->tts_first_audio={}ms ->first_frame={}ms total={}ms user=\"{}\" reply=\"{}\"",
          info_.uuid, t.turn, ms_text(ms_between(t.speech_end, t.asr_final)),
          ms_text(ms_between(t.asr_final, t.llm_first_token)),
          ms_text(ms_between(t.llm_first_token, t.tts_first_audio)),
          ms_text(ms_between(t.tts_first_audio, t.first_frame)),
          ms_text(ms_between(t.speech_end, t.first_frame)), logtext::log_text(reply_->user_text),
          logtext::log_text(reply_->text));
    }
    count_turn(t);
    if (!reply_->text.empty()) {
      note(events::agent_reply(t.turn, reply_->text,
                               whole_ms(ms_between(t.speech_end, t.first_frame))));
    }
    timelines_.push_back(t);
    reply_.reset();
    listening_since_ = tick_;
    if (!hangup_when_drained_ && !transfer_when_drained_) ending_ = false;
    if (std::exchange(digits_waiting_, false) && !ending_ && !asr_ && !pending_events_.empty()) {
      start_turn("");  // digits pressed while the agent spoke
    }
  }

  /// One transcript event (recording, webhooks), if anyone keeps the transcript.
  void note(events::Event e) {
    if (info_.transcript) info_.transcript(std::move(e));
  }

  /// A turn's phases into the thread's histograms (phases that did not happen are skipped).
  void count_turn(const TurnTimeline& t) {
    if (m_ == nullptr) return;
    m_->turns.add();
    auto phase = [](Clock::time_point a, Clock::time_point b, metrics::Histogram& h,
                    metrics::Histogram* provider) {
      if (a == Clock::time_point{} || b == Clock::time_point{} || b < a) return;
      h.observe(b - a);
      if (provider != nullptr) provider->observe(b - a);
    };
    phase(t.speech_end, t.asr_final, m_->asr_final, &m_->providers[asr_slot_].latency);
    phase(t.asr_final, t.llm_first_token, m_->llm_first_token, &m_->providers[llm_slot_].latency);
    phase(t.llm_first_token, t.tts_first_audio, m_->tts_first_audio,
          &m_->providers[tts_slot_].latency);
    phase(t.tts_first_audio, t.first_frame, m_->first_frame, nullptr);
    phase(t.speech_end, t.first_frame, m_->voice_to_voice, nullptr);
  }

  void barge_in(const std::string& why) {
    const std::size_t queued = control_->queued_samples();
    control_->flush();
    first_frame_due_ = false;
    const std::uint64_t played =
        reply_->pushed_samples - std::min<std::uint64_t>(reply_->pushed_samples, queued);
    const auto played_ms =
        static_cast<std::uint32_t>(played * 1000 / static_cast<unsigned>(rate_hz_));
    std::string heard;
    for (const auto& c : reply_->chunks) {
      if (c.done_ms == 0 || c.done_ms > played_ms) break;
      if (!heard.empty()) heard += ' ';
      heard += c.text;
    }
    spdlog::info("barge-in uuid={} turn={}: {}; heard {} ms of the reply: \"{}\"", info_.uuid,
                 reply_->timeline.turn, why, played_ms, logtext::log_text(heard));
    reply_->interrupted = true;
    reply_->timeline.interrupted = true;
    cancel_reply_streams();
    // The reply as the caller heard it goes into the history, marked interrupted.
    history_.drop_last_if(llm::v1::ASSISTANT, reply_->text);
    llm::v1::Message m;
    m.set_role(llm::v1::ASSISTANT);
    m.set_text(heard);
    m.set_interrupted(true);
    interrupted_.push_back(m);
    if (interrupted_.size() > kMaxInterruptedMessages) interrupted_.erase(interrupted_.begin());
    llm::v1::Event e;
    e.mutable_barge_in()->set_heard_text(heard);
    pending_events_.push_back(std::move(e));
    ++barge_ins_;
    if (m_ != nullptr) {
      m_->barge_ins.add();
      if (overlap_started_ != Clock::time_point{})
        m_->barge_in.observe(Clock::now() - overlap_started_);
    }
    count_turn(reply_->timeline);
    note(events::barge_in(reply_->timeline.turn, played_ms, heard, reply_->text));
    timelines_.push_back(reply_->timeline);
    reply_.reset();
    hangup_when_drained_ = false;
    ending_ = false;
  }

  void cancel_reply_streams() {
    ++reply_gen_;
    llm_retry_at_ = kNever;
    tts_retry_at_ = kNever;
    if (llm_) llm_->cancel();
    if (tts_) tts_->cancel();
    llm_.reset();
    tts_.reset();
    out_.clear();
    out_pos_ = 0;
  }

  void fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    if (m_ != nullptr) m_->fallbacks.add();
    spdlog::warn("call uuid={}: {}; playing the fallback prompt and hanging up", info_.uuid,
                 logtext::log_text(why));
    if (asr_) asr_->cancel();
    asr_.reset();
    cancel_reply_streams();
    reply_.reset();
    control_->flush();
    first_frame_due_ = false;
    const auto& prompt = spec_->fallback_prompt;
    if (prompt && !prompt->empty()) {
      out_.assign(prompt->begin(), prompt->end());
    } else {
      out_ = default_fallback_prompt(rate_hz_);
    }
    out_pos_ = 0;
    feed_playout();
    hangup_after_reply("provider failure");
  }

  std::shared_ptr<const PipelineSpec> spec_;
  int rate_hz_;
  int quality_;
  std::shared_ptr<providers::ChannelPool> channels_;
  agent::CallControl* control_ = nullptr;
  agent::CallControl::Poster poster_;
  agent::CallInfo info_;
  common::v1::CallInfo call_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);

  std::optional<vad::Vad> vad_;        // made at the first audio, at the rate it will hear
  bool vad_on_leg_ = false;            // it hears the leg's audio (8 kHz), not the internal rate's
  std::size_t n10_;                    // samples in 10 ms at the internal rate
  std::span<const std::int16_t> leg_;  // on_leg_audio()'s piece, for the on_audio() after it
  int leg_rate_ = 0;
  bool asr_on_leg_ = false;  // the recognizer's audio is the leg's (its rate is the leg's)
  vad::SpeechDetector detector_;
  vad::PreRoll pre_roll_;
  int src_rate_;  // of the audio the recognizer is fed from (pre-roll, to_asr_'s input)
  audio::Resampler to_asr_;
  int asr_rate_;  // of to_asr_'s output: the spec's, or the caller's leg if lower
  audio::Resampler from_tts_;
  std::vector<std::int16_t> scratch_, asr_pcm_, rest_, tts_pcm_;
  std::unique_ptr<audio::OpusEncoderStream> opus_;
  std::vector<std::uint8_t> opus_packet_, asr_bytes_;

  static constexpr std::size_t kAsrQueue = 50;  // audio messages an ASR stream may hold back

  std::shared_ptr<providers::AsrStream> asr_;
  bool asr_streaming_ = false;
  std::vector<std::int16_t> replay_;  // the utterance sent so far (capacity fixed: asr_replay)
  bool replay_whole_ = false;         // replay_ holds the utterance from its start
  std::vector<std::int16_t> held_;    // audio during a retry's backoff, when replay_ is not whole
  std::uint64_t asr_retry_at_ = kNever;  // tick of the pending retry of a broken ASR stream
  bool retry_speech_ended_ = false;      // the utterance ended before (or during) the retry
  std::uint64_t asr_gen_ = 0;
  int asr_failures_ = 0;
  std::uint64_t asr_dropped_ = 0;  // audio messages the ASR stream could not take (slow provider)
  std::string utterance_;
  Clock::time_point speech_end_{};

  std::unique_ptr<Reply> reply_;
  std::uint64_t reply_gen_ = 0;
  unsigned llm_turns_ = 0;
  llm::v1::TurnRequest llm_request_;
  std::shared_ptr<LlmStream> llm_;
  int llm_retries_ = 0;
  std::uint64_t llm_retry_at_ = kNever;  // tick of the pending LLM retry
  std::shared_ptr<TtsStream> tts_;
  bool tts_paused_ = false;              // its reads, while audio waits beyond the playout queue
  std::size_t tts_partial_samples_ = 0;  // audio of the chunk being synthesized
  std::uint32_t tts_base_ms_ = 0;        // reply audio before the stream's first chunk
  int tts_retries_ = 0;                  // of this reply's TTS
  std::uint64_t tts_retry_at_ = kNever;  // tick of the pending TTS retry
  std::uint64_t chunk_id_ = 0;
  SentenceSplitter splitter_;
  ConversationHistory history_;
  std::vector<llm::v1::Message> interrupted_;
  std::vector<llm::v1::Event> pending_events_;

  std::vector<std::int16_t> out_;  // reply audio at the internal rate not yet in the playout queue
  std::size_t out_pos_ = 0;
  std::uint64_t dropped_tts_samples_ = 0;
  std::vector<std::int16_t> far_peaks_;
  std::uint64_t far_blocks_ = 0;
  std::size_t far_fill_ = 0;
  int far_acc_ = 0;
  std::uint64_t pushed_total_ = 0;

  std::uint64_t tick_ = 0;
  std::uint64_t listening_since_ = kNever;
  int no_input_ = 0;
  std::string digits_;
  std::uint64_t digits_since_ = 0;
  bool ending_ = false;
  bool failed_ = false;
  bool hangup_when_drained_ = false;
  bool digits_waiting_ = false;  // DTMF came during a reply: answer it when the reply ends
  std::optional<common::v1::Action> transfer_when_drained_;
  /// Transfers that failed or were refused on this call (kMaxRefusedTransfers ends it).
  std::size_t refused_transfers_ = 0;
  static constexpr std::size_t kMaxRefusedTransfers = 3;
  std::string hangup_reason_;
  unsigned barge_ins_ = 0;
  long overlap_units_ = 0;
  Clock::time_point overlap_started_{};  // first voiced unit of the current overlap
  metrics::AgentCounters* m_ = nullptr;  // the io thread's; null = not counted
  std::size_t asr_slot_ = 0, llm_slot_ = 0, tts_slot_ = 0;
  Clock::time_point call_start_{};
  bool first_audio_counted_ = false;
  bool first_frame_due_ = false;  // the reply's first audio waits in the queue for the next tick
  std::vector<TurnTimeline> timelines_;
};

}  // namespace

void ConversationHistory::add(llm::v1::Role role, std::string text) {
  bytes_ += text.size();
  messages_.emplace_back(role, std::move(text));
  while (messages_.size() > max_messages_ || bytes_ > max_bytes_) {
    const auto oldest = std::find_if(messages_.begin(), messages_.end(),
                                     [](const Entry& m) { return m.first != llm::v1::SYSTEM; });
    if (oldest == messages_.end() || std::next(oldest) == messages_.end()) break;  // the newest
    bytes_ -= oldest->second.size();
    messages_.erase(oldest);
  }
}

bool ConversationHistory::drop_last_if(llm::v1::Role role, const std::string& text) {
  if (messages_.empty() || messages_.back().first != role || messages_.back().second != text) {
    return false;
  }
  bytes_ -= text.size();
  messages_.pop_back();
  return true;
}

std::vector<std::string> SentenceSplitter::add(std::string_view delta) {
  std::vector<std::string> out;
  while (!delta.empty()) {
    // Never more than max_bytes_ held: take what fits, split, cut a piece if still full.
    const std::size_t room = max_bytes_ > buf_.size() ? max_bytes_ - buf_.size() : 0;
    buf_.append(delta.substr(0, room));
    delta.remove_prefix(std::min(room, delta.size()));
    std::size_t start = 0;
    for (std::size_t i = 0; i + 1 < buf_.size(); ++i) {
      const char c = buf_[i];
      const bool end = c == '.' || c == '!' || c == '?' || c == ';' || c == ':' || c == ',';
      if (!end || buf_[i + 1] != ' ') continue;
      const bool sentence = c != ',';
      if (i + 1 - start < (sentence ? min_chars_ : 2 * min_chars_)) continue;
      out.push_back(buf_.substr(start, i + 1 - start));
      start = i + 2;
    }
    buf_.erase(0, start);
    if (buf_.size() < max_bytes_) continue;
    // No end within max_bytes_: cut at the last space (dropping it), else at the end but
    // before a UTF-8 character the end would split.
    std::size_t cut = buf_.rfind(' ');
    std::size_t drop = 1;
    if (cut == std::string::npos || cut == 0) {
      cut = buf_.size();
      drop = 0;
      const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(buf_[i]); };
      std::size_t lead = cut;
      while (lead > 0 && cut - lead < 4 && (byte(lead - 1) & 0xC0) == 0x80) --lead;
      if (lead > 0 && byte(lead - 1) >= 0xC0) {
        --lead;
        const std::size_t len = byte(lead) >= 0xF0 ? 4 : byte(lead) >= 0xE0 ? 3 : 2;
        if (cut - lead < len && lead > 0) cut = lead;
      }
    }
    out.push_back(buf_.substr(0, cut));
    buf_.erase(0, cut + drop);
  }
  return out;
}

std::string SentenceSplitter::flush() {
  std::string rest = std::move(buf_);
  buf_.clear();
  const auto b = rest.find_first_not_of(' ');
  return b == std::string::npos ? std::string() : rest.substr(b);
}

std::vector<std::int16_t> default_fallback_prompt(int rate_hz) {
  const auto beep = static_cast<std::size_t>(rate_hz * 150 / 1000);
  std::vector<std::int16_t> v(beep * 6, 0);
  for (int b = 0; b < 3; ++b) {
    for (std::size_t i = 0; i < beep; ++i) {
      v[2 * static_cast<std::size_t>(b) * beep + i] = static_cast<std::int16_t>(
          8000 * std::sin(2 * std::numbers::pi * 480.0 * static_cast<double>(i) / rate_hz));
    }
  }
  return v;
}

namespace {
PipelineSpec with_prompts(PipelineSpec s, int rate_hz, int quality) {
  if (!s.greeting_file.empty()) {
    s.greeting_prompt = std::make_shared<const std::vector<std::int16_t>>(
        agent::load_prompt(s.greeting_file, rate_hz, quality));
  }
  if (!s.fallback_file.empty()) {
    s.fallback_prompt = std::make_shared<const std::vector<std::int16_t>>(
        agent::load_prompt(s.fallback_file, rate_hz, quality));
  }
  return s;
}
}  // namespace

PipelineFactory::PipelineFactory(PipelineSpec spec, int internal_rate_hz, int resampler_quality,
                                 std::shared_ptr<providers::ChannelPool> channels)
    : spec_(std::make_shared<const PipelineSpec>(
          with_prompts(std::move(spec), internal_rate_hz, resampler_quality))),
      rate_hz_(internal_rate_hz),
      quality_(resampler_quality),
      channels_(std::move(channels)) {}

std::unique_ptr<agent::Agent> PipelineFactory::create() const {
  return std::make_unique<PipelineAgent>(spec_, rate_hz_, quality_, channels_);
}

}  // namespace voxbridge::pipeline
