#include "voxbridge/provider_host/recognizer_bridge.hpp"

#include <atomic>
#include <thread>

#include "mailbox.hpp"

namespace voxbridge::provider_host {

namespace {
/// Audio messages from the client waiting for the backend (as a call's io thread queues them).
constexpr std::size_t kMaxQueued = 200;
}  // namespace

grpc::Status RecognizerBridge::StreamingRecognize(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<asr::v1::RecognizeResponse, asr::v1::RecognizeRequest>* rpc) {
  asr::v1::RecognizeRequest first;
  if (!rpc->Read(&first) || !first.has_config()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a config"};
  }
  auto box = std::make_shared<detail::Mailbox>();
  bool done = false;  // set by `closed`, on this thread
  providers::StreamStatus status;
  asr::v1::RecognizeResponse out;
  providers::AsrEvents ev;
  ev.speech_started = [rpc, &out](std::uint32_t offset_ms) {
    out.Clear();
    out.mutable_speech_started()->set_offset_ms(offset_ms);
    rpc->Write(out);
  };
  ev.result = [rpc, &out](const providers::AsrResult& r) {
    out.Clear();
    auto* m = out.mutable_result();
    m->set_transcript(r.transcript);
    m->set_is_final(r.is_final);
    m->set_stability(r.stability);
    m->set_confidence(r.confidence);
    m->set_start_ms(r.start_ms);
    m->set_end_ms(r.end_ms);
    rpc->Write(out);
  };
  ev.end_of_utterance = [rpc, &out](std::uint32_t offset_ms) {
    out.Clear();
    out.mutable_end_of_utterance()->set_offset_ms(offset_ms);
    rpc->Write(out);
  };
  ev.closed = [&done, &status](const providers::StreamStatus& st) {
    status = st;
    done = true;
  };
  std::shared_ptr<providers::AsrStream> stream;
  try {
    stream = backend_->open_asr(
        target_, first.config(), [box](std::function<void()> fn) { box->post(std::move(fn)); },
        std::move(ev), kMaxQueued);
  } catch (const std::exception& e) {
    return {grpc::StatusCode::FAILED_PRECONDITION, e.what()};
  }
  auto reader_done = std::make_shared<std::atomic<bool>>(false);
  std::thread reader([rpc, stream, box, reader_done] {
    asr::v1::RecognizeRequest r;
    while (rpc->Read(&r)) {
      if (!r.has_audio()) continue;
      box->post([stream, a = std::move(*r.mutable_audio())] {
        stream->send_audio({reinterpret_cast<const std::uint8_t*>(a.data()), a.size()});
      });
    }
    box->post([stream] { stream->finish(); });  // half-closed (or gone): the utterance ends
    reader_done->store(true);
    box->wake();
  });
  bool cancelled = false;
  while (!done) {  // what the reader posts after the stream's end is not run
    auto fn = box->next(done);
    if (!fn) break;
    fn();
    if (!cancelled && ctx->IsCancelled()) {
      cancelled = true;
      stream->cancel();
    }
  }
  // The stream ended first (the service failed): the client's side is cut so the reader ends.
  if (!reader_done->load()) ctx->TryCancel();
  reader.join();
  if (status.ok()) return grpc::Status::OK;
  return {static_cast<grpc::StatusCode>(status.code), status.message};
}

}  // namespace voxbridge::provider_host
