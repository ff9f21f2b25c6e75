// Built-in speech recognition: CMU PocketSphinx (Debian's libpocketsphinx-dev with the
// pocketsphinx-en-us model), served over the project's ASR contract
// (voxbridge.asr.v1.Recognizer).
//
// A bounded pool of decoders (each holds the acoustic and language models, tens of MB): a
// stream takes one for its utterance and waits up to `acquire_timeout` for one to be free, else
// it ends with RESOURCE_EXHAUSTED. Decoding runs on gRPC's threads, never on voxbridge's io
// threads. Audio at any rate is resampled to the model's 16 kHz (the Debian model is wideband:
// telephone-band audio recognizes poorly; see the README). Results: speech_started,
// interim hypotheses as they change, end_of_utterance when the decoder's own voice activity
// detection hears the speech end, then the final transcript.
//
// Narrowband streams (below 16 kHz) with phrase hints are decoded with a grammar of the hint
// words (plus small filler words) instead of the language model: measured on Flite's phrases
// through an 8 kHz leg, the language model heard "i would like to knock it failed" for "i would
// like to talk to sales", the grammar "i would like to talk it sales".
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "voxbridge/asr/v1/asr.grpc.pb.h"

namespace voxbridge::asr_sphinx {

struct SphinxOptions {
  std::string model_dir = "/usr/share/pocketsphinx/model/en-us";  ///< en-us/, *.lm.bin, *.dict
  std::size_t decoders = 2;                                       ///< utterances decoded at once
  std::chrono::milliseconds acquire_timeout{2000};
  /// Interim results at most this often (of audio).
  std::chrono::milliseconds interim_every{300};
  /// Below 16 kHz, decode with a grammar of the stream's phrase hints (if it has any).
  bool narrowband_grammar = true;
};

/// One decoder of the pool (opaque ps_decoder_t with its configuration).
struct Decoder;

class DecoderPool {
 public:
  /// Loads `decoders` decoders; throws std::runtime_error if the model cannot be loaded.
  explicit DecoderPool(const SphinxOptions& o);
  ~DecoderPool();
  DecoderPool(const DecoderPool&) = delete;
  DecoderPool& operator=(const DecoderPool&) = delete;

  /// A free decoder, or null after `timeout`.
  Decoder* acquire(std::chrono::milliseconds timeout);
  void release(Decoder* d);
  std::size_t size() const { return all_.size(); }

 private:
  std::vector<std::unique_ptr<Decoder>> all_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Decoder*> free_;
};

/// Decodes one whole utterance of 16 kHz audio (tests, `voxbridge call`).
std::string recognize(DecoderPool& pool, const std::vector<std::int16_t>& pcm16k);

class SphinxRecognizer final : public asr::v1::Recognizer::Service {
 public:
  SphinxRecognizer(DecoderPool& pool, SphinxOptions o) : pool_(pool), o_(std::move(o)) {}
  grpc::Status StreamingRecognize(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<asr::v1::RecognizeResponse, asr::v1::RecognizeRequest>* stream)
      override;

 private:
  DecoderPool& pool_;
  SphinxOptions o_;
};

}  // namespace voxbridge::asr_sphinx
