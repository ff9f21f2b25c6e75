// The built-in offline providers (PocketSphinx ASR, the rules dialogue, Flite TTS) on a gRPC
// server: inside the voxbridge process for `asr/llm/tts = builtin` (on 127.0.0.1 at a free
// port, reached over the contract exactly like a third-party provider), or standalone as
// `voxbridge-provider`.
#pragma once

#include <grpcpp/server.h>

#include <map>
#include <memory>
#include <string>

#include "voxbridge/asr_sphinx/sphinx_asr.hpp"
#include "voxbridge/dialogue_rules/rules.hpp"
#include "voxbridge/tts_flite/flite_tts.hpp"

namespace voxbridge::provider_host {

struct BuiltinOptions {
  std::string listen = "127.0.0.1:0";  ///< HOST:PORT; port 0 = any free port
  bool asr = true, llm = true, tts = true;
  asr_sphinx::SphinxOptions sphinx;
  std::map<std::string, dialogue_rules::RuleSet> rules;
};

class BuiltinProviders {
 public:
  /// Loads the models and starts serving (with the standard health service); throws
  /// std::runtime_error if a model is missing or the address cannot be bound.
  explicit BuiltinProviders(BuiltinOptions o);
  ~BuiltinProviders();
  BuiltinProviders(const BuiltinProviders&) = delete;
  BuiltinProviders& operator=(const BuiltinProviders&) = delete;

  /// "HOST:PORT" with the port actually bound.
  std::string address() const { return address_; }
  /// Blocks until shutdown() (the standalone server's main loop).
  void wait();
  void shutdown();

 private:
  std::unique_ptr<tts_flite::FliteEngine> flite_;
  std::unique_ptr<tts_flite::FliteSynthesizer> tts_;
  std::unique_ptr<asr_sphinx::DecoderPool> decoders_;
  std::unique_ptr<asr_sphinx::SphinxRecognizer> asr_;
  std::unique_ptr<dialogue_rules::RulesDialogue> llm_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace voxbridge::provider_host
