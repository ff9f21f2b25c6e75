#include "support/fake_clients.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace voxbridge::testing {

// --- ManualPoster ---

providers::Poster ManualPoster::poster() const {
  // A weak reference: posted closures hold streams, streams hold this poster.
  return [w = std::weak_ptr<std::deque<std::function<void()>>>(q_)](std::function<void()> fn) {
    if (auto q = w.lock()) q->push_back(std::move(fn));
  };
}

std::size_t ManualPoster::run() {
  std::size_t n = 0;
  while (!q_->empty()) {
    auto fn = std::move(q_->front());
    q_->pop_front();
    fn();
    ++n;
  }
  return n;
}

// --- ASR ---

bool FakeAsrStream::send_audio(std::span<const std::uint8_t> bytes) {
  if (finished_ || closed_) return false;
  if (refuse_) {
    ++dropped_;
    return false;
  }
  audio_.emplace_back(bytes.begin(), bytes.end());
  return true;
}

std::vector<std::int16_t> FakeAsrStream::pcm() const {
  std::vector<std::int16_t> out;
  for (const auto& m : audio_) {
    const std::size_t at = out.size();
    out.resize(at + m.size() / 2);
    std::memcpy(out.data() + at, m.data(), (m.size() / 2) * 2);
  }
  return out;
}

void FakeAsrStream::cancel() {
  cancelled_ = true;
  close({providers::StreamStatus::kCancelled, "cancelled"});
}

void FakeAsrStream::speech_started(std::uint32_t offset_ms) {
  if (closed_) return;
  post_([self = shared_from_this(), offset_ms] {
    if (self->events_.speech_started) self->events_.speech_started(offset_ms);
  });
}

void FakeAsrStream::result(providers::AsrResult r) {
  if (closed_) return;
  post_([self = shared_from_this(), r = std::move(r)] {
    if (self->events_.result) self->events_.result(r);
  });
}

void FakeAsrStream::result(std::string transcript, bool is_final) {
  providers::AsrResult r;
  r.transcript = std::move(transcript);
  r.is_final = is_final;
  result(std::move(r));
}

void FakeAsrStream::end_of_utterance(std::uint32_t offset_ms) {
  if (closed_) return;
  post_([self = shared_from_this(), offset_ms] {
    if (self->events_.end_of_utterance) self->events_.end_of_utterance(offset_ms);
  });
}

void FakeAsrStream::close(providers::StreamStatus status) {
  if (closed_) return;
  closed_ = true;
  post_([self = shared_from_this(), status = std::move(status)] {
    if (self->events_.closed) self->events_.closed(status);
  });
}

// --- LLM ---

void FakeLlmTurn::cancel() {
  cancelled_ = true;
  close({providers::StreamStatus::kCancelled, "cancelled"});
}

void FakeLlmTurn::respond(llm::v1::TurnResponse r) {
  if (closed_) return;
  post_([self = shared_from_this(), r = std::move(r)]() mutable {
    if (self->events_.response) self->events_.response(r);
  });
}

void FakeLlmTurn::text(std::string delta) {
  llm::v1::TurnResponse r;
  r.set_text_delta(std::move(delta));
  respond(std::move(r));
}

void FakeLlmTurn::action(common::v1::Action a) {
  llm::v1::TurnResponse r;
  *r.mutable_action() = std::move(a);
  respond(std::move(r));
}

void FakeLlmTurn::end_of_turn() {
  llm::v1::TurnResponse r;
  r.mutable_end_of_turn();
  respond(std::move(r));
}

void FakeLlmTurn::close(providers::StreamStatus status) {
  if (closed_) return;
  closed_ = true;
  post_([self = shared_from_this(), status = std::move(status)] {
    if (self->events_.closed) self->events_.closed(status);
  });
}

// --- TTS ---

bool FakeTtsStream::send_text(const std::string& text, std::uint64_t chunk_id) {
  if (finished_ || closed_) return false;
  texts_.push_back({text, chunk_id});
  return true;
}

void FakeTtsStream::cancel() {
  cancelled_ = true;
  if (closed_ && !close_held_) return;
  held_.clear();  // a cancelled stream delivers nothing more but its end
  close_held_ = false;
  closed_ = true;
  deliver_closed({providers::StreamStatus::kCancelled, "cancelled"});
}

void FakeTtsStream::pause_reads() {
  paused_ = true;
  ++pauses_;
}

void FakeTtsStream::resume_reads() {
  paused_ = false;
  ++resumes_;
  while (!held_.empty()) {
    deliver(std::move(held_.front()));
    held_.pop_front();
  }
  if (close_held_) {
    close_held_ = false;
    deliver_closed(std::move(held_status_));
  }
}

void FakeTtsStream::respond(tts::v1::SynthesizeResponse r) {
  if (closed_) return;
  auto msg = std::make_shared<tts::v1::SynthesizeResponse>(std::move(r));
  if (paused_) {
    held_.push_back(std::move(msg));
    return;
  }
  deliver(std::move(msg));
}

void FakeTtsStream::deliver(std::shared_ptr<tts::v1::SynthesizeResponse> r) {
  post_([self = shared_from_this(), r = std::move(r)] {
    if (self->events_.response) self->events_.response(*r);
  });
}

void FakeTtsStream::deliver_closed(providers::StreamStatus status) {
  post_([self = shared_from_this(), status = std::move(status)] {
    if (self->events_.closed) self->events_.closed(status);
  });
}

