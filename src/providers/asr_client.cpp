#include "voxbridge/providers/asr_client.hpp"

namespace voxbridge::providers {

namespace {
void dispatch(const AsrEvents& ev, const asr::v1::RecognizeResponse& r) {
  switch (r.event_case()) {
    case asr::v1::RecognizeResponse::kSpeechStarted:
      if (ev.speech_started) ev.speech_started(r.speech_started().offset_ms());
      break;
    case asr::v1::RecognizeResponse::kResult:
      if (ev.result) {
        const auto& p = r.result();
        ev.result(AsrResult{p.transcript(), p.is_final(), p.stability(), p.confidence(),
                            p.start_ms(), p.end_ms()});
      }
      break;
    case asr::v1::RecognizeResponse::kEndOfUtterance:
      if (ev.end_of_utterance) ev.end_of_utterance(r.end_of_utterance().offset_ms());
      break;
    default:
      break;  // an event of a newer contract version
  }
}
}  // namespace

std::shared_ptr<AsrStream> AsrStream::start(const std::shared_ptr<grpc::Channel>& channel,
                                            const ProviderTarget& target,
                                            const asr::v1::RecognitionConfig& config, Poster post,
                                            AsrEvents events, std::size_t max_queued) {
  auto stub = std::shared_ptr<asr::v1::Recognizer::Stub>(asr::v1::Recognizer::NewStub(channel));
  asr::v1::RecognizeRequest first;
  *first.mutable_config() = config;
  auto ev = std::make_shared<AsrEvents>(std::move(events));
  auto s = std::make_shared<AsrStream>();
  s->stream_ =
      Stream::start([stub](grpc::ClientContext* c,
                           Stream::Reactor* r) { stub->async()->StreamingRecognize(c, r); },
                    stub, target, std::move(first), std::move(post),
                    [ev](asr::v1::RecognizeResponse& r) { dispatch(*ev, r); },
                    [ev](const grpc::Status& st) {
                      if (ev->closed) ev->closed(st);
                    },
                    max_queued);
  return s;
}

bool AsrStream::send_audio(std::span<const std::uint8_t> bytes) {
  asr::v1::RecognizeRequest m;
  m.set_audio(bytes.data(), bytes.size());
  return stream_->send(std::move(m));
}

}  // namespace voxbridge::providers
