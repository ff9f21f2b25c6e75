// A call's transcript events, typed: the call's start, what the caller said, what the agent said,
// barge-ins, actions, DTMF and the end. Each event is serialized once, with Boost.JSON, into the
// one JSON line that the JSONL recording, the webhooks and GET /v1/calls/UUID/events all carry;
// the envelopes of the webhooks and of the events API are written here too. The schema (every
// member, its JSON type, the versions) is docs/events.md; kSchemaVersion says which one a
// consumer reads.
//
// Plain values, no I/O, any thread. In the server they are built on the call's io thread by
// whoever saw the event (session, pipeline, speech agent) and serialized there with the call's
// time (agent::CallInfo::transcript). Not on the per-frame path: one event per turn, digit,
// action. Every string is untrusted (caller, model, Asterisk) and stays data: Boost.JSON escapes
// quotes, backslashes and control bytes, and bytes that are not UTF-8 become U+FFFD, so every
// line is valid JSON whatever the text.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace voxbridge::events {

/// The version of the event schema, in the `start` event and in every webhook and events API
/// envelope as "schema". Events without it are version 1 (an action was a protobuf debug string).
inline constexpr int kSchemaVersion = 2;

enum class Type {
  start,     ///< the call's facts (first event of every call)
  user,      ///< a final transcript of what the caller said
  interim,   ///< a partial transcript; the final one follows as `user`
  agent,     ///< what the agent said (a pipeline reply once played out, or an s2s transcript)
  barge_in,  ///< the caller interrupted the agent (pipeline), or the agent cleared its reply (s2s)
  action,    ///< something the agent asked Asterisk to do, and what became of it
  dtmf,      ///< a digit the caller pressed
  usage,     ///< what a speech-to-speech agent's conversation used (once, before `end`)
  tool,      ///< a business tool the model called ([tool-NAME]), and what became of it
  end,       ///< the call is over (last event of every call)
};

/// The event's "type" member: "start", "user", "interim", "agent", "barge_in", "action", "dtmf",
/// "usage", "tool", "end".
std::string_view type_name(Type type);

/// One event: its type and its members in schema order. Built by the functions below only.
class Event {
 public:
  Type type() const { return type_; }
  /// The type's members in schema order (neither "t_ms" nor "type").
  const boost::json::object& members() const { return members_; }
  /// The event as one line of JSON, without a newline: {"t_ms":T,"type":"...",members...}.
  /// `t` is the time since the call's UUID arrived.
  std::string serialize(std::chrono::milliseconds t) const;

 private:
  friend class EventBuilder;
  Event(Type type, boost::json::object members) : type_(type), members_(std::move(members)) {}
  Type type_;
  boost::json::object members_;
};

/// What is known of a call when it starts (the `start` event and every webhook).
struct CallFacts {
  std::string uuid;      ///< canonical text form
  std::string listener;  ///< listener section name
  std::string agent;     ///< the agent that talks to the caller
  std::string route;     ///< the route that picked it; empty = none
  std::string peer;      ///< "ip:port" of Asterisk
  std::int64_t started_unix_ms = 0;
  // From the control path (ARI/AMI); empty = not known, and the member is left out.
  std::string channel;
  std::string caller_number;
  std::string caller_name;
  std::string called_number;
  std::map<std::string, std::string> variables;  ///< VB_* channel variables; empty = left out
};

/// An action the agent asked for, as plain fields (no protobuf here: pipeline::action_event
/// maps the provider's Action onto this). Only the members of `kind` are written.
struct ActionFields {
  enum class Kind { hangup, transfer, send_dtmf, set_variable, originate, unknown };
  Kind kind = Kind::unknown;
  // hangup
  std::string reason;
  std::string final_words;
  // transfer
  std::string target;
  std::string context;  ///< empty = the configured default
  // send_dtmf
  std::string digits;
  std::int64_t duration_ms = 0;  ///< per digit; 0 = Asterisk's default
  // set_variable
  std::string name;
  std::string value;
  // originate
  std::string number;
  std::string agent;
  std::map<std::string, std::string> variables;
};

/// The "action" member: "hangup", "transfer", "send_dtmf", "set_variable", "originate",
/// "unknown" (an action with no kind set).
std::string_view kind_name(ActionFields::Kind kind);

/// {"schema":2, then the facts}.
Event start(const CallFacts& facts);
/// {"text"}: a final transcript of the caller.
Event user(std::string_view text);
/// {"text"}: a partial transcript of the caller.
Event interim(std::string_view text);
/// {"turn", "text", "latency_ms"}: a pipeline reply, played out. `latency_ms` is from the end of
/// the caller's speech to the reply's first frame; nullopt (JSON null) if a milestone is missing.
Event agent_reply(std::uint32_t turn, std::string_view text,
                  std::optional<std::int64_t> latency_ms);