void FakeTtsStream::audio(std::span<const std::int16_t> pcm) {
  tts::v1::SynthesizeResponse r;
  r.set_audio(std::string(reinterpret_cast<const char*>(pcm.data()), pcm.size() * 2));
  respond(std::move(r));
}

void FakeTtsStream::chunk_done(std::uint64_t chunk_id, std::uint32_t audio_ms) {
  tts::v1::SynthesizeResponse r;
  r.mutable_chunk_done()->set_chunk_id(chunk_id);
  r.mutable_chunk_done()->set_audio_ms(audio_ms);
  respond(std::move(r));
}

void FakeTtsStream::close(providers::StreamStatus status) {
  if (closed_) return;
  closed_ = true;
  if (paused_ && !held_.empty()) {
    close_held_ = true;
    held_status_ = std::move(status);
    return;
  }
  deliver_closed(std::move(status));
}

// --- speech-to-speech agent ---

bool FakeAgentStream::send(agent::v1::AgentRequest request) {
  if (finished_ || closed_) return false;
  sent_.push_back(std::move(request));
  return true;
}

void FakeAgentStream::cancel() {
  cancelled_ = true;
  end({providers::StreamStatus::kCancelled, "cancelled"});
}

void FakeAgentStream::respond(agent::v1::AgentResponse r) {
  if (closed_) return;
  post_([self = shared_from_this(), r = std::move(r)]() mutable {
    if (self->events_.response) self->events_.response(r);
  });
}

void FakeAgentStream::end(providers::StreamStatus status) {
  if (closed_) return;
  closed_ = true;
  post_([self = shared_from_this(), status = std::move(status)] {
    if (self->events_.closed) self->events_.closed(status);
  });
}

// --- the factory ---

void FakeProviderClients::maybe_fail() {
  if (fail_next_.empty()) return;
  throw std::runtime_error(std::exchange(fail_next_, {}));
}

std::shared_ptr<providers::AsrStream> FakeProviderClients::open_asr(
    const providers::ProviderTarget& target, const asr::v1::RecognitionConfig& config,
    providers::Poster post, providers::AsrEvents events, std::size_t max_queued) {
  maybe_fail();
  auto s = std::make_shared<FakeAsrStream>(target, config, std::move(post), std::move(events),
                                           max_queued);
  asr_.push_back(s);
  return s;
}

std::shared_ptr<providers::LlmTurn> FakeProviderClients::open_llm(
    const providers::ProviderTarget& target, const llm::v1::TurnRequest& request,
    providers::Poster post, providers::LlmEvents events) {
  maybe_fail();
  auto s = std::make_shared<FakeLlmTurn>(target, request, std::move(post), std::move(events));
  llm_.push_back(s);
  return s;
}

std::shared_ptr<providers::TtsStream> FakeProviderClients::open_tts(
    const providers::ProviderTarget& target, const tts::v1::SynthesisConfig& config,
    providers::Poster post, providers::TtsEvents events, std::size_t max_queued) {
  maybe_fail();
  auto s = std::make_shared<FakeTtsStream>(target, config, std::move(post), std::move(events),
                                           max_queued);
  tts_.push_back(s);
  return s;
}

std::shared_ptr<providers::AgentStream> FakeProviderClients::open_agent(
    const providers::ProviderTarget& target, const agent::v1::AgentConfig& config,
    providers::Poster post, providers::AgentEvents events, std::size_t max_queued) {
  maybe_fail();
  auto s = std::make_shared<FakeAgentStream>(target, config, std::move(post), std::move(events),
                                             max_queued);
  agent_.push_back(s);
  return s;
}

FakeAsrStream& FakeProviderClients::last_asr() const {
  if (asr_.empty()) throw std::logic_error("no ASR stream was opened");
  return *asr_.back();
}

FakeLlmTurn& FakeProviderClients::last_llm() const {
  if (llm_.empty()) throw std::logic_error("no LLM turn was opened");
  return *llm_.back();
}

FakeTtsStream& FakeProviderClients::last_tts() const {
  if (tts_.empty()) throw std::logic_error("no TTS stream was opened");
  return *tts_.back();
}

// --- the call's control ---

FakeCallControl::FakeCallControl(ManualPoster& poster, int rate_hz, int capacity_ms,
                                 int high_watermark_ms)
    : poster_(poster),
      rate_hz_(rate_hz),
      frame_(static_cast<std::size_t>(rate_hz / 50)),
      capacity_(static_cast<std::size_t>(rate_hz) * static_cast<std::size_t>(capacity_ms) / 1000),
      high_(static_cast<std::size_t>(rate_hz) * static_cast<std::size_t>(high_watermark_ms) /
            1000) {}

std::size_t FakeCallControl::play(std::span<const std::int16_t> samples) {
  const std::size_t n = std::min(samples.size(), capacity_ - queue_.size());
  queue_.insert(queue_.end(), samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(n));
  accepted_ += n;
  return n;
}

void FakeCallControl::flush() {
  queue_.clear();
  ++flushes_;
}

void FakeCallControl::hangup(std::string_view reason, bool after_playout) {
  hangups_.push_back({std::string(reason), after_playout});
}

std::vector<std::int16_t> FakeCallControl::tick() {
  std::vector<std::int16_t> frame(frame_, 0);
  const std::size_t n = std::min(frame_, queue_.size());
  std::copy_n(queue_.begin(), n, frame.begin());
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
  heard_.insert(heard_.end(), frame.begin(), frame.end());
  return frame;
}

}  // namespace voxbridge::testing
