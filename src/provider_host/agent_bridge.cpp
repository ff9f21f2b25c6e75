#include "voxbridge/provider_host/agent_bridge.hpp"

#include <atomic>
#include <thread>

#include "mailbox.hpp"

namespace voxbridge::provider_host {

namespace {

/// Messages from the client waiting for the backend (as a call's io thread would queue them).
constexpr std::size_t kMaxQueued = 200;

using detail::Mailbox;

}  // namespace

grpc::Status AgentBridge::Converse(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<agent::v1::AgentResponse, agent::v1::AgentRequest>* rpc) {
  agent::v1::AgentRequest first;
  if (!rpc->Read(&first) || !first.has_config()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a config"};
  }
  auto box = std::make_shared<Mailbox>();
  bool done = false;  // set by `closed`, on this thread
  providers::StreamStatus status;
  providers::AgentEvents ev;
  ev.response = [rpc](agent::v1::AgentResponse& r) { rpc->Write(r); };
  ev.closed = [&done, &status](const providers::StreamStatus& st) {
    status = st;
    done = true;
  };
  std::shared_ptr<providers::AgentStream> stream;
  try {
    stream = backend_->open_agent(
        target_, first.config(), [box](std::function<void()> fn) { box->post(std::move(fn)); },
        std::move(ev), kMaxQueued);
  } catch (const std::exception& e) {
    return {grpc::StatusCode::RESOURCE_EXHAUSTED, e.what()};
  }
  auto reader_done = std::make_shared<std::atomic<bool>>(false);
  std::thread reader([rpc, stream, box, reader_done] {
    agent::v1::AgentRequest r;
    while (rpc->Read(&r)) stream->send(std::move(r));
    stream->finish();  // the client half-closed (or went away): end the session
    reader_done->store(true);
    box->wake();
  });
  while (auto fn = box->next(done)) {
    fn();
    if (ctx->IsCancelled()) stream->cancel();
  }
  // The session ended first (the service failed): the client's side is cut so the reader ends.
  if (!reader_done->load()) ctx->TryCancel();
  reader.join();
  if (status.ok()) return grpc::Status::OK;
  return {static_cast<grpc::StatusCode>(status.code), status.message};
}

}  // namespace voxbridge::provider_host
