#include "voxbridge/pipeline/reply_speaker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "voxbridge/logtext/log_text.hpp"

namespace voxbridge::pipeline {

namespace {
constexpr int kTickMs = 20;
constexpr std::size_t kTtsQueue = 64;  // text messages a TTS stream may hold back

/// UTF-8 code points: what a voice service counts as characters.
std::uint64_t characters(std::string_view text) {
  std::uint64_t n = 0;
  for (const char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}
}  // namespace

ReplySpeaker::ReplySpeaker(const PipelineSpec& spec, int internal_rate_hz, int quality,
                           std::shared_ptr<providers::ProviderClients> clients,
                           const common::v1::CallInfo& call)
    : spec_(spec),
      rate_hz_(internal_rate_hz),
      clients_(std::move(clients)),
      call_(call),
      from_tts_(spec.tts_rate_hz, internal_rate_hz, quality, false),
      far_(internal_rate_hz) {}

ReplySpeaker::~ReplySpeaker() {
  if (tts_) tts_->cancel();  // see AsrFeed::~AsrFeed
}

void ReplySpeaker::start(agent::CallControl& control, std::string uuid, Events events,
                         metrics::ProviderCounters* counters) {
  control_ = &control;
  uuid_ = std::move(uuid);
  ev_ = std::move(events);
  counters_ = counters;
}

void ReplySpeaker::begin() {
  if (tts_) std::exchange(tts_, nullptr)->cancel();  // a stream left open by end()
  ++gen_;
  reply_ = Reply{};
  reply_.active = true;
  splitter_ = SentenceSplitter();
}

void ReplySpeaker::text(std::string_view delta) {
  for (auto& piece : splitter_.add(delta)) say(piece);
}

void ReplySpeaker::flush_text() {
  if (auto rest = splitter_.flush(); !rest.empty()) say(rest);
}

void ReplySpeaker::say(const std::string& piece) {
  if (piece.empty() || !reply_.active) return;
  reply_.chunks.push_back({++next_chunk_, piece, 0});
  if (reply_.retry_at != kNever) return;  // the retry sends it
  if (!tts_ && !open()) return;
  if (!tts_->send_text(piece, next_chunk_)) {
    spdlog::warn("call uuid={}: TTS queue full", uuid_);
    return;
  }
  characters_sent_ += characters(piece);
}

void ReplySpeaker::finish() {
  reply_.finished = true;
  if (tts_) tts_->finish();
}

void ReplySpeaker::play(std::span<const std::int16_t> audio) {
  out_.assign(audio.begin(), audio.end());
  out_pos_ = 0;
  feed();
}

void ReplySpeaker::end() {
  ++gen_;
  reply_.active = false;
}

bool ReplySpeaker::open() {
  tts::v1::SynthesisConfig cfg;
  *cfg.mutable_call() = call_;
  cfg.mutable_format()->set_encoding(common::v1::LINEAR16);
  cfg.mutable_format()->set_sample_rate_hz(static_cast<std::uint32_t>(spec_.tts_rate_hz));
  cfg.set_voice(spec_.voice);
  cfg.set_language(spec_.language);
  const std::uint64_t gen = gen_;
  const std::weak_ptr<int> alive = alive_;
  auto live = [this, gen, alive] { return !alive.expired() && gen == gen_; };
  providers::TtsEvents ev;
  ev.response = [this, live](tts::v1::SynthesizeResponse& r) {
    if (live()) on_audio(r);
  };
  ev.closed = [this, live](const providers::StreamStatus& st) {
    if (live()) on_closed(st);
  };
  try {
    tts_ = clients_->open_tts(bounded(spec_.tts, spec_.rpc_timeout), cfg, control_->poster(),
                              std::move(ev), kTtsQueue);
  } catch (const std::exception& e) {
    if (ev_.failed) ev_.failed(std::string("TTS: ") + e.what());
    return false;
  }
  if (counters_ != nullptr) counters_->streams.add();
  ++streams_opened_;
  from_tts_.reset();
  reply_.paused = false;
  reply_.partial = 0;
  reply_.tts_done = false;
  // Chunk marks of this stream count from its start; the reply's audio so far precedes it.
  reply_.base_ms = static_cast<std::uint32_t>((reply_.pushed + (out_.size() - out_pos_)) * 1000 /
                                              static_cast<unsigned>(rate_hz_));
  return true;
}

void ReplySpeaker::retry() {
  reply_.retry_at = kNever;
  if (!open()) return;
  for (const auto& c : reply_.chunks) {
    if (c.done_ms != 0) continue;
    if (!tts_->send_text(c.text, c.id)) {
      spdlog::warn("call uuid={}: TTS queue full", uuid_);
    } else {
      characters_sent_ += characters(c.text);
    }
  }
  if (reply_.finished) tts_->finish();
}

void ReplySpeaker::on_audio(tts::v1::SynthesizeResponse& r) {
  if (r.has_chunk_done()) {
    for (auto& c : reply_.chunks) {
      if (c.id == r.chunk_done().chunk_id()) c.done_ms = reply_.base_ms + r.chunk_done().audio_ms();
    }
    reply_.partial = 0;
    return;
  }
  const std::string& bytes = r.audio();
  if (bytes.size() < 2) return;
  if (!reply_.got_audio) {
    reply_.got_audio = true;
    if (ev_.first_audio) ev_.first_audio();
  }
  pcm_.resize(bytes.size() / 2);
  std::memcpy(pcm_.data(), bytes.data(), pcm_.size() * 2);
  received_samples_ += pcm_.size();
  const std::size_t at = out_.size();
  out_.resize(at + from_tts_.max_output(pcm_.size()));
  out_.resize(at + from_tts_.process(pcm_, {out_.data() + at, out_.size() - at}));
  reply_.partial += out_.size() - at;
  // Reads pause while audio waits beyond the playout queue (feed), so this holds at most a
  // message or two; the cap is for a provider that sends minutes in one message.
  const auto cap = static_cast<std::size_t>(spec_.max_buffered_audio.count() * rate_hz_ / 1000);
  if (out_.size() - out_pos_ > cap) {
    dropped_samples_ += out_.size() - out_pos_ - cap;
    out_.resize(out_pos_ + cap);
  }
  feed();
}

void ReplySpeaker::on_closed(const providers::StreamStatus& st) {
  tts_.reset();
  reply_.paused = false;
  if (st.ok()) {
    reply_.tts_done = true;
    return;
  }
  if (counters_ != nullptr) counters_->errors.add();
  spdlog::warn("call uuid={}: TTS stream failed: {} ({})", uuid_, logtext::log_text(st.message),
               st.code);
  if (reply_.retries > 0) {
    if (ev_.failed) ev_.failed("TTS failed: " + st.message);
    return;
  }
  // Once more after a backoff, from the start of the chunk it broke in: what of that chunk is
  // still unplayed goes (the caller hears it restart, not a jump).
  ++reply_.retries;
  const std::size_t drop = std::min(reply_.partial, out_.size() - out_pos_);
  out_.resize(out_.size() - drop);
  reply_.retry_at = tick_ + static_cast<std::uint64_t>(spec_.retry_backoff.count() / kTickMs);
}

void ReplySpeaker::feed() {
  while (out_pos_ < out_.size() && !control_->playout_full()) {
    const bool was_empty = control_->queued_samples() == 0;
    const std::span<const std::int16_t> rest{out_.data() + out_pos_, out_.size() - out_pos_};
    const std::size_t n = control_->play(rest);
    if (n == 0) break;
    far_.queued(rest.first(n));
    if (reply_.active) {
      // Into an empty queue: the reply's first frame leaves on the next tick.
      if (reply_.pushed == 0 && was_empty) reply_.first_frame_due = true;
      reply_.pushed += n;
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
    if (backlog && !reply_.paused) tts_->pause_reads();
    if (!backlog && reply_.paused) tts_->resume_reads();
    reply_.paused = backlog;
  }
}

void ReplySpeaker::tick() {
  ++tick_;
  if (reply_.retry_at != kNever && tick_ >= reply_.retry_at && reply_.active) retry();
}

bool ReplySpeaker::take_first_frame() {
  return std::exchange(reply_.first_frame_due, false);
}

bool ReplySpeaker::done() const {
  return reply_.tts_done && !tts_ && out_.empty() && control_->queued_samples() == 0;
}

bool ReplySpeaker::audible() const {
  return (reply_.active && reply_.pushed > 0) || control_->queued_samples() > 0;
}

bool ReplySpeaker::idle() const {
  return out_.empty() && control_->queued_samples() == 0 &&
         (reply_.chunks.empty() || reply_.chunks.back().done_ms != 0);
}

ReplySpeaker::Heard ReplySpeaker::interrupt() {
  const std::size_t queued = control_->queued_samples();
  control_->flush();
  reply_.first_frame_due = false;
  const std::uint64_t played = reply_.pushed - std::min<std::uint64_t>(reply_.pushed, queued);
  Heard h;
  h.ms = static_cast<std::uint32_t>(played * 1000 / static_cast<unsigned>(rate_hz_));
  for (const auto& c : reply_.chunks) {
    if (c.done_ms == 0 || c.done_ms > h.ms) break;
    if (!h.text.empty()) h.text += ' ';
    h.text += c.text;
  }
  cancel();
  end();
  return h;
}

void ReplySpeaker::cancel() {
  ++gen_;
  reply_.retry_at = kNever;
  reply_.first_frame_due = false;
  reply_.tts_done = true;  // nothing more will be synthesized
  if (tts_) tts_->cancel();
  tts_.reset();
  out_.clear();
  out_pos_ = 0;
}

void ReplySpeaker::stop() {
  alive_.reset();
  cancel();
}

}  // namespace voxbridge::pipeline
