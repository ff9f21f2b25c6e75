// The built-in offline providers (PocketSphinx ASR, the rules dialogue, Flite TTS, the
// OpenAI-compatible LLM) on a gRPC server: inside the voxbridge process for
// `asr/llm/tts = builtin`, reached over the contract exactly like a third-party provider, or
// standalone as `voxbridge-provider --listen HOST:PORT`.
//
// In process they listen on a Unix socket in a fresh directory of mode 0700 (mkdtemp under
// $TMPDIR or /tmp), so no other user of the host can reach them (they can spend the configured
// OpenAI key); the directory is removed when they stop. gRPC serves them on its own threads.
#pragma once

#include <grpcpp/server.h>

#include <map>
#include <memory>
#include <string>

#include "voxbridge/asr_sphinx/sphinx_asr.hpp"
#include "voxbridge/dialogue_rules/rules.hpp"
#include "voxbridge/llm_openai/openai.hpp"
#include "voxbridge/provider_host/agent_bridge.hpp"
#include "voxbridge/provider_host/recognizer_bridge.hpp"
#include "voxbridge/provider_host/synthesizer_bridge.hpp"
#include "voxbridge/tts_flite/flite_tts.hpp"

namespace voxbridge::provider_host {

struct BuiltinOptions {
  /// HOST:PORT (port 0 = any free port), or empty: a private Unix socket (see above).
  std::string listen;
  bool asr = true, llm = true, tts = true;
  asr_sphinx::SphinxOptions sphinx;
  std::size_t tts_cache_bytes = 16u << 20;  ///< see FliteEngine
  std::map<std::string, dialogue_rules::RuleSet> rules;
  /// OpenAI-compatible models by [openai-NAME]; a turn names one in the vb-openai metadata.
  std::map<std::string, llm_openai::OpenAiOptions> openai;
  /// An in-process speech-to-speech backend served as voxbridge.agent.v1.Agent (null = none).
  std::shared_ptr<providers::ProviderClients> agent_backend;
  providers::ProviderTarget agent_target;
  /// An in-process recognizer backend served as voxbridge.asr.v1.Recognizer instead of
  /// PocketSphinx (null = none).
  std::shared_ptr<providers::ProviderClients> asr_backend;
  providers::ProviderTarget asr_target;
  /// An in-process voice backend served as voxbridge.tts.v1.Synthesizer instead of Flite
  /// (null = none).
  std::shared_ptr<providers::ProviderClients> tts_backend;
  providers::ProviderTarget tts_target;
};

/// The built-in Dialogue service: a turn whose metadata names an OpenAI-compatible model
/// (vb-openai) goes to it, any other to the rules (vb-rules).
class DialogueRouter final : public llm::v1::Dialogue::Service {
 public:
  DialogueRouter(std::map<std::string, dialogue_rules::RuleSet> rules,
                 std::map<std::string, llm_openai::OpenAiOptions> openai)
      : rules_(std::move(rules)), openai_(std::move(openai)) {}
  grpc::Status Turn(grpc::ServerContext* ctx, const llm::v1::TurnRequest* req,
                    grpc::ServerWriter<llm::v1::TurnResponse>* writer) override;

 private:
  dialogue_rules::RulesDialogue rules_;
  std::map<std::string, llm_openai::OpenAiOptions> openai_;
};

class BuiltinProviders {
 public:
  /// Loads the models and starts serving (with the standard health service); throws
  /// std::runtime_error if a model is missing or the address cannot be bound.
  explicit BuiltinProviders(BuiltinOptions o);
  ~BuiltinProviders();
  BuiltinProviders(const BuiltinProviders&) = delete;
  BuiltinProviders& operator=(const BuiltinProviders&) = delete;

  /// The gRPC target to reach them: "HOST:PORT" with the port actually bound, or
  /// "unix:/DIR/providers.sock" for the private socket.
  std::string address() const { return address_; }
  /// The TTS engine (its counters), or null when TTS is not served.
  const tts_flite::FliteEngine* tts_engine() const { return flite_.get(); }
  /// Blocks until shutdown() (the standalone server's main loop).
  void wait();
  void shutdown();

 private:
  std::unique_ptr<tts_flite::FliteEngine> flite_;
  std::unique_ptr<tts_flite::FliteSynthesizer> tts_;
  std::unique_ptr<asr_sphinx::DecoderPool> decoders_;
  std::unique_ptr<asr_sphinx::SphinxRecognizer> asr_;
  std::unique_ptr<DialogueRouter> llm_;
  std::unique_ptr<AgentBridge> agent_;
  std::unique_ptr<RecognizerBridge> asr_bridge_;
  std::unique_ptr<SynthesizerBridge> tts_bridge_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::string private_dir_;  // of the private socket; removed by the destructor
};

/// Ends the process with `code` once everything of ours is stopped, joined and flushed, without
/// running static destructors: with Debian's gRPC 1.51 they race gRPC's own callback threads
/// at exit (a double free in its completion queue, seen under ASan about one stop in ten).
/// Flushes the logs and stdio first; in an ASan build, runs the leak check exit() would have.
[[noreturn]] void exit_after_clean_stop(int code);

}  // namespace voxbridge::provider_host
