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
#include "voxbridge/providers/clients.hpp"
#include "voxbridge/providers/target.hpp"
#include "voxbridge/vad/vad.hpp"

namespace voxbridge::pipeline {

enum class DtmfMode {
  event,    ///< every digit goes to the LLM as an event at once
  collect,  ///< digits are collected up to the terminator, a timeout or a maximum
};

/// How caller audio is sent to the recognizer.
enum class AsrEncoding { linear16, mulaw, opus };

/// Settings of one pipeline agent ([agent-NAME] type = pipeline).
struct PipelineSpec {
  providers::ProviderTarget asr;
  providers::ProviderTarget llm;
  providers::ProviderTarget tts;
  /// Rate of the audio sent to ASR, and never above the caller's leg rate: an 8 kHz leg goes
  /// at 8 kHz (upsampling adds nothing, and the recognizer can tell it is telephone audio).
  int asr_rate_hz = 16000;
  /// Audio per ASR message while the caller speaks (a multiple of 20 ms). Fewer, larger
  /// messages cost far less CPU (each is one gRPC write and completion). Silence is sent as
  /// it comes (LINEAR16, MULAW), so the recognizer's endpointer is never kept waiting.
  std::chrono::milliseconds asr_chunk{60};
  /// Audio to ASR as LINEAR16; MULAW (G.711, half the bytes, for recognizers tuned to the
  /// telephone band, usually at 8 kHz); or Opus (one packet of asr_chunk per message: 20, 40
  /// or 60 ms) to cut bandwidth to remote providers (~24 kbit/s instead of 256 at 16 kHz).
  AsrEncoding asr_encoding = AsrEncoding::linear16;
  int asr_opus_bitrate = 24000;
  int tts_rate_hz = 16000;  ///< LINEAR16 rate asked of TTS
  std::string language = "en-US";
  /// Words and phrases the recognizer should expect (RecognitionConfig.phrase_hints). With
  /// `rules`, the rule set's keywords unless set.
  std::vector<std::string> phrase_hints;
  std::string voice;
  /// Spoken at call start through TTS; empty = none (the caller speaks first).
  std::string greeting = "Hello, how can I help you?";
  /// A WAV played at call start instead of the greeting text (empty = use the text).
  std::string greeting_file;
  /// A WAV played before hanging up when providers fail (empty = three short beeps).
  std::string fallback_file;

  vad::VadOptions vad;
  vad::DetectorOptions detector;  ///< speech start confirmation and endpointing silence
  std::chrono::milliseconds pre_roll{300};

  bool barge_in = true;
  /// Caller speech confirmed this long while the agent speaks interrupts it.
  std::chrono::milliseconds barge_in_after{300};
  /// Or: an interim transcript of at least this many words while the agent speaks (0 = off).
  std::size_t barge_in_words = 0;
  /// While the agent speaks, caller audio counts as speech only if its peak exceeds this
  /// fraction of the agent's peak over the echo window (a Geigel double-talk test), so the
  /// agent's own voice coming back from the line does not interrupt it.
  double echo_ratio = 0.5;
  std::chrono::milliseconds echo_window{200};

  std::chrono::milliseconds no_input_timeout{8000};  ///< after the agent stops speaking
  int max_no_input = 2;                              ///< timeouts in a row before hanging up
  std::string goodbye = "Goodbye.";

  /// A transfer the agent asks for while voxbridge has no Asterisk control path: hang up after
  /// the reply (true), so the dialplan continues after AudioSocket() and can route the call on
  /// (see dialplan/), or only answer the agent "not configured" (false).
  bool transfer_hangs_up = true;

  DtmfMode dtmf = DtmfMode::event;
  char dtmf_terminator = '#';
  std::chrono::milliseconds dtmf_timeout{3000};
  std::size_t dtmf_max_digits = 16;

  /// The files above, loaded at the internal rate by PipelineFactory.
  std::shared_ptr<const std::vector<std::int16_t>> greeting_prompt;
  std::shared_ptr<const std::vector<std::int16_t>> fallback_prompt;
  /// Deadline of each LLM turn and TTS stream when its provider sets none.
  std::chrono::milliseconds rpc_timeout{30000};
  /// Deadline of each ASR stream (one utterance) when its provider sets none.
  std::chrono::milliseconds max_utterance{60000};
  /// Wait before the one retry of a broken ASR stream, LLM turn or TTS stream.
  std::chrono::milliseconds retry_backoff{200};
  /// Caller audio of the current utterance kept (at the ASR rate, as sent) so that an ASR stream
  /// that breaks mid-utterance is retried with the utterance from its start and nothing the
  /// caller said is lost. An utterance longer than this loses what came before the break (the
  /// retry hears the rest); 0 = keep nothing. Memory: resident only as far as an utterance used.
  std::chrono::milliseconds asr_replay{8000};
  /// TTS reads pause while audio waits beyond the playout queue (backpressure through gRPC
  /// flow control), so little is ever held here; this caps what one oversized TTS message can
  /// add (the rest is dropped and counted).
  std::chrono::milliseconds max_buffered_audio{30000};
};

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

/// The conversation sent with each LLM turn, capped at `max_messages` and `max_bytes` of text:
/// the oldest user and assistant messages go first (system messages stay), the newest always
/// stays. One per call, used on the call's thread.
class ConversationHistory {
 public:
  using Entry = std::pair<llm::v1::Role, std::string>;
  explicit ConversationHistory(std::size_t max_messages = kMaxHistoryMessages,
                               std::size_t max_bytes = kMaxHistoryBytes)
      : max_messages_(max_messages), max_bytes_(max_bytes) {}
  void add(llm::v1::Role role, std::string text);
  /// Removes the newest message if it is `role` saying `text`; true if it did.
  bool drop_last_if(llm::v1::Role role, const std::string& text);
  const std::vector<Entry>& messages() const { return messages_; }
  /// Text held, in bytes.
  std::size_t bytes() const { return bytes_; }

 private:
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
