// voxbridge.conf: Asterisk-style INI ([general], [listener-NAME], [agent-NAME],
// [provider-NAME]; `;` comments), validated at startup, plus command-line overrides. Errors
// name the file, line and option. Parses into plain structs: what each component needs to run
// is declared in a plain header of that component (pipeline/spec.hpp, control/options.hpp...),
// so config links none of them. Read once on the main thread before serving (and again on
// reload); immutable afterwards.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

// Plain option structs only (no gRPC, no protobuf, no component code): config links none of
// the components that use what it parses.
#include "voxbridge/access/access.hpp"
#include "voxbridge/agent/spec.hpp"
#include "voxbridge/asr_deepgram/options.hpp"
#include "voxbridge/asr_openai/options.hpp"
#include "voxbridge/asr_vosk/options.hpp"
#include "voxbridge/audio/g711.hpp"
#include "voxbridge/control/options.hpp"
#include "voxbridge/dialogue_rules/rule_set.hpp"
#include "voxbridge/llm_openai/options.hpp"
#include "voxbridge/pipeline/spec.hpp"
#include "voxbridge/providers/target.hpp"
#include "voxbridge/realtime_gemini/options.hpp"
#include "voxbridge/realtime_openai/options.hpp"
#include "voxbridge/riva/options.hpp"
#include "voxbridge/session/options.hpp"
#include "voxbridge/tools/options.hpp"
#include "voxbridge/tts_elevenlabs/options.hpp"
#include "voxbridge/tts_openai/options.hpp"
#include "voxbridge/webhooks/options.hpp"

namespace voxbridge::config {

/// A configuration problem; what() reads "FILE:LINE: [section] option: problem".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GeneralConfig {
  std::size_t threads = 0;  ///< io threads; 0 = one per core
  /// SCHED_RR priority of the io threads (1..99); 0 = normal scheduling.
  int realtime_priority = 0;
  std::string log_level = "info";
  /// "text" (one readable line per event) or "json" (one JSON object per line).
  std::string log_format = "text";
  int internal_rate_hz = 16000;
  int resampler_quality = 2;
  std::size_t max_calls = 4096;
  std::chrono::milliseconds drain_timeout{10000};
  session::SessionLimits limits;
  std::chrono::milliseconds playout_buffer{2000};
  std::chrono::milliseconds playout_low_watermark{200};
  std::chrono::milliseconds playout_high_watermark{1000};
  bool early_silence = true;
  bool read_on_tick = true;
  /// With read_on_tick: keep each call's tick just after the caller's frames arrive.
  bool tick_alignment = false;
  std::chrono::microseconds tick_alignment_margin{4000};
  /// PocketSphinx decoders of the built-in ASR: utterances recognized at once (~93 MB each).
  std::size_t builtin_asr_decoders = 2;
  /// Audio of recent texts the built-in TTS keeps (greetings, menus, fallbacks are said again
  /// and again), in MiB; 0 = synthesize every time.
  std::size_t builtin_tts_cache_mb = 16;
  /// The local HTTP API (health, originate): "HOST:PORT", empty = off. No authentication:
  /// keep it on 127.0.0.1.
  std::string http_listen;
  /// Bearer token the HTTP API wants (from the environment or a file: `${NAME}`,
  /// `${file:/run/secrets/x}`); required when http_listen is not a loopback address.
  std::string http_token;
  /// HTTP API connections served at once; more are answered 503 and closed at once.
  std::size_t http_max_connections = 64;
  /// How often the providers in use get a gRPC health check (readiness); 0 = never.
  std::chrono::seconds provider_check_interval{10};
};

struct ListenerConfig {
  std::string name;
  std::string host = "127.0.0.1";
  unsigned short port = 5001;
  session::CodecMode codec = session::CodecMode::auto_detect;
  audio::G711Law g711 = audio::G711Law::ulaw;  ///< what `auto` assumes for 160-byte frames
  std::string agent = "receptionist";
  /// Who may connect (`allow`): loopback only unless configured.
  access::CidrSet allow = access::CidrSet::loopback();
  /// Per-peer connection rate, burst and concurrent calls (0 = unlimited).
  access::PeerLimits peer_limits;
  /// Refuse calls whose UUID was not pre-registered (POST /v1/calls/UUID).
  bool require_registration = false;
};

