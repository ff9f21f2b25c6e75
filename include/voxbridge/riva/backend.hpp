// An NVIDIA Riva server (nvidia.riva.asr.RivaSpeechRecognition/StreamingRecognize and
// nvidia.riva.tts.RivaSpeechSynthesis/SynthesizeOnline over gRPC) as an in-process backend for
// both recognition and voice: a providers::ProviderClients whose open_asr() gives one
// utterance's AsrStream and open_tts() one reply's TtsStream. A user gives an address
// ([riva-NAME] address = HOST:50051, or NVIDIA's hosted grpc.nvcf.nvidia.com:443 with a key
// and function ids) and writes no code.
//
// Recognition: one StreamingRecognize RPC per utterance on one shared HTTP/2 channel. The
// config first (the leg's MULAW or ALAW as they are, nothing transcoded twice, or LINEAR_PCM; the
// rate; language; one alternative; automatic punctuation; the agent's phrase hints as a speech
// context; word times; interim results), then the audio. Results with is_final = false become
// interim results (Riva's stability kept); is_final = true a final result, which also ends the
// turn (Riva's endpointing) unless end_on_final is off. Empty transcripts are dropped, a text is
// cut at 4 KiB; times are the words', from the utterance's start.
//
// Voice: one SynthesizeOnline RPC per sentence, sent the moment the model finishes it, on the
// same shared channel (no handshake per sentence): LINEAR_PCM at the agent's tts_rate (Riva
// resamples to it: nothing to do here), the voice (the agent's wins when it names one),
// language. The audio is handed on as it streams in; the RPC's end gives the sentence's
// ChunkDone, and the next sentence starts. A reply's sentences go one after the other, so the
// audio comes in order. cancel() (barge-in) cancels the RPC under way at once and forgets the
// sentences queued. Paused reads stop reading the RPC (HTTP/2 flow control holds Riva back).
// (Riva 2.x declares SynthesizeOnline as one request and a stream of responses; since 2026 the
// request side is a stream too. One request and a half-close is the same on the wire for both.)
//
// Threads: open_*() and the streams' methods on the call's thread; gRPC's threads only post to
// the call's Poster, where every response is mapped and the next sentence started.
// Ownership: the server holds the backend, the backend its channel; a stream holds the stub it
// runs on; the destructor waits (2 s at most) until no stream uses the channel.
// Bounds: max_sessions streams at once, recognition and voice together (open_*() throws beyond:
// the fallback); the pipeline's max_queued audio messages or sentences per stream (dropped
// beyond, counted); 4 KiB per result and per sentence; the pipeline's deadline per RPC.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "voxbridge/providers/clients.hpp"
#include "voxbridge/riva/options.hpp"

namespace voxbridge::riva {

/// What the backend has done (any thread).
struct RivaCounters {
  std::atomic<std::uint64_t> utterances{0};
  std::atomic<std::uint64_t> replies{0};
  std::atomic<std::uint64_t> sentences{0};   ///< SynthesizeOnline RPCs
  std::atomic<std::uint64_t> refused{0};     ///< over max_sessions
  std::atomic<std::uint64_t> failed{0};      ///< streams ended by an error other than cancel
  std::atomic<std::uint64_t> characters{0};  ///< text sent to the voice
  std::atomic<std::uint64_t> asr_audio_ms{0};
  std::atomic<std::uint64_t> tts_audio_ms{0};
};

class RivaBackend final : public providers::PartialClients {
 public:
  /// Throws std::runtime_error if the TLS set-up (ca_file) fails.
  explicit RivaBackend(RivaOptions options);
  ~RivaBackend() override;
  RivaBackend(const RivaBackend&) = delete;
  RivaBackend& operator=(const RivaBackend&) = delete;

  /// LINEAR16, MULAW or ALAW at 8000..48000 Hz; throws std::runtime_error otherwise or over
  /// max_sessions.
  std::shared_ptr<providers::AsrStream> open_asr(const providers::ProviderTarget& target,
                                                 const asr::v1::RecognitionConfig& config,
                                                 providers::Poster post,
                                                 providers::AsrEvents events,
                                                 std::size_t max_queued) override;
  /// LINEAR16 at 8000..48000 Hz.
  std::shared_ptr<providers::TtsStream> open_tts(const providers::ProviderTarget& target,
                                                 const tts::v1::SynthesisConfig& config,
                                                 providers::Poster post,
                                                 providers::TtsEvents events,
                                                 std::size_t max_queued) override;

  const RivaOptions& options() const;
  const RivaCounters& counters() const;
  std::size_t sessions() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace voxbridge::riva
