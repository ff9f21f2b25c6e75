// One call's conversation with OpenAI Realtime, as a translator with no I/O: voxbridge's
// speech-to-speech contract (voxbridge.agent.v1) on one side, the Realtime API's client and
// server events (GA protocol, https://platform.openai.com/docs/api-reference/realtime) on the
// other. The stream (backend.cpp) feeds it what arrives and sends what it produces.
//
// What it does:
// - opened(): `session.update` (instructions with the call's facts, voice, audio formats, turn
//   detection, transcription, the action tools), then the greeting's `response.create`; after a
//   reconnect, the conversation so far as items first.
// - caller audio: batched into `input_audio_buffer.append` of append_ms (G.711 bytes as they
//   are on a G.711 leg; LINEAR16 resampled to 24 kHz for audio/pcm).
// - the model's audio: a Mark before each audio item and one after it, the audio itself
//   (decoded, resampled to the output format), transcripts of both sides, usage after every
//   response. On `input_audio_buffer.speech_started` while the caller has not heard all of an
//   item: ClearPlayback; voxbridge's playback_cleared then gives `conversation.item.truncate`
//   with audio_end_ms = what the caller heard of that item (0 for items not reached).
// - tools: transfer, hang_up, send_dtmf, set_variable become voxbridge actions (tool_call_id =
//   the call_id); after them, the call's business tools (AgentConfig.tools) are offered, and a
//   call of one becomes AgentResponse.tool_call {call_id, name, arguments}. Results (action
//   results, CallEvent.tool_result) come back as `function_call_output`; once every call the
//   model has outstanding is answered, one `response.create`. hang_up with final words asks
//   the model to say them, then hangs up. Unknown tools and bad arguments are answered with an
//   error output (the model's words are untrusted; the action runner applies the security rule,
//   the tool runner refuses what it may not run). A business tool whose parameters are not a
//   JSON object, or named like an action, is not offered (logged once, at construction).
// - DTMF: a user message item ("The caller pressed 5") and a response.
// - caps: end_call() has the model say the goodbye, then hangs up.
// Thread: one at a time, the backend thread that owns the call's socket.
// Bounds: a server event over the socket's message limit never gets here; every list it keeps
// (items, marks, pending tool calls, the replay transcript) is capped; a broken or hostile
// event is an error result, never undefined behaviour. Text of the call's peers that goes out
// (the caller's name, an action's error, DTMF) is mended to UTF-8 first: JSON text must be UTF-8.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "voxbridge/agent/v1/agent.pb.h"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/realtime_openai/options.hpp"

namespace voxbridge::realtime_openai {

/// The wire formats a call uses, from its AgentConfig.
struct Formats {
  std::string input_type;   ///< "audio/pcm", "audio/pcmu" or "audio/pcma"
  std::string output_type;  ///< the same for the model's audio
  int input_rate_hz = 0;    ///< voxbridge's side (8000 for G.711)
  int output_rate_hz = 0;
  bool input_linear = false;   ///< LINEAR16 that is resampled to 24 kHz
  bool output_linear = false;  ///< 24 kHz PCM resampled to output_rate_hz
};

/// The formats for `config`, or why they cannot be served (empty Formats::input_type).
Formats formats_for(const agent::v1::AgentConfig& config, std::string& why);

/// `text` with {caller_number}, {caller_name}, {called_number}, {call_id} (the AudioSocket
/// UUID) and {NAME} for each of the call's metadata filled in.
std::string fill_call_facts(std::string text, const common::v1::CallInfo& call);

class Conversation {
 public:
  struct Sink {
    /// A client event (one JSON text) for the socket.
    std::function<void(std::string json)> send;
    /// Something for voxbridge (audio, marks, transcripts, actions, usage, clear, end).
    std::function<void(agent::v1::AgentResponse response)> respond;
  };
  /// What a server event meant for the session.
  enum class Verdict { go_on, fatal };

  /// Throws std::invalid_argument if the config's formats cannot be served.
  Conversation(std::shared_ptr<const RealtimeOptions> options, agent::v1::AgentConfig config,
               int resampler_quality, Sink sink);
  ~Conversation();

