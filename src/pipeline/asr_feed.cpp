#include "voxbridge/pipeline/asr_feed.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "voxbridge/audio/g711.hpp"
#include "voxbridge/logtext/log_text.hpp"

namespace voxbridge::pipeline {

namespace {
constexpr int kTickMs = 20;
}

// --- UtteranceReplay ---

void UtteranceReplay::begin() {
  whole_.clear();
  whole_ok_ = whole_.capacity() > 0;
}

void UtteranceReplay::sent(std::span<const std::int16_t> pcm) {
  if (!whole_ok_) return;
  if (whole_.size() + pcm.size() > whole_.capacity()) {
    whole_ok_ = false;  // too long to replay: a retry hears only what follows the break
    whole_.clear();
    return;
  }
  whole_.insert(whole_.end(), pcm.begin(), pcm.end());
}

void UtteranceReplay::held(std::span<const std::int16_t> pcm) {
  sent(pcm);
  if (!whole_ok_) after_.insert(after_.end(), pcm.begin(), pcm.end());
}

// --- AsrEncoder ---

AsrEncoder::AsrEncoder(const PipelineSpec& spec, int quality, int src_rate)
    : spec_(spec),
      quality_(quality),
      src_rate_(src_rate),
      asr_rate_(spec.asr_rate_hz),
      to_asr_(src_rate, spec.asr_rate_hz, quality) {}

bool AsrEncoder::set_rates(int src_rate, int asr_rate) {
  if (src_rate == src_rate_ && asr_rate == asr_rate_) return false;
  src_rate_ = src_rate;
  asr_rate_ = asr_rate;
  to_asr_ = audio::Resampler(src_rate_, asr_rate_, quality_);
  return true;
}

std::size_t AsrEncoder::chunk() const {
  return static_cast<std::size_t>(spec_.asr_chunk.count() * asr_rate_ / 1000);
}

void AsrEncoder::begin() {
  pcm_.clear();
  if (spec_.asr_encoding == AsrEncoding::opus) {
    opus_ = std::make_unique<audio::OpusEncoderStream>(asr_rate_, spec_.asr_opus_bitrate);
  }
}

void AsrEncoder::resample(std::span<const std::int16_t> samples, std::vector<std::int16_t>& out) {
  out.resize(to_asr_.max_output(samples.size()));
  out.resize(to_asr_.process(samples, out));
}

void AsrEncoder::add(std::span<const std::int16_t> samples, providers::AsrStream& to,
                     UtteranceReplay& replay) {
  if (samples.empty()) return;
  const std::size_t at = pcm_.size();
  pcm_.resize(at + to_asr_.max_output(samples.size()));
  pcm_.resize(at + to_asr_.process(samples, {pcm_.data() + at, pcm_.size() - at}));
  replay.sent({pcm_.data() + at, pcm_.size() - at});
  // Messages of asr_chunk: each one is a provider write with its own completion, the dominant
  // cost per call. More than one message's worth (the pre-roll) goes a chunk at a time.
  const std::size_t n = chunk();
  while (pcm_.size() >= n) {
    if (pcm_.size() == n) {
      flush(to);
      break;
    }
    rest_.assign(pcm_.begin() + static_cast<std::ptrdiff_t>(n), pcm_.end());
    pcm_.resize(n);
    flush(to);
    pcm_.swap(rest_);
  }
}

void AsrEncoder::send(std::span<const std::int16_t> pcm, providers::AsrStream& to) {
  pend(pcm);
  flush(to);
}

void AsrEncoder::flush(providers::AsrStream& to) {
  if (pcm_.empty()) return;
  if (opus_) {
    // An Opus packet is a whole frame: pad the last part of an utterance with silence.
    pcm_.resize(chunk(), 0);
    bytes_.resize(audio::OpusEncoderStream::kMaxPacket);
    const std::size_t n = opus_->encode(pcm_, bytes_);
    if (n > 0) to.send_audio({bytes_.data(), n});
  } else if (spec_.asr_encoding == AsrEncoding::mulaw) {
    bytes_.resize(pcm_.size());
    audio::ulaw_encode(pcm_, bytes_);
    to.send_audio(bytes_);
  } else {
    to.send_audio({reinterpret_cast<const std::uint8_t*>(pcm_.data()), pcm_.size() * 2});
  }
  pcm_.clear();
}

// --- AsrFeed ---

AsrFeed::AsrFeed(const PipelineSpec& spec, int internal_rate_hz, int quality,
                 std::shared_ptr<providers::ProviderClients> clients,
                 const common::v1::CallInfo& call)
    : spec_(spec),
      rate_hz_(internal_rate_hz),
      clients_(std::move(clients)),
      call_(call),
      pre_roll_(static_cast<std::size_t>(spec.pre_roll.count() * internal_rate_hz / 1000)),
      encoder_(spec, quality, internal_rate_hz),
      replay_(static_cast<std::size_t>(spec.asr_replay.count()) *
              static_cast<std::size_t>(spec.asr_rate_hz) / 1000) {}

AsrFeed::~AsrFeed() {
  // A call torn down without on_end still ends its stream: it must not outlive the server's
  // channels (see ChannelPool::wait_unused).
  if (asr_) asr_->cancel();
}

void AsrFeed::start(agent::CallControl& control, std::string uuid, Events events,
                    metrics::ProviderCounters* counters) {
  control_ = &control;
  uuid_ = std::move(uuid);
  ev_ = std::move(events);
  counters_ = counters;
}

void AsrFeed::use_leg_rate(int rate) {
  on_leg_ = rate <= spec_.asr_rate_hz;
  const int src = on_leg_ ? rate : rate_hz_;
  if (src == encoder_.src_rate()) return;
  pre_roll_ = vad::PreRoll(static_cast<std::size_t>(spec_.pre_roll.count() * src / 1000));
  encoder_.set_rates(src, encoder_.asr_rate());
  replay_.invalidate();  // what was kept came at the old rate
}

bool AsrFeed::start_stream(std::size_t max_queued) {
  asr::v1::RecognitionConfig cfg;
  *cfg.mutable_call() = call_;
  cfg.mutable_format()->set_encoding(spec_.asr_encoding == AsrEncoding::opus ? common::v1::OPUS
                                     : spec_.asr_encoding == AsrEncoding::mulaw
                                         ? common::v1::MULAW
                                         : common::v1::LINEAR16);
  const int leg = control_->caller_rate_hz();
  const int rate = leg > 0 ? std::min(spec_.asr_rate_hz, leg) : spec_.asr_rate_hz;
  if (encoder_.set_rates(encoder_.src_rate(), rate)) replay_.invalidate();
  encoder_.begin();
  cfg.mutable_format()->set_sample_rate_hz(static_cast<std::uint32_t>(rate));
  cfg.set_language(spec_.language);
  cfg.set_interim_results(true);
  cfg.set_single_utterance(true);
  for (const auto& h : spec_.phrase_hints) cfg.add_phrase_hints(h);
  const std::uint64_t gen = ++gen_;
  const std::weak_ptr<int> alive = alive_;
  auto live = [this, gen, alive] { return !alive.expired() && gen == gen_; };
  providers::AsrEvents ev;
  ev.result = [this, live](const providers::AsrResult& r) {
    if (!live()) return;
    if (r.is_final) {
      if (!utterance_.empty()) utterance_ += ' ';
      utterance_ += r.transcript;
    }
    if (ev_.result) ev_.result(r);
  };
  ev.end_of_utterance = [this, live](std::uint32_t) {
    if (live()) speech_ended();
  };
  ev.closed = [this, live](const providers::StreamStatus& st) {
    if (live()) on_closed(st);
  };
  try {
    if (counters_ != nullptr) counters_->streams.add();
    const auto target = bounded(spec_.asr, spec_.max_utterance);
    asr_ = clients_->open_asr(target, cfg, control_->poster(), std::move(ev), max_queued);
  } catch (const std::exception& e) {
    if (ev_.failed) ev_.failed(std::string("ASR: ") + e.what());
    return false;
  }
  streaming_ = true;
  ++streams_opened_;
  return true;
}

void AsrFeed::open() {
  if (hearing()) return;  // still finishing the previous utterance (or retrying its stream)
  if (!start_stream(kQueue)) return;
  utterance_.clear();
  speech_end_ = {};
  replay_.begin();
  pre_roll_.drain(scratch_);
  encoder_.add(scratch_, *asr_, replay_);
  sent_us_ += scratch_.size() * 1000000ull / static_cast<unsigned>(encoder_.src_rate());
}

void AsrFeed::audio(std::span<const std::int16_t> leg, std::span<const std::int16_t> internal,
                    bool silence) {
  const std::span<const std::int16_t> in = on_leg_ && !leg.empty() ? leg : internal;
  if (asr_ && streaming_) {
    encoder_.add(in, *asr_, replay_);
    sent_us_ += in.size() * 1000000ull / static_cast<unsigned>(encoder_.src_rate());
    // Silence goes out at once: the recognizer's endpointer counts it, so holding it for a
    // full asr_chunk would delay the final transcript by up to a chunk. (Opus packets are
    // whole frames: they wait.)
    if (silence && spec_.asr_encoding != AsrEncoding::opus) encoder_.flush(*asr_);
  } else if (retry_at_ != kNever && !retry_ended_) {
    // The utterance goes on while its stream is retried: resampled and kept only.
    if (in.empty()) return;
    encoder_.resample(in, scratch_);
    replay_.held(scratch_);
  } else {
    pre_roll_.push(in);
  }
}

void AsrFeed::speech_ended() {
  if (retry_at_ != kNever && !retry_ended_) {
    retry_ended_ = true;  // the retry sends the utterance and finishes at once
    speech_end_ = Clock::now();
    return;
  }
  if (!asr_ || !streaming_) return;
  streaming_ = false;
  speech_end_ = Clock::now();
  encoder_.flush(*asr_);
  asr_->finish();
}

void AsrFeed::tick() {
  ++tick_;
  if (retry_at_ != kNever && tick_ >= retry_at_) retry();
}

void AsrFeed::retry() {
  retry_at_ = kNever;
  const std::size_t chunk = std::max<std::size_t>(encoder_.chunk(), 1);
  const std::vector<std::int16_t>& again = replay_.again();
  const int rate_before = encoder_.asr_rate();
  // Room for all of it at once on top of the usual queue: the provider takes it at its pace.
  if (!start_stream(kQueue + again.size() / chunk + 1)) return;
  spdlog::info("call uuid={}: ASR stream reopened; sending the {} ms of the utterance{}", uuid_,
               again.size() * 1000 / static_cast<std::size_t>(encoder_.asr_rate()),
               replay_.whole() ? " from its start" : " after the break (too long to keep whole)");
  if (encoder_.asr_rate() == rate_before) {
    sent_us_ += again.size() * 1000000ull / static_cast<unsigned>(encoder_.asr_rate());
    for (std::size_t at = 0; at < again.size(); at += chunk) {
      const std::size_t n = std::min(chunk, again.size() - at);
      const std::span<const std::int16_t> piece{again.data() + at, n};
      if (n == chunk) {
        encoder_.send(piece, *asr_);
      } else {
        encoder_.pend(piece);  // a partial last chunk waits for live audio
      }
    }
  }
  replay_.clear_held();
  if (retry_ended_) {
    retry_ended_ = false;
    streaming_ = false;
    encoder_.flush(*asr_);
    asr_->finish();
  }
}

void AsrFeed::on_closed(const providers::StreamStatus& st) {
  if (asr_) dropped_ += asr_->dropped();
  asr_.reset();
  const bool was_streaming = streaming_;
  streaming_ = false;
  if (!st.ok()) {
    if (counters_ != nullptr) counters_->errors.add();
    spdlog::warn("call uuid={}: ASR stream failed: {} ({})", uuid_, logtext::log_text(st.message),
                 st.code);
    if (++failures_ >= 2) {
      if (ev_.failed) ev_.failed("ASR failed twice: " + st.message);
      return;
    }
    // Broken before the utterance's final result: retry once after the backoff with the
    // utterance again, instead of losing what the caller said.
    if (was_streaming || utterance_.empty()) {
      retry_at_ = tick_ + static_cast<std::uint64_t>(spec_.retry_backoff.count() / kTickMs);
      retry_ended_ = !was_streaming;
      utterance_.clear();
      encoder_.clear();
      replay_.clear_held();
      return;
    }
  } else {
    failures_ = 0;
  }
  std::string text = std::exchange(utterance_, {});
  spdlog::debug("call uuid={}: ASR heard \"{}\"", uuid_, logtext::log_text(text));
  if (ev_.utterance) ev_.utterance(std::move(text));
}

void AsrFeed::cancel() {
  ++gen_;  // the cancelled stream's last events are not this feed's business any more
  retry_at_ = kNever;
  retry_ended_ = false;
  streaming_ = false;
  if (asr_) {
    dropped_ += asr_->dropped();
    asr_->cancel();
  }
  asr_.reset();
}

void AsrFeed::stop() {
  alive_.reset();
  cancel();
  clients_->call_ended(call_.call_id());
}

std::uint64_t AsrFeed::dropped() const {
  return dropped_ + (asr_ ? asr_->dropped() : 0);
}

}  // namespace voxbridge::pipeline
