// Streaming recognition (voxbridge.asr.v1.Recognizer) for one call or utterance: audio in,
// speech events and transcripts out, delivered on the call's thread (see stream.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "voxbridge/asr/v1/asr.grpc.pb.h"
#include "voxbridge/providers/provider.hpp"
#include "voxbridge/providers/stream.hpp"

namespace voxbridge::providers {

struct AsrResult {
  std::string transcript;
  bool is_final = false;
  float stability = 0;
  float confidence = 0;
  std::uint32_t start_ms = 0;
  std::uint32_t end_ms = 0;
};

/// What the stream reports; each runs on the poster given to AsrStream::start.
struct AsrEvents {
  std::function<void(std::uint32_t offset_ms)> speech_started;
  std::function<void(const AsrResult&)> result;
  std::function<void(std::uint32_t offset_ms)> end_of_utterance;
  /// Exactly once, last: how the stream ended (OK after finish(), CANCELLED after cancel()).
  std::function<void(const grpc::Status&)> closed;
};

class AsrStream {
 public:
  /// Opens the stream and sends `config` first. `max_queued` bounds the audio messages waiting
  /// for the network.
  static std::shared_ptr<AsrStream> start(const std::shared_ptr<grpc::Channel>& channel,
                                          const ProviderTarget& target,
                                          const asr::v1::RecognitionConfig& config, Poster post,
                                          AsrEvents events, std::size_t max_queued = 50);

  /// Queues one audio message (any thread); false if it was dropped (queue full, or finished).
  bool send_audio(std::span<const std::uint8_t> bytes);
  /// No more audio: the provider sends its last results and ends the stream.
  void finish() { stream_->finish(); }
  /// Abandons the stream (barge-in, hangup); `closed` still follows, with CANCELLED.
  void cancel() { stream_->cancel(); }
  std::uint64_t dropped() const { return stream_->dropped(); }

 private:
  using Stream = BidiStream<asr::v1::RecognizeRequest, asr::v1::RecognizeResponse>;
  std::shared_ptr<Stream> stream_;
};

}  // namespace voxbridge::providers