  /// The socket is open (again, after a reconnect: then the conversation so far is replayed).
  /// Before it, nothing is sent: the caller's newest second of audio and up to 32 other
  /// messages (DTMF, tool results) wait, and go out right after the session is set up.
  void opened();
  /// The socket broke (a reconnect may follow): hold what would be sent until opened().
  void disconnected();
  /// Caller audio in the config's input format.
  void caller_audio(std::string_view bytes);
  void call_event(const agent::v1::CallEvent& event);
  /// One server event. `fatal` with `why` when the session cannot go on (refused setup, a
  /// server error, quota or rate limit, a malformed event).
  Verdict server_event(std::string_view json, std::string& why);
  /// A cap was reached: the model says the goodbye, then the call is hung up.
  void end_call(const std::string& reason);

  const common::v1::Usage& usage() const { return usage_; }
  /// Server events that were errors the session survived (logged by the stream).
  std::uint64_t errors() const { return errors_; }
  /// The last error's words (untrusted).
  const std::string& last_error() const { return last_error_; }

 private:
  struct Item;
  struct ToolCall {
    std::string call_id;
    common::v1::Action::KindCase kind = common::v1::Action::KIND_NOT_SET;  // unset: business
  };

  std::string session_update();
  /// A client event now, or after opened() when the socket is not open.
  void send(std::string json);
  void request_response(std::string instructions = {});
  void send_user_text(const std::string& text);
  void send_tool_output(const std::string& call_id, const std::string& output_json);
  void flush_input();
  void on_audio_delta(const std::string& item_id, std::string_view b64);
  void on_audio_done(const std::string& item_id);
  void on_speech_started();
  void on_playback_cleared(std::uint64_t mark_id, std::uint32_t played_ms);
  void on_tool_call(const std::string& call_id, const std::string& name,
                    const std::string& arguments);
  void on_action_result(const common::v1::ActionResult& r);
  void on_tool_result(const common::v1::ToolResult& r);
  /// A call was answered; `respond`: the model speaks again (once all calls are answered).
  void answered(bool respond);
  bool business_tool(const std::string& name) const;
  void on_response_done(std::string_view status, std::uint64_t in_tokens, std::uint64_t out_tokens);
  void respond_usage();
  void remember(bool caller, const std::string& text);
  Item* item(const std::string& id);
  std::string event_id();

  std::shared_ptr<const RealtimeOptions> o_;
  agent::v1::AgentConfig config_;
  Formats formats_;
  Sink sink_;
  std::optional<audio::Resampler> in_rs_, out_rs_;

  /// The caller's audio waiting for the next append, and the message being built.
  struct Input {
    std::string pending;  // bytes in the input format
    std::size_t batch_bytes = 0;
    std::vector<std::int16_t> pcm, pcm24;
    std::string message;
  } in_;
  /// The model's audio items in order (capped), and marks: id -> (item id, at its end).
  std::deque<std::unique_ptr<Item>> items_;
  std::map<std::uint64_t, std::pair<std::string, bool>> marks_;
  std::uint64_t next_mark_ = 1;
  std::uint64_t last_played_mark_ = 0;
  bool clear_pending_ = false;
  /// Responses: one at a time; another asked for while one runs waits for response.done.
  struct Responses {
    bool active = false;
    bool wanted = false;
    std::string wanted_instructions;
    bool hangup_after = false;  // the goodbye or final words: hang up once it is done
    bool ended = false;         // the hangup was asked for: nothing more is said
    std::string hangup_reason;
  } resp_;
  std::deque<ToolCall> tool_calls_;   // asked for, result not back yet
  bool respond_after_tools_ = false;  // an answered call wants a response once all are in
  /// The business tools offered (a JSON array of function tools) and their names.
  std::string business_tools_json_;
  std::vector<std::string> business_names_;
  /// Final transcripts so far (caller?, text), replayed after a reconnect (capped).
  std::deque<std::pair<bool, std::string>> history_;
  std::size_t history_bytes_ = 0;
  bool session_ready_ = false;
  bool connected_ = false;
  static constexpr std::size_t kMaxDeferred = 32;
  std::deque<std::string> deferred_;
  bool reopened_ = false;
  common::v1::Usage usage_;
  std::uint64_t out_audio_bytes_ = 0;
  std::uint64_t in_audio_bytes_ = 0;
  std::uint64_t errors_ = 0;
  std::string last_error_;
  std::uint64_t next_event_ = 1;
  std::vector<std::uint8_t> decoded_;
  std::vector<std::int16_t> out_pcm_, out_resampled_;
};

}  // namespace voxbridge::realtime_openai
