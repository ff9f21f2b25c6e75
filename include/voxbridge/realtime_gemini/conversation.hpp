// One call's conversation with Gemini Live, as a translator with no I/O: voxbridge's
// speech-to-speech contract (voxbridge.agent.v1) on one side, the Live API's BidiGenerateContent
// client and server messages (https://ai.google.dev/api/live) on the other. The stream
// (backend.cpp) feeds it what arrives and sends what it produces.
//
// What it does:
// - opened(): `setup` (model, AUDIO out with the voice, systemInstruction with the call's facts,
//   the action tools plus the call's business tools as functionDeclarations, both
//   transcriptions, the VAD settings, sessionResumption, context compression); nothing else
//   goes out before `setupComplete`. On a resumed socket the setup carries the latest handle;
//   on a new session after a break without one, the conversation so far goes out as turns.
// - caller audio (LINEAR16 at any rate): resampled to 16 kHz and sent as `realtimeInput.audio`
//   ("audio/pcm;rate=16000") in batches of append_ms; while no session is set up, the newest
//   two seconds wait.
// - the model's audio (serverContent.modelTurn inlineData, 24 kHz PCM): a Mark before a turn's
//   first audio and one after it, the audio resampled to the output format. `interrupted`:
//   ClearPlayback at once, and the rest of that turn is dropped. Transcripts of both sides are
//   given per turn; usageMetadata becomes Usage at each turn's end.
// - tools: transfer, hang_up, send_dtmf, set_variable become voxbridge actions (Action with
//   tool_call_id = the functionCall's id) whose results go back as `toolResponse`; a name from
//   AgentConfig.tools becomes AgentResponse.tool_call and its CallEvent.tool_result the
//   toolResponse. Unknown tools and bad arguments are answered with an error response (the
//   model's words are untrusted; the action runner applies the security rule).
//   toolCallCancellation forgets the calls named (their late results are not sent).
// - goAway and sessionResumptionUpdate: the latest resumable handle is kept; server_event()
//   says `resume` for a goAway, and the stream opens a new socket.
// - DTMF: a clientContent user turn ("The caller pressed 5 on the phone keypad.").
// - caps: end_call() has the model say the goodbye, then hangs up.
// Thread: one at a time, the backend thread that owns the call's socket.
// Bounds: a server message over the socket's limit never gets here; every list it keeps (pending
// tool calls, marks, the replay transcript, held messages and audio) is capped; a broken or
// hostile message is an error result, never undefined behaviour. Text of the call's peers that
// goes out (the caller's name, an action's error, a tool's output) is mended to UTF-8 first.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "voxbridge/agent/v1/agent.pb.h"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/realtime_gemini/options.hpp"

namespace voxbridge::realtime_gemini {

/// The rates of the Live API's audio: PCM s16le mono 16 kHz in, 24 kHz out.
inline constexpr int kInputRateHz = 16000;
inline constexpr int kOutputRateHz = 24000;

class Conversation {
 public:
  struct Sink {
    /// A client message (one JSON text) for the socket.
    std::function<void(std::string json)> send;
    /// Something for voxbridge (audio, marks, transcripts, actions, tool calls, usage, clear).
    std::function<void(agent::v1::AgentResponse response)> respond;
  };
  /// What a server message meant for the session: go on, open a new socket and resume (goAway),
  /// or end (the service refused or failed).
  enum class Verdict { go_on, resume, fatal };

  /// Throws std::invalid_argument if the config's formats are not LINEAR16 8..48 kHz.
  Conversation(std::shared_ptr<const GeminiOptions> options, agent::v1::AgentConfig config,
               int resampler_quality, Sink sink);
  ~Conversation();

  /// The socket is open: sends `setup` (with the resumption handle when there is one).
  void opened();
  /// The socket closed or is being replaced: what would be sent waits for the next setup.
  void disconnected();
  /// Caller audio in the config's input format (LINEAR16).
  void caller_audio(std::string_view bytes);
  void call_event(const agent::v1::CallEvent& event);
  /// One server message. `fatal` with `why` when the session cannot go on.
  Verdict server_event(std::string_view json, std::string& why);
  /// A cap was reached: the model says the goodbye, then the call is hung up.
  void end_call(const std::string& reason);

  /// The latest resumable handle the service gave ("" = none yet).
  const std::string& resumption_handle() const { return handle_; }
  /// The setup was answered with setupComplete on this socket.
  bool ready() const { return ready_; }
  const common::v1::Usage& usage() const { return usage_; }
  /// The last error's words (untrusted).
  const std::string& last_error() const { return last_error_; }

  /// The `setup` message for this call (`handle` non-empty: a resumed session).
  std::string setup_message(const std::string& handle) const;

 private:
  struct PendingTool {
    std::string id, name;
    bool business = false;
    common::v1::Action::KindCase kind = common::v1::Action::KIND_NOT_SET;
  };

  void send(std::string json);
  void send_text_turn(const std::string& text);
  void send_function_response(const std::string& id, const std::string& name,
                              const std::string& response_json);
  void flush_input();
  void on_audio(std::string_view mime, std::string_view b64);
  void on_turn_end(bool interrupted);
  void on_tool_call(const std::string& id, const std::string& name, const std::string& args_json,
                    bool args_ok);
  void on_action_result(const common::v1::ActionResult& r);
  void on_tool_result(const common::v1::ToolResult& r);
  void flush_transcripts();
  void remember(bool caller, const std::string& text);
  void hang_up_now();

  std::shared_ptr<const GeminiOptions> o_;
  agent::v1::AgentConfig config_;
  Sink sink_;
  int in_rate_ = 0, out_rate_ = 0, quality_ = 2;
  std::optional<audio::Resampler> in_rs_, out_rs_;
  int out_rs_from_ = 0;

  struct Input {
    std::string pending;  // 16 kHz s16le
    std::size_t batch_bytes = 0;
    std::vector<std::int16_t> pcm, pcm16k;
    std::string message;
  } in_;
  // The model's current turn: its marks, and whether it was interrupted (rest dropped).
  std::uint64_t next_mark_ = 1;
  std::uint64_t turn_start_mark_ = 0;
  bool turn_cut_ = false;
  std::string caller_text_, agent_text_;
  std::deque<PendingTool> tools_;
  std::deque<std::pair<bool, std::string>> history_;
  std::size_t history_bytes_ = 0;
  bool ready_ = false;
  bool greeted_ = false;
  bool resumed_from_handle_ = false;
  std::deque<std::string> deferred_;
  std::string handle_;
  bool hangup_after_turn_ = false;
  bool ended_ = false;
  std::string hangup_reason_;
  common::v1::Usage usage_;
  std::uint64_t turn_in_tokens_ = 0, turn_out_tokens_ = 0;
  std::uint64_t in_audio_bytes_ = 0, out_audio_samples_ = 0;
  std::string last_error_;
  std::vector<std::uint8_t> decoded_;
  std::vector<std::int16_t> out_pcm_, out_resampled_;
};

}  // namespace voxbridge::realtime_gemini
