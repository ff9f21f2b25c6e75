// Built-in text to speech: Flite (CMU's small synthesizer, from Debian's flite1-dev) with its
// "slt" US English voice, served over the project's TTS contract (voxbridge.tts.v1.Synthesizer).
//
// Each text chunk of a stream is synthesized as it arrives (so the first sentence plays while
// the LLM still writes the next), resampled from the voice's 16 kHz to the rate the client asks
// for, and sent in 100 ms messages followed by ChunkDone. Synthesis runs on gRPC's threads,
// never on voxbridge's io threads; Flite keeps global state, so one synthesis runs at a time
// (it is ~100x faster than real time: a sentence takes a few ms).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "voxbridge/tts/v1/tts.grpc.pb.h"

namespace voxbridge::tts_flite {

/// The Flite engine: thread-safe, one synthesis at a time.
class FliteEngine {
 public:
  static constexpr int kRateHz = 16000;  ///< the slt voice's rate
  /// Registers the voice (once per process).
  FliteEngine();
  /// Speech for `text` at kRateHz (empty for text with nothing to say).
  std::vector<std::int16_t> synthesize(const std::string& text);

 private:
  std::mutex mu_;
  void* voice_ = nullptr;  // cst_voice*
};

class FliteSynthesizer final : public tts::v1::Synthesizer::Service {
 public:
  explicit FliteSynthesizer(FliteEngine& engine) : engine_(engine) {}
  grpc::Status StreamingSynthesize(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<tts::v1::SynthesizeResponse, tts::v1::SynthesizeRequest>* stream)
      override;

 private:
  FliteEngine& engine_;
};

}  // namespace voxbridge::tts_flite
