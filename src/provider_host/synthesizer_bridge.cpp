#include "voxbridge/provider_host/synthesizer_bridge.hpp"

#include "mailbox.hpp"

namespace voxbridge::provider_host {

namespace {
/// Text chunks from the client waiting for the backend (as a call's io thread queues them).
constexpr std::size_t kMaxQueued = 200;
}  // namespace

grpc::Status SynthesizerBridge::StreamingSynthesize(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<tts::v1::SynthesizeResponse, tts::v1::SynthesizeRequest>* rpc) {
  tts::v1::SynthesizeRequest first;
  if (!rpc->Read(&first) || !first.has_config()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a config"};
  }
  auto box = std::make_shared<detail::Mailbox>();
  bool done = false;  // set by `closed`, on this thread
  providers::StreamStatus status;
  providers::TtsEvents ev;
  // A blocking write is gRPC's flow control: the backend holds what follows meanwhile.
  ev.response = [rpc](tts::v1::SynthesizeResponse& r) { rpc->Write(r); };
  ev.closed = [&done, &status](const providers::StreamStatus& st) {
    status = st;
    done = true;
  };
  std::shared_ptr<providers::TtsStream> stream;
  try {
    stream = backend_->open_tts(
        target_, first.config(), [box](std::function<void()> fn) { box->post(std::move(fn)); },
        std::move(ev), kMaxQueued);
  } catch (const std::exception& e) {
    return {grpc::StatusCode::FAILED_PRECONDITION, e.what()};
  }
  return detail::pump(
      ctx, rpc, box, stream, done, status,
      [](detail::Mailbox& mb, const std::shared_ptr<providers::TtsStream>& s,
         tts::v1::SynthesizeRequest& r) {
        if (!r.has_text()) return;
        mb.post([s, t = std::move(*r.mutable_text())] { s->send_text(t.text(), t.chunk_id()); });
      });
}

}  // namespace voxbridge::provider_host