/// {"text"}: what a speech-to-speech agent said (it reports no turns).
Event agent_reply(std::string_view text);
/// {"turn", "heard_ms", "heard", "reply"}: the caller interrupted a pipeline reply after hearing
/// `heard_ms` of it (`heard`, of the whole `reply`).
Event barge_in(std::uint32_t turn, std::int64_t heard_ms, std::string_view heard,
               std::string_view reply);
/// {"dropped_ms"}: a speech-to-speech agent cleared its reply; this much queued audio was dropped.
Event barge_in(std::int64_t dropped_ms);
/// {"action", the kind's members, "ok", "error" when not ok, "how" when given}. `error` empty =
/// done (or on its way); `how` says how when that is not the obvious way.
Event action(const ActionFields& fields, std::string_view error, std::string_view how = {});
/// {"digit"}: one DTMF digit, as a one-character string.
Event dtmf(char digit);
/// {"input_tokens", "output_tokens", "input_audio_ms", "output_audio_ms"}: what a
/// speech-to-speech agent reported its conversation used in all (its latest usage, cumulative);
/// a field the provider does not count is 0. Values above 2^63 - 1 are written as 2^63 - 1.
Event usage(std::uint64_t input_tokens, std::uint64_t output_tokens, std::uint64_t input_audio_ms,
            std::uint64_t output_audio_ms);
/// What a pipeline agent's providers were given and gave over the call: the units they bill
/// by, counted by voxbridge whatever the provider (a gRPC one, Deepgram, ElevenLabs, an
/// OpenAI-compatible server).
struct PipelineUsage {
  std::string asr, llm, tts;         ///< the providers' names (as the agent names them)
  std::uint64_t asr_streams = 0;     ///< recognition streams opened (utterances, retries)
  std::uint64_t asr_audio_ms = 0;    ///< caller audio sent to the recognizer (retries again)
  std::uint64_t llm_turns = 0;       ///< model requests (each tool round is one)
  std::uint64_t tts_streams = 0;     ///< synthesis streams opened (replies, retries)
  std::uint64_t tts_characters = 0;  ///< text sent to the voice, in characters (retries again)
  std::uint64_t tts_audio_ms = 0;    ///< audio the voice sent back
};
/// {"asr", "asr_streams", "asr_audio_ms", "llm", "llm_turns", "tts", "tts_streams",
/// "tts_characters", "tts_audio_ms"}: the `usage` event of a pipeline agent.
Event pipeline_usage(const PipelineUsage& u);
/// What a tool call was and what became of it (the `tool` event).
struct ToolFields {
  std::string name;              ///< the tool the model asked for (untrusted: the model's word)
  std::string id;                ///< the model's id for the call
  bool ok = false;               ///< the tool answered 2xx
  std::int64_t duration_ms = 0;  ///< from the model's call to its result
  std::int64_t bytes = 0;        ///< of the tool's response body (0 without one)
  std::string arguments;         ///< the model's arguments (capped by the caller)
  std::string output;            ///< the result the model got (capped by the caller)
};
/// {"name", "id", "ok", "duration_ms", "bytes", "arguments", "output"}.
Event tool(const ToolFields& fields);
/// {"by", "reason", "duration_ms"}: who ended the call ("caller", "server"...), why, and how long
/// it lasted from its UUID.
Event end(std::string_view by, std::string_view reason, std::int64_t duration_ms);

// Envelopes. `lines` are events serialized by Event::serialize, spliced in as they are.

/// The call_started webhook body: {"event":"call_started","schema":2, the facts}.
std::string call_started_body(const CallFacts& facts);
/// The call_ended webhook body: {"event":"call_ended","schema":2, the facts, the end event's
/// members, "transcript":[lines]}.
std::string call_ended_body(const CallFacts& facts, const Event& end,
                            std::span<const std::string> lines);
/// The action webhook body: {"event":"action","schema":2,"uuid","item":line}.
std::string action_body(std::string_view uuid, std::string_view line);
/// The GET /v1/calls/UUID/events answer, with a newline:
/// {"uuid","ended","next","events":[lines],"schema":2}. `next` is the index to poll from next.
std::string events_response(std::string_view uuid, bool ended, std::size_t next,
                            std::span<const std::string> lines);

/// `text` with every byte sequence that is not UTF-8 replaced by U+FFFD (one per maximal invalid
/// subpart, as Unicode recommends); valid text comes back unchanged.
std::string valid_utf8(std::string_view text);

}  // namespace voxbridge::events
