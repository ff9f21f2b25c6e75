// Serves an in-process recognizer backend (Deepgram, ...) over the contract's gRPC service
// voxbridge.asr.v1.Recognizer/StreamingRecognize, so that a voxbridge elsewhere can reach it as
// a [provider-NAME] (voxbridge-provider --deepgram NAME). The same backend code as in process:
// one AsrStream per RPC, its events written as RecognizeResponse messages.
//
// Threads: gRPC's sync server runs StreamingRecognize on one of its threads, which plays the
// call's io thread: every AsrStream method and every event runs there, in order (the backend's
// Poster is this RPC's mailbox). A second thread per RPC reads the client's messages and posts
// them to that mailbox.
// Bounds: the stream's queue (max 200 audio messages towards the backend, drops counted); the
// events towards the client are one utterance's results.
#pragma once

#include <memory>

#include "voxbridge/asr/v1/asr.grpc.pb.h"
#include "voxbridge/providers/clients.hpp"

namespace voxbridge::provider_host {

class RecognizerBridge final : public asr::v1::Recognizer::Service {
 public:
  RecognizerBridge(std::shared_ptr<providers::ProviderClients> backend,
                   providers::ProviderTarget target)
      : backend_(std::move(backend)), target_(std::move(target)) {}
  grpc::Status StreamingRecognize(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<asr::v1::RecognizeResponse, asr::v1::RecognizeRequest>* rpc)
      override;

 private:
  std::shared_ptr<providers::ProviderClients> backend_;
  providers::ProviderTarget target_;
};

}  // namespace voxbridge::provider_host
