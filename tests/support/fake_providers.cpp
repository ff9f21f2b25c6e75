#include "fake_providers.hpp"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>

#include <cstdlib>
#include <cstring>
#include <sstream>

namespace voxbridge::testing {

grpc::Status FakeRecognizer::StreamingRecognize(
    grpc::ServerContext*,
    grpc::ServerReaderWriter<asr::v1::RecognizeResponse, asr::v1::RecognizeRequest>* stream) {
  ++streams;
  asr::v1::RecognizeRequest req;
  if (!stream->Read(&req) || !req.has_config()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a config"};
  }
  saw_config = true;
  last_call_id = req.config().call().call_id();
  int frame = 0, voiced = 0;
  bool finished = false;
  std::istringstream words(transcript);
  std::string first_word;
  words >> first_word;
  while (stream->Read(&req)) {
    if (!req.has_audio() && req.request_case() != asr::v1::RecognizeRequest::kAudio) continue;
    ++audio_messages;
    const std::string& a = req.audio();
    long sum = 0;
    const std::size_t n = a.size() / 2;
    for (std::size_t i = 0; i < n; ++i) {
      std::int16_t s;
      std::memcpy(&s, a.data() + 2 * i, 2);
      sum += std::labs(s);
    }
    const bool is_voiced = n > 0 && sum / static_cast<long>(n) > voice_level;
    const auto at = static_cast<std::uint32_t>(frame * 20);
    ++frame;
    if (!is_voiced || finished) continue;
    asr::v1::RecognizeResponse r;
    if (voiced == 0) {
      r.mutable_speech_started()->set_offset_ms(at);
      stream->Write(r);
    }
    ++voiced;
    if (voiced == voiced_frames / 2) {
      r.Clear();
      r.mutable_result()->set_transcript(first_word);
      r.mutable_result()->set_stability(0.5f);
      stream->Write(r);
    }
    if (voiced == voiced_frames) {
      r.Clear();
      auto* res = r.mutable_result();
      res->set_transcript(transcript);
      res->set_is_final(true);
      res->set_confidence(0.9f);
      res->set_end_ms(at + 20);
      stream->Write(r);
      r.Clear();
      r.mutable_end_of_utterance()->set_offset_ms(at + 20);
      stream->Write(r);
      finished = true;
    }
  }
  return grpc::Status::OK;
}

FakeProviderServer::FakeProviderServer(grpc::Service* service) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  b.RegisterService(service);
  server_ = b.BuildAndStart();
}

FakeProviderServer::~FakeProviderServer() {
  server_->Shutdown();
}

void FakeProviderServer::set_not_serving(const std::string& service) {
  server_->GetHealthCheckService()->SetServingStatus(service, false);
}

}  // namespace voxbridge::testing
