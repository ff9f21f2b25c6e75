// voxbridge.conf: Asterisk-style INI ([general], [listener-NAME], [agent-NAME],
// [provider-NAME]; `;` comments),
// validated at startup, plus command-line overrides. Errors name the file, line and option.
// Read once on the main thread before serving; immutable afterwards.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/control/controller.hpp"
#include "voxbridge/dialogue_rules/rules.hpp"
#include "voxbridge/llm_openai/openai.hpp"
#include "voxbridge/pipeline/pipeline.hpp"
#include "voxbridge/pipeline/speech_agent.hpp"
#include "voxbridge/providers/provider.hpp"
#include "voxbridge/session/call_media.hpp"
#include "voxbridge/session/call_session.hpp"

namespace voxbridge::config {

/// A configuration problem; what() reads "FILE:LINE: [section] option: problem".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GeneralConfig {
  std::size_t threads = 0;  ///< io threads; 0 = one per core
  std::string log_level = "info";
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
  /// PocketSphinx decoders of the built-in ASR: utterances recognized at once (~93 MB each).
  std::size_t builtin_asr_decoders = 2;
  /// The local HTTP API (health, originate): "HOST:PORT", empty = off. No authentication:
  /// keep it on 127.0.0.1.
  std::string http_listen;
};

struct ListenerConfig {
  std::string name;
  std::string host = "127.0.0.1";
  unsigned short port = 5001;
  session::CodecMode codec = session::CodecMode::auto_detect;
  audio::G711Law g711 = audio::G711Law::ulaw;  ///< what `auto` assumes for 160-byte frames
  std::string agent = "receptionist";
};

struct Config {
  std::string source = "(built-in defaults)";
  GeneralConfig general;
  std::vector<ListenerConfig> listeners;
  std::vector<agent::AgentSpec> agents;  ///< includes the built-in `echo` and `playback`
  /// [provider-NAME] sections: where gRPC providers are.
  std::vector<providers::ProviderTarget> providers;
  /// Settings of the agents of type pipeline, by agent name (providers resolved).
  std::map<std::string, pipeline::PipelineSpec> pipelines;
  /// Settings of the agents of type s2s (speech to speech), by agent name.
  std::map<std::string, pipeline::SpeechAgentSpec> speech_agents;
  /// Rule sets of the built-in rules dialogue ([rules-NAME] with its [intent-NAME] sections),
  /// by name; includes the built-in `receptionist` unless redefined.
  std::map<std::string, dialogue_rules::RuleSet> rules;
  /// OpenAI-compatible models ([openai-NAME]) that built-in agents may use (`openai = NAME`).
  std::map<std::string, llm_openai::OpenAiOptions> openai;
  /// [control], [ami], [ari]: the control path to Asterisk (none by default).
  control::ControlConfig control;

  /// True if an agent that a listener uses talks to the built-in providers (address
  /// `builtin`): the server then starts them in process.
  bool uses_builtin_providers() const;

  const agent::AgentSpec* find_agent(const std::string& name) const;
};

/// The built-in defaults: one listener on 127.0.0.1:5001 with the echo agent.
/// The address of the built-in providers (offline ASR, rules dialogue, TTS), served in process.
inline constexpr const char* kBuiltinAddress = "builtin";

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
  std::optional<std::string> log_level;
  bool help = false;
  bool version = false;
};
/// Throws ConfigError ("--threads: ...") on a bad flag.
CommandLine parse_command_line(int argc, const char* const* argv);
/// Applies overrides and validates the result; throws ConfigError.
void apply_command_line(Config& cfg, const CommandLine& cl);
std::string usage();

}  // namespace voxbridge::config
