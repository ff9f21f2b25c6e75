// The settings of the conversation agents ([agent-NAME] type = pipeline or s2s) as plain data:
// config fills them, the pipeline's factories read them. No gRPC, no protobuf: config names
// providers and audio options without linking the pipeline.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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

struct SpeechAgentSpec {
  providers::ProviderTarget agent;
  int input_rate_hz = 16000;   ///< LINEAR16 sent to the agent
  int output_rate_hz = 16000;  ///< LINEAR16 asked of the agent
  std::string language = "en-US";
  std::map<std::string, std::string> options;  ///< passed in AgentConfig.options
  /// Most agent audio held beyond the playout queue (the rest is dropped, counted).
  std::chrono::milliseconds max_buffered_audio{30000};
  /// On a G.711 leg, the stream carries the leg's own codec both ways (MULAW or ALAW at 8000 Hz,
  /// no transcoding or resampling on the agent's side) instead of LINEAR16 at the rates above
  /// (`leg_codec = on|off`). Unset: the backend's default, off for gRPC agents.
  std::optional<bool> leg_codec;
  /// While agent audio plays, caller audio no louder than its echo (PipelineSpec::echo_ratio of
  /// the agent's peak over echo_window) goes to the agent as silence (`echo_gate = on|off`).
  bool echo_gate = true;
  double echo_ratio = 0.5;
  std::chrono::milliseconds echo_window{200};
  /// When the agent fails (its service refuses, errs or goes away), after the fallback prompt
  /// the caller is transferred here instead of hung up (`failure_transfer = EXTEN[@CONTEXT]`;
  /// the same security rule and allowlists as any transfer). Empty = hang up.
  std::string failure_transfer;
  std::string failure_context;
};

}  // namespace voxbridge::pipeline
