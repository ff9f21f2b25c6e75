#include "voxbridge/provider_host/builtin_providers.hpp"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <stdexcept>

namespace voxbridge::provider_host {

BuiltinProviders::BuiltinProviders(BuiltinOptions o) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort(o.listen, grpc::InsecureServerCredentials(), &port);
  if (o.tts) {
    flite_ = std::make_unique<tts_flite::FliteEngine>();
    tts_ = std::make_unique<tts_flite::FliteSynthesizer>(*flite_);
    b.RegisterService(tts_.get());
  }
  if (o.asr) {
    decoders_ = std::make_unique<asr_sphinx::DecoderPool>(o.sphinx);
    asr_ = std::make_unique<asr_sphinx::SphinxRecognizer>(*decoders_, o.sphinx);
    b.RegisterService(asr_.get());
  }
  if (o.llm) {
    llm_ = std::make_unique<dialogue_rules::RulesDialogue>(std::move(o.rules));
    b.RegisterService(llm_.get());
  }
  server_ = b.BuildAndStart();
  if (!server_ || port == 0) throw std::runtime_error("cannot serve providers on " + o.listen);
  const auto colon = o.listen.rfind(':');
  address_ = o.listen.substr(0, colon) + ":" + std::to_string(port);
}

BuiltinProviders::~BuiltinProviders() {
  shutdown();
}

void BuiltinProviders::wait() {
  server_->Wait();
}

void BuiltinProviders::shutdown() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace voxbridge::provider_host
