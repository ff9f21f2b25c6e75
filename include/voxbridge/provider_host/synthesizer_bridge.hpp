// Serves an in-process voice backend (ElevenLabs, ...) over the contract's gRPC service
// voxbridge.tts.v1.Synthesizer/StreamingSynthesize, so that a voxbridge elsewhere can reach it as
// a [provider-NAME] (voxbridge-provider --elevenlabs NAME). The same backend code as in process:
// one TtsStream per RPC, its responses written as they come (gRPC's flow control is the
// backpressure: the stream's reads pause while a write is outstanding).
//
// Threads: gRPC's sync server runs StreamingSynthesize on one of its threads, which plays the
// call's io thread: every TtsStream method and every event runs there, in order (the backend's
// Poster is this RPC's mailbox). A second thread per RPC reads the client's messages and posts
// them to that mailbox.
// Bounds: the stream's queue (max 200 text chunks towards the backend); the responses are one
// reply's audio.
#pragma once

#include <memory>

#include "voxbridge/providers/clients.hpp"
#include "voxbridge/tts/v1/tts.grpc.pb.h"

namespace voxbridge::provider_host {

class SynthesizerBridge final : public tts::v1::Synthesizer::Service {
 public:
  SynthesizerBridge(std::shared_ptr<providers::ProviderClients> backend,
                    providers::ProviderTarget target)
      : backend_(std::move(backend)), target_(std::move(target)) {}
  grpc::Status StreamingSynthesize(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<tts::v1::SynthesizeResponse, tts::v1::SynthesizeRequest>* rpc)
      override;

 private:
  std::shared_ptr<providers::ProviderClients> backend_;
  providers::ProviderTarget target_;
};

}  // namespace voxbridge::provider_host
