#include "voxbridge/pipeline/turn_report.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <optional>

#include "voxbridge/logtext/log_text.hpp"

namespace voxbridge::pipeline {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  if (a == Clock::time_point{} || b == Clock::time_point{}) return -1;
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string ms_text(double v) {
  return v < 0 ? "-" : fmt::format("{:.0f}", v);
}

/// A duration for the transcript: whole milliseconds, or none when a milestone is missing.
std::optional<std::int64_t> whole_ms(double v) {
  if (v < 0) return std::nullopt;
  return std::llround(v);
}

}  // namespace

TurnReport::TurnReport(const PipelineSpec& spec, const agent::CallInfo& info)
    : info_(info), m_(info.metrics), call_start_(Clock::now()) {
  if (m_ != nullptr) {
    auto& slots = metrics::provider_slots();
    asr_slot_ = slots.slot(spec.asr.name);
    llm_slot_ = slots.slot(spec.llm.name);
    tts_slot_ = slots.slot(spec.tts.name);
  }
}

metrics::ProviderCounters* TurnReport::provider(std::size_t slot) const {
  return m_ == nullptr ? nullptr : &m_->providers[slot];
}

void TurnReport::note(events::Event e) const {
  if (info_.transcript) info_.transcript(std::move(e));
}

void TurnReport::heard(std::string_view text, bool is_final) {
  if (text.empty()) return;
  note(is_final ? events::user(text) : events::interim(text));
}

void TurnReport::first_frame(Clock::time_point at) {
  if (first_audio_counted_ || m_ == nullptr) return;
  first_audio_counted_ = true;
  m_->first_agent_audio.observe(at - call_start_);
}

void TurnReport::spoken(const TurnTimeline& t, std::string_view user_text, std::string_view reply) {
  if (user_text.empty() && t.asr_final == Clock::time_point{}) {
    spdlog::debug("call uuid={}: turn {} spoken (no caller speech before it)", info_.uuid, t.turn);
  } else {
    spdlog::info(
        "turn uuid={} n={} speech_end->asr_final={}ms ->llm_first_token={}ms "
        "->tts_first_audio={}ms ->first_frame={}ms total={}ms user=\"{}\" reply=\"{}\"",
        info_.uuid, t.turn, ms_text(ms_between(t.speech_end, t.asr_final)),
        ms_text(ms_between(t.asr_final, t.llm_first_token)),
        ms_text(ms_between(t.llm_first_token, t.tts_first_audio)),
        ms_text(ms_between(t.tts_first_audio, t.first_frame)),
        ms_text(ms_between(t.speech_end, t.first_frame)), logtext::log_text(user_text),
        logtext::log_text(reply));
  }
  count(t);
  if (!reply.empty()) {
    note(events::agent_reply(t.turn, reply, whole_ms(ms_between(t.speech_end, t.first_frame))));
  }
}

void TurnReport::interrupted(const TurnTimeline& t, std::uint32_t heard_ms, std::string_view heard,
                             std::string_view reply, Clock::time_point overlap_started) {
  if (m_ != nullptr) {
    m_->barge_ins.add();
    if (overlap_started != Clock::time_point{})
      m_->barge_in.observe(Clock::now() - overlap_started);
  }
  count(t);
  note(events::barge_in(t.turn, heard_ms, heard, reply));
}

void TurnReport::usage(const events::PipelineUsage& u) {
  note(events::pipeline_usage(u));
}

void TurnReport::fell_back() {
  if (m_ != nullptr) m_->fallbacks.add();
}

void TurnReport::count(const TurnTimeline& t) {
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

}  // namespace voxbridge::pipeline
