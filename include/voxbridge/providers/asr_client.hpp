// Streaming recognition (voxbridge.asr.v1.Recognizer) for one call.
//
// gRPC runs the stream on its own threads; every event is posted to the call's executor, so
// the pipeline sees transcripts on the io thread that owns the call and never locks. Audio goes
// the other way through a bounded queue: a provider that reads slower than real time loses
// frames (counted), it never blocks the io thread or grows memory without bound.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "voxbridge/asr/v1/asr.grpc.pb.h"
#include "voxbridge/providers/provider.hpp"

namespace voxbridge::providers {

struct AsrResult {
  std::string transcript;
  bool is_final = false;
  float stability = 0;
  float confidence = 0;
  std::uint32_t start_ms = 0;
  std::uint32_t end_ms = 0;
};

/// What the stream reports; each runs on the executor given to AsrStream::start.
struct AsrEvents {
  std::function<void(std::uint32_t offset_ms)> speech_started;
  std::function<void(const AsrResult&)> result;
  std::function<void(std::uint32_t offset_ms)> end_of_utterance;
  /// Exactly once, last: how the stream ended (OK after finish(), CANCELLED after cancel()).
  std::function<void(const grpc::Status&)> closed;
};

class AsrStream
    : public grpc::ClientBidiReactor<asr::v1::RecognizeRequest, asr::v1::RecognizeResponse>,
      public std::enable_shared_from_this<AsrStream> {
 public:
  /// Opens the stream and sends `config` first. `max_queued` bounds the audio messages waiting
  /// for the network.
  static std::shared_ptr<AsrStream> start(const std::shared_ptr<grpc::Channel>& channel,
                                          const ProviderTarget& target,
                                          const asr::v1::RecognitionConfig& config,
                                          boost::asio::any_io_executor executor, AsrEvents events,
                                          std::size_t max_queued = 50);

  /// Queues one audio message (any thread); false if it was dropped (queue full, or finished).
  bool send_audio(std::span<const std::uint8_t> bytes);
  /// No more audio: the provider sends its last results and ends the stream.
  void finish();
  /// Abandons the stream (barge-in, hangup); `closed` still follows, with CANCELLED.
  void cancel();
  std::uint64_t dropped() const;

  AsrStream(std::shared_ptr<grpc::Channel> channel, boost::asio::any_io_executor executor,
            AsrEvents events, std::size_t max_queued);

 private:
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;
  /// With mu_ held: picks the next write, if any is due and none is in flight.
  bool next_write_locked();
  void deliver(const asr::v1::RecognizeResponse& r);

  std::unique_ptr<asr::v1::Recognizer::Stub> stub_;
  grpc::ClientContext ctx_;
  boost::asio::any_io_executor executor_;
  AsrEvents events_;
  std::size_t max_queued_;
  asr::v1::RecognizeResponse response_;

  mutable std::mutex mu_;
  asr::v1::RecognizeRequest in_flight_;  // the message gRPC is writing (untouched until done)
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool finish_requested_ = false;
  bool writes_done_ = false;
  bool done_ = false;
  std::uint64_t dropped_ = 0;
  std::shared_ptr<AsrStream> self_;  // alive until OnDone
};

}  // namespace voxbridge::providers
