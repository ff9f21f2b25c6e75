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
  static constexpr int kRateHz = 16000;  ///< what synthesize() returns, whatever the voice
  /// The voices Debian's flite1-dev ships: slt (female, the default), rms, awb (male), kal16,
  /// kal (male diphone; kal is 8 kHz).
  static const std::vector<std::string>& voices();
  static bool has_voice(const std::string& name);

  /// Registers the default voice (once per process).
  FliteEngine();
  /// Speech for `text` in `voice` (empty = slt) at kRateHz; empty for text with nothing to
  /// say. Throws std::invalid_argument for an unknown voice.
  std::vector<std::int16_t> synthesize(const std::string& text, const std::string& voice = {});

 private:
  std::mutex mu_;
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
