// In-process fake gRPC providers with scripted behaviour, for tests and the pipeline's
// integration tests. Each runs on a real gRPC server bound to 127.0.0.1 on a free port.
#pragma once

#include <grpcpp/server.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "voxbridge/asr/v1/asr.grpc.pb.h"

namespace voxbridge::testing {

/// A recognizer that "hears" voiced frames: an audio message of LINEAR16 whose mean absolute
/// sample is above `voice_level`. It sends speech_started at the first voiced frame, an interim
/// result with the first word after `voiced_frames / 2` voiced frames, and after `voiced_frames`
/// the final `transcript` and end_of_utterance. Offsets count 20 ms per audio message. A stream
/// whose first message is not a config ends with INVALID_ARGUMENT.
class FakeRecognizer final : public asr::v1::Recognizer::Service {
 public:
  std::string transcript = "hello world";
  int voiced_frames = 10;
  int voice_level = 500;

  grpc::Status StreamingRecognize(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<asr::v1::RecognizeResponse, asr::v1::RecognizeRequest>* stream)
      override;

  /// What the last stream saw.
  std::atomic<int> streams{0};
  std::atomic<int> audio_messages{0};
  std::atomic<bool> saw_config{false};
  std::string last_call_id;  // written before the stream ends
};

/// A gRPC server on 127.0.0.1:<free port> with the standard health service.
class FakeProviderServer {
 public:
  explicit FakeProviderServer(grpc::Service* service);
  ~FakeProviderServer();
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// Marks `service` (e.g. "voxbridge.asr.v1.Recognizer") not serving in the health service.
  void set_not_serving(const std::string& service);

 private:
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace voxbridge::testing
