// Private to config/: what the parsers of the sections share. Each section's options are a
// table of keys (name, how its value is set) in the file of that section:
//   general.cpp    [general], [listener-NAME], [recording], [webhook]
//   agents.cpp     [agent-NAME] (echo, playback, pipeline, s2s), [route-NAME]
//   providers.cpp  [provider-NAME], [openai-NAME]
//   realtime.cpp   [realtime-NAME]
//   tools.cpp      [tool-NAME]
//   gemini.cpp     [gemini-NAME]
//   deepgram.cpp   [deepgram-NAME]
//   elevenlabs.cpp [elevenlabs-NAME]
//   openai_speech.cpp [transcription-NAME], [speech-NAME]
//   grpc_speech.cpp [vosk-NAME], [riva-NAME]
//   rules.cpp      [rules-NAME], [intent-NAME]
//   control.cpp    [control], [ami], [ari]
// config.cpp reads the file line by line, hands each option to its section and resolves what
// sections name of each other; command_line.cpp applies the flags.
#pragma once

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "voxbridge/config/config.hpp"

namespace voxbridge::config::detail {

std::string trim(std::string_view s);
std::string lower(std::string s);

/// Where a value came from, for error messages.
struct Where {
  std::string source;
  int line = 0;
  std::string section;
  std::string key;
  /// Throws ConfigError "SOURCE:LINE: [SECTION] KEY: problem".
  [[noreturn]] void fail(const std::string& problem) const;
};

long long parse_int(const Where& w, const std::string& v, long long lo, long long hi);
inline std::size_t parse_size(const Where& w, const std::string& v, long long lo, long long hi) {
  return static_cast<std::size_t>(parse_int(w, v, lo, hi));
}
inline int parse_small(const Where& w, const std::string& v, int lo, int hi) {
  return static_cast<int>(parse_int(w, v, lo, hi));
}
inline std::chrono::milliseconds parse_ms(const Where& w, const std::string& v, long long lo,
                                          long long hi) {
  return std::chrono::milliseconds(parse_int(w, v, lo, hi));
}
inline std::chrono::seconds parse_s(const Where& w, const std::string& v, long long lo,
                                    long long hi) {
  return std::chrono::seconds(parse_int(w, v, lo, hi));
}
bool parse_bool(const Where& w, const std::string& v);
/// Fails unless `v` is one of `allowed` (the error lists them).
void one_of(const Where& w, const std::string& v, std::initializer_list<const char*> allowed);
session::CodecMode parse_codec(const Where& w, const std::string& v);
/// ${NAME} in a value comes from the environment, ${file:PATH} from a secret file's first line
/// (secrets stay out of the file).
std::string expand_env(const Where& w, const std::string& v);
/// A comma-separated list, items trimmed, empty ones dropped.
std::vector<std::string> parse_list(const std::string& v);
/// parse_list(), each item a valid Asterisk dial pattern.
std::vector<std::string> parse_patterns(const Where& w, const std::string& v);
/// HOST:PORT with an IP address; fails naming the value otherwise.
void parse_host_port(const Where& w, const std::string& v, std::string& host, unsigned short& port);
/// A URL that voxbridge connects to itself: refused here, at startup, rather than at first use.
/// Returns the URL's target (path and query).
std::string check_http_url(const Where& w, const std::string& v);

/// One option of a section: its name and how its value is set.
template <class T>
struct Key {
  std::string_view name;
  void (*set)(T& out, const Where& w, const std::string& value);
};

/// Sets option `w.key` of `out` by `keys`; false if the section has no such option.
template <class T, std::size_t N>
bool set_key(const Key<T> (&keys)[N], T& out, const Where& w, const std::string& value) {
  for (const auto& k : keys) {
    if (k.name == w.key) {
      k.set(out, w, value);
      return true;
    }
  }
  return false;
}

// general.cpp
void set_general(GeneralConfig& g, const Where& w, const std::string& v);
void set_listener(ListenerConfig& l, const Where& w, const std::string& v);
void set_recording(RecordingConfig& r, const Where& w, const std::string& v);
void set_webhook(webhooks::WebhookOptions& o, const Where& w, const std::string& v);

// agents.cpp
/// Pipeline and s2s options of an [agent-NAME] section; provider, rules and openai names are
/// resolved once the whole file is read (sections may come in any order).
struct PipelineDraft {
  pipeline::PipelineSpec spec;
  pipeline::SpeechAgentSpec s2s;
  std::string asr, llm, tts, provider;
  std::string realtime;  // [realtime-NAME] an s2s agent talks to in process
  std::string gemini;    // [gemini-NAME] an s2s agent talks to in process
  std::string rules;     // rule set for the built-in rules dialogue (sent as vb-rules metadata)
  int rules_line = 0;
  std::string openai;  // [openai-NAME] for the built-in dialogue (sent as vb-openai metadata)
  int openai_line = 0;
  int s2s_line = 0;  // of an s2s-only option
  std::string s2s_key;
  int first_line = 0;  // of a pipeline option, for the error if the type is not pipeline
  std::string first_key;
};
/// An option of an [agent-NAME] section: the agent's own, or its pipeline's (`d`).
void set_agent(agent::AgentSpec& a, PipelineDraft& d, const Where& w, const std::string& v);
void set_route(RouteConfig& r, const Where& w, const std::string& v);
/// The built-in agents that need no section: echo, playback, realtime (OpenAI Realtime) and
/// gemini (Gemini Live).
agent::AgentSpec builtin_agent(const std::string& name);

// providers.cpp
void set_provider(providers::ProviderTarget& p, const Where& w, const std::string& v);
void set_openai(llm_openai::OpenAiOptions& o, const Where& w, const std::string& v);

// realtime.cpp
void set_realtime(realtime_openai::RealtimeOptions& o, const Where& w, const std::string& v);
/// A [realtime-NAME] that an agent in use names: its key from the environment if not given.
void finish_realtime(realtime_openai::RealtimeOptions& o, const Where& w);

// tools.cpp
/// Why `name` cannot name a tool ([A-Za-z0-9_-]{1,64}, not a built-in action); empty if it can.
std::string check_tool_name(const std::string& name);
void set_tool(tools::ToolOptions& o, const Where& w, const std::string& v);
/// What a [tool-NAME] says of the rest (its agents exist and have models, the URL's host and
/// allowed_host agree), once the whole file is read; throws ConfigError.
void finish_tool(tools::ToolOptions& o, const Config& c, const std::string& source);
// gemini.cpp
void set_gemini(realtime_gemini::GeminiOptions& o, const Where& w, const std::string& v);
/// A [gemini-NAME] that an agent in use names: its key from GEMINI_API_KEY if not given.
void finish_gemini(realtime_gemini::GeminiOptions& o, const Where& w);
/// The key of the in-process backend (realtime or gemini) that s2s agent `s` talks to, if any.
void finish_backend_key(Config& c, const pipeline::SpeechAgentSpec& s, const std::string& source);

// deepgram.cpp
void set_deepgram(asr_deepgram::DeepgramOptions& o, const Where& w, const std::string& v);
/// A [deepgram-NAME] that an agent in use names: its key from DEEPGRAM_API_KEY if not given.
void finish_deepgram(asr_deepgram::DeepgramOptions& o, const Where& w);
// elevenlabs.cpp
void set_elevenlabs(tts_elevenlabs::ElevenLabsOptions& o, const Where& w, const std::string& v);
/// An [elevenlabs-NAME] that an agent in use names: its key from ELEVENLABS_API_KEY if not given.
void finish_elevenlabs(tts_elevenlabs::ElevenLabsOptions& o, const Where& w);
// openai_speech.cpp
void set_transcription(asr_openai::TranscriptionOptions& o, const Where& w, const std::string& v);
void set_speech(tts_openai::SpeechOptions& o, const Where& w, const std::string& v);
// grpc_speech.cpp
void set_vosk(asr_vosk::VoskOptions& o, const Where& w, const std::string& v);
void set_riva(riva::RivaOptions& o, const Where& w, const std::string& v);
/// The keys of the in-process backends that pipeline `p` uses (its recognizer's, its voice's).
void finish_pipeline_keys(Config& c, const pipeline::PipelineSpec& p, const std::string& source);

// rules.cpp
/// An [intent-NAME] section; it joins its rule set once its text is read (sections may come in
/// any order).
struct IntentDraft {
  dialogue_rules::Intent intent;
  std::string rules;
  int line = 0;
};
void set_rules(dialogue_rules::RuleSet& r, const Where& w, const std::string& v);
void set_intent(IntentDraft& d, const Where& w, const std::string& v);

// control.cpp
void set_control(control::ControlConfig& c, const Where& w, const std::string& v);
void set_ami(control::AmiOptions& a, const Where& w, const std::string& v);
void set_ari(control::AriOptions& a, const Where& w, const std::string& v);

// config.cpp
/// Checks what the sections say of each other (agents named, watermarks ordered, the HTTP API's
/// token); throws ConfigError.
void validate(const Config& c);

}  // namespace voxbridge::config::detail
