#include "voxbridge/provider_host/recognizer_bridge.hpp"

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
  return detail::pump(
      ctx, rpc, box, stream, done, status,
      [](detail::Mailbox& mb, const std::shared_ptr<providers::AsrStream>& s,
         asr::v1::RecognizeRequest& r) {
        if (!r.has_audio()) return;
        mb.post([s, a = std::move(*r.mutable_audio())] {
          s->send_audio({reinterpret_cast<const std::uint8_t*>(a.data()), a.size()});
        });
      });
}

}  // namespace voxbridge::provider_host