/// [recording]: per-call stereo WAV and JSONL transcript.
struct RecordingConfig {
  bool enabled = false;  ///< the section is present
  std::string directory = "/var/lib/voxbridge/recordings";
  bool record = true;  ///< calls are recorded unless a route says otherwise
  bool audio = true;
  bool transcript = true;
  std::chrono::hours max_age{0};      ///< max_age_days; 0 = keep
  std::uint64_t max_total_bytes = 0;  ///< max_total_mb; 0 = no limit
  std::size_t queue_blocks = 1024;

  bool operator==(const RecordingConfig&) const = default;
};

/// A [route-NAME] section: which agent (and settings) a call gets, chosen when its UUID
/// arrives from what is known of it. Routes are tried in file order; the first whose every
/// condition holds wins; no match = the listener's agent.
struct RouteConfig {
  std::string name;
  std::vector<std::string> listeners;  ///< `listener`: any of these (empty = any)
  std::string caller;                  ///< `caller`: Asterisk pattern on the caller ID number
  std::string called;                  ///< `called`: pattern on the DID / dialled number
  /// `variable = NAME=PATTERN` (repeatable): a channel variable (AMI/ARI) or pre-registered
  /// metadata key.
  std::vector<std::pair<std::string, std::string>> variables;
  std::string agent;                    ///< the agent to use (required)
  std::optional<std::string> language;  ///< overrides the pipeline agent's language
  std::optional<std::string> greeting;  ///< overrides the pipeline agent's greeting
  std::optional<bool> record;           ///< overrides [recording] for these calls
  /// `dtmf`, `dtmf_terminator`, `dtmf_timeout_ms`, `dtmf_max_digits`: how a pipeline agent
  /// takes DTMF on these calls (as events for the LLM, or collected into a number), overriding
  /// the agent's settings; unset keys keep the agent's.
  std::optional<pipeline::DtmfMode> dtmf;
  std::optional<char> dtmf_terminator;
  std::optional<std::chrono::milliseconds> dtmf_timeout;
  std::optional<std::size_t> dtmf_max_digits;

  bool overrides_dtmf() const { return dtmf || dtmf_terminator || dtmf_timeout || dtmf_max_digits; }
};

struct Config {
  std::string source = "(built-in defaults)";
  GeneralConfig general;
  std::vector<ListenerConfig> listeners;
  std::vector<agent::AgentSpec> agents;  ///< with the built-in receptionist, echo, playback
  /// [provider-NAME] sections: where gRPC providers are.
  std::vector<providers::ProviderTarget> providers;
  /// Settings of the agents of type pipeline, by agent name (providers resolved).
  std::map<std::string, pipeline::PipelineSpec> pipelines;
  /// Settings of the agents of type s2s (speech to speech), by agent name.
  std::map<std::string, pipeline::SpeechAgentSpec> speech_agents;
  /// Rule sets of the built-in rules dialogue ([rules-NAME] with its [intent-NAME] sections),
  /// by name; includes the built-in `receptionist` (src/dialogue_rules/receptionist.conf)
  /// unless redefined.
  std::map<std::string, dialogue_rules::RuleSet> rules;
  /// OpenAI-compatible models ([openai-NAME]) that built-in agents may use (`openai = NAME`).
  std::map<std::string, llm_openai::OpenAiOptions> openai;
  /// OpenAI Realtime backends ([realtime-NAME]) for s2s agents (`realtime = NAME`); the
  /// built-in agent `realtime` uses `openai` (defaults, the key from OPENAI_API_KEY).
  std::map<std::string, realtime_openai::RealtimeOptions> realtime;
  /// Business tools ([tool-NAME]) that the models of the agents they name may call, by name.
  std::map<std::string, tools::ToolOptions> tools;
  /// Gemini Live backends ([gemini-NAME]) for s2s agents (`gemini = NAME`); the built-in agent
  /// `gemini` uses `google` (defaults, the key from GEMINI_API_KEY).
  std::map<std::string, realtime_gemini::GeminiOptions> gemini;
  /// Deepgram recognizers ([deepgram-NAME]) for pipeline agents (`asr = NAME`); `asr =
  /// deepgram` without a section is the defaults (nova-3, the key from DEEPGRAM_API_KEY).
  std::map<std::string, asr_deepgram::DeepgramOptions> deepgram;
  /// ElevenLabs voices ([elevenlabs-NAME]) for pipeline agents (`tts = NAME`); `tts =
  /// elevenlabs` without a section is the defaults (the key from ELEVENLABS_API_KEY).
  std::map<std::string, tts_elevenlabs::ElevenLabsOptions> elevenlabs;
  /// OpenAI-compatible transcription servers ([transcription-NAME]: OpenAI, Groq, speaches,
  /// whisper.cpp's server, LocalAI) for pipeline agents (`asr = NAME`).
  std::map<std::string, asr_openai::TranscriptionOptions> transcription;
  /// OpenAI-compatible speech servers ([speech-NAME]: OpenAI, Kokoro-FastAPI, speaches,
  /// openedai-speech, LocalAI) for pipeline agents (`tts = NAME`).
  std::map<std::string, tts_openai::SpeechOptions> speech;
  /// Vosk servers ([vosk-NAME], vosk.stt.v1.SttService over gRPC) for pipeline agents
  /// (`asr = NAME`).
  std::map<std::string, asr_vosk::VoskOptions> vosk;
  /// NVIDIA Riva servers ([riva-NAME], gRPC) for pipeline agents: recognition (`asr = NAME`)
  /// and voice (`tts = NAME`).
  std::map<std::string, riva::RivaOptions> riva;
  /// [control], [ami], [ari]: the control path to Asterisk (none by default).
  control::ControlConfig control;
  /// [route-NAME] sections, in file order.
  std::vector<RouteConfig> routes;
  RecordingConfig recording;
  /// [webhook]: url empty = off.
  webhooks::WebhookOptions webhook;

