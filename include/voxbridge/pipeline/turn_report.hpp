// What the pipeline tells about its turns: the log line of each turn (its wall-clock phases),
// the io thread's histograms (metrics::AgentCounters), and the call's transcript events (what
// the caller said, what the agent said, barge-ins). The one place the pipeline writes its
// transcript from.
//
// One per call, on the call's io thread. Nothing here is on the per-frame path.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/events/call_event.hpp"
#include "voxbridge/pipeline/pipeline.hpp"

namespace voxbridge::pipeline {

class TurnReport {
 public:
  using Clock = std::chrono::steady_clock;

  /// `info` (uuid, metrics, transcript) must outlive the report; `spec` names the providers.
  TurnReport(const PipelineSpec& spec, const agent::CallInfo& info);

  /// The providers' counters on this io thread; null when nothing is counted.
  metrics::ProviderCounters* asr() const { return provider(asr_slot_); }
  metrics::ProviderCounters* llm() const { return provider(llm_slot_); }
  metrics::ProviderCounters* tts() const { return provider(tts_slot_); }

  /// An interim or final transcript of the caller.
  void heard(std::string_view text, bool is_final);
  /// The reply's first frame left for the caller (the call's first agent audio is counted).
  void first_frame(Clock::time_point at);
  /// A reply was played to its end: its log line, its phases counted, the agent event.
  void spoken(const TurnTimeline& t, std::string_view user_text, std::string_view reply);
  /// A reply was interrupted after `heard_ms` of it (`heard`: its chunks played to their end);
  /// `overlap_started` is when the caller's voice over it began (zero if it was words).
  void interrupted(const TurnTimeline& t, std::uint32_t heard_ms, std::string_view heard,
                   std::string_view reply, Clock::time_point overlap_started);
  /// The call played its fallback.
  void fell_back();
  /// What the providers were given and gave over the call (the `usage` event, at its end).
  void usage(const events::PipelineUsage& u);

 private:
  metrics::ProviderCounters* provider(std::size_t slot) const;
  void count(const TurnTimeline& t);
  void note(events::Event e) const;

  const agent::CallInfo& info_;
  metrics::AgentCounters* m_;
  std::size_t asr_slot_ = 0, llm_slot_ = 0, tts_slot_ = 0;
  Clock::time_point call_start_;
  bool first_audio_counted_ = false;
};

}  // namespace voxbridge::pipeline
