// Serves an in-process speech-to-speech backend (OpenAI Realtime, ...) over the contract's gRPC
// service voxbridge.agent.v1.Agent/Converse, so that a voxbridge elsewhere can reach it as a
// [provider-NAME] (voxbridge-provider --realtime NAME). The same backend code as in process: one
// AgentStream per RPC, messages passed through unchanged.
//
// Threads: gRPC's sync server runs Converse on one of its threads; a second thread per RPC
// reads the client's messages into the stream while the first runs the stream's events (its
// Poster is this RPC's queue) and writes them. The backend's own threads only post to that
// queue.
// Bounds: the stream's queue (max_queued messages towards the backend, drops counted); the
// event queue towards the client is bounded by the backend's own bounds (the model's audio of
// one reply) and drains as fast as gRPC flow control lets it.
#pragma once

#include <memory>

#include "voxbridge/agent/v1/agent.grpc.pb.h"
#include "voxbridge/providers/clients.hpp"

namespace voxbridge::provider_host {

class AgentBridge final : public agent::v1::Agent::Service {
 public:
  AgentBridge(std::shared_ptr<providers::ProviderClients> backend, providers::ProviderTarget target)
      : backend_(std::move(backend)), target_(std::move(target)) {}
  grpc::Status Converse(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<agent::v1::AgentResponse, agent::v1::AgentRequest>* stream) override;

 private:
  std::shared_ptr<providers::ProviderClients> backend_;
  providers::ProviderTarget target_;
};

}  // namespace voxbridge::provider_host