  const agent::AgentSpec* find_agent(const std::string& name) const;
};

/// The [realtime-NAME] backend's options with its key resolved (api_key, else OPENAI_API_KEY or
/// AZURE_OPENAI_API_KEY); `openai` without a section is the built-in defaults. Throws
/// ConfigError naming what is missing.
realtime_openai::RealtimeOptions realtime_backend(const Config& c, const std::string& name);

/// The [gemini-NAME] backend's options with its key resolved (api_key, else GEMINI_API_KEY);
/// `google` without a section is the built-in defaults. Throws ConfigError naming what is
/// missing.
realtime_gemini::GeminiOptions gemini_backend(const Config& c, const std::string& name);

/// The [deepgram-NAME] recognizer's options with its key resolved (api_key, else
/// DEEPGRAM_API_KEY); `deepgram` without a section is the defaults. Throws ConfigError.
asr_deepgram::DeepgramOptions deepgram_backend(const Config& c, const std::string& name);
/// The [transcription-NAME] / [speech-NAME] server's options (voxbridge-provider
/// --transcription / --speech). Throws ConfigError when there is no such section.
asr_openai::TranscriptionOptions transcription_backend(const Config& c, const std::string& name);
tts_openai::SpeechOptions speech_backend(const Config& c, const std::string& name);

/// The [elevenlabs-NAME] voice's options with its key resolved (api_key, else
/// ELEVENLABS_API_KEY); `elevenlabs` without a section is the defaults. Throws ConfigError.
tts_elevenlabs::ElevenLabsOptions elevenlabs_backend(const Config& c, const std::string& name);

/// The address of the built-in providers (offline ASR, rules dialogue, TTS), served in process.
inline constexpr const char* kBuiltinAddress = "builtin";

/// The built-in defaults: one listener on 127.0.0.1:5001 with the built-in receptionist.
Config default_config();
/// Parses INI text; `source` names it in errors. Throws ConfigError.
Config parse_config(const std::string& text, const std::string& source);
Config load_config_file(const std::string& path);

/// What the command line asked for.
struct CommandLine {
  std::optional<std::string> config_file;
  std::optional<std::string> listen;  ///< HOST:PORT, replaces the configured listeners
  std::optional<std::string> agent;
  std::optional<std::string> codec;
  std::optional<std::size_t> threads;
  std::optional<int> realtime_priority;
  std::optional<std::string> log_level;
  std::optional<std::string> http;  ///< HOST:PORT of the HTTP API ([general] http_listen)
  bool help = false;
  bool version = false;
  /// --check-config: parse and validate, say "ok", serve nothing.
  bool check_config = false;
};
/// Throws ConfigError ("--threads: ...") on a bad flag.
CommandLine parse_command_line(int argc, const char* const* argv);
/// Applies overrides and validates the result; throws ConfigError.
void apply_command_line(Config& cfg, const CommandLine& cl);
std::string usage();

}  // namespace voxbridge::config
