// The conversation pipeline: an Agent that listens (VAD with pre-roll, streaming ASR), thinks
// (an LLM turn, streamed), and speaks (TTS, sentence by sentence as the LLM writes, queued for
// the pacer under the playout watermarks), with barge-in, DTMF, actions, a no-input timeout and
// a fallback when providers fail. Providers are reached through providers::ProviderClients.
//
// One PipelineAgent per call, on the call's io thread (src/pipeline/pipeline_agent.cpp: the
// turn state machine), made of parts with headers of their own: caller_listener (VAD, echo
// gate, barge-in), asr_feed (the caller's words to ASR), llm_turns, reply_speaker (TTS and
// playout), action_runner (actions to Asterisk) and turn_report (log, metrics, transcript).
// Provider events come back through CallControl::poster(). The pipeline's clock is the 20 ms
// tick (on_tick), so timeouts are deterministic in tests; wall-clock times are taken only for
// the per-turn timeline.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/llm/v1/llm.pb.h"
#include "voxbridge/pipeline/spec.hpp"
#include "voxbridge/providers/clients.hpp"
#include "voxbridge/providers/target.hpp"
#include "voxbridge/vad/vad.hpp"

namespace voxbridge::pipeline {

/// Wall-clock milestones of one turn, for the log line and metrics.
struct TurnTimeline {
  using TimePoint = std::chrono::steady_clock::time_point;
  unsigned turn = 0;
  TimePoint speech_end{};  ///< endpoint (VAD silence or ASR end of utterance)
  TimePoint asr_final{};   ///< the final transcript (ASR stream closed)
  TimePoint llm_first_token{};
  TimePoint tts_first_audio{};
  TimePoint first_frame{};  ///< the tick that sent the reply's first frame to the caller
  bool interrupted = false;
};

/// The provider as configured, with `deadline` if it sets none: no stream or turn can hang a
/// call.
providers::ProviderTarget bounded(const providers::ProviderTarget& t,
                                  std::chrono::milliseconds deadline);

/// Everything a pipeline call needs that outlives it: the spec and the provider clients.
class PipelineFactory {
 public:
  PipelineFactory(PipelineSpec spec, int internal_rate_hz, int resampler_quality,
                  std::shared_ptr<providers::ProviderClients> clients);
  std::unique_ptr<agent::Agent> create() const;
  const PipelineSpec& spec() const { return *spec_; }

 private:
  std::shared_ptr<const PipelineSpec> spec_;
  int rate_hz_;
  int quality_;
  std::shared_ptr<providers::ProviderClients> clients_;
};

/// Three 150 ms beeps at 480 Hz, 150 ms apart: the fallback when nothing else is configured.
std::vector<std::int16_t> default_fallback_prompt(int rate_hz);

/// Longest piece of text sent to TTS at once: a reply without sentence ends is cut at the last
/// space before this (or here, on a UTF-8 character boundary), so the splitter holds no more.
inline constexpr std::size_t kMaxSentenceBytes = 400;
/// Text of one reply kept and spoken (about four minutes of speech); the model's text beyond it
/// is dropped with a warning, the reply ends as usual.
inline constexpr std::size_t kMaxReplyBytes = 4096;
/// The conversation history sent with each turn: at most this many messages and bytes of text;
/// the oldest user and assistant messages go first (system messages stay). Replies the caller
/// interrupted are kept apart, the last kMaxInterruptedMessages of them.
inline constexpr std::size_t kMaxHistoryMessages = 40;
inline constexpr std::size_t kMaxHistoryBytes = 32 * 1024;
inline constexpr std::size_t kMaxInterruptedMessages = 8;

/// The conversation sent with each LLM turn, capped at `max_messages` and `max_bytes` of text
/// (tool calls' arguments count as text): the oldest user and assistant messages go first
/// (system messages stay), the newest always stays. An assistant message with tool calls and
/// the TOOL messages answering them go together, so every call in it keeps its answer (the
/// Chat Completions API refuses a call without one). One per call, used on the call's thread.
class ConversationHistory {
 public:
  using Entry = llm::v1::Message;
  explicit ConversationHistory(std::size_t max_messages = kMaxHistoryMessages,
                               std::size_t max_bytes = kMaxHistoryBytes)
      : max_messages_(max_messages), max_bytes_(max_bytes) {}
  void add(llm::v1::Role role, std::string text);
  /// The assistant's `text` with the tool `calls` it made, then one TOOL message per call:
  /// `answers[i]` answers calls[i] (answers shorter than calls: the rest say `pending`).
  void add_tool_round(std::string text, const std::vector<common::v1::ToolCall>& calls,
                      const std::vector<std::string>& answers, const std::string& pending);
  /// The TOOL message answering call `id` now says `text`; false if there is none (capped away).
  bool answer(const std::string& id, std::string text);
  /// Removes the newest message if it is `role` saying `text`; true if it did.
  bool drop_last_if(llm::v1::Role role, const std::string& text);
  const std::vector<Entry>& messages() const { return messages_; }
  /// Text held, in bytes.
  std::size_t bytes() const { return bytes_; }

 private:
  void push(Entry m);
  static std::size_t size_of(const Entry& m);

  std::size_t max_messages_, max_bytes_;
  std::vector<Entry> messages_;
  std::size_t bytes_ = 0;
};

/// Splits streamed LLM text at sentence and clause ends, so TTS can start before the reply is
/// complete. Pieces shorter than `min_chars` wait for more text (no one-word utterances); a
/// piece reaching `max_bytes` without an end is cut there (see kMaxSentenceBytes).
class SentenceSplitter {
 public:
  explicit SentenceSplitter(std::size_t min_chars = 12, std::size_t max_bytes = kMaxSentenceBytes)
      : min_chars_(min_chars), max_bytes_(max_bytes) {}
  /// Appends `delta`; returns the complete pieces now available (possibly none).
  std::vector<std::string> add(std::string_view delta);
  /// Whatever is left (end of the reply).
  std::string flush();

 private:
  std::size_t min_chars_;
  std::size_t max_bytes_;
  std::string buf_;
};

}  // namespace voxbridge::pipeline
