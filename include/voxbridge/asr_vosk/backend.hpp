// A Vosk server (alphacep/vosk-server's gRPC service, vosk.stt.v1.SttService) as an in-process
// ASR backend: a providers::ProviderClients whose open_asr() gives one utterance's AsrStream,
// the way the pipeline asks for them. It serves only speech recognition; open_llm/tts/agent
// throw. A user gives an address ([vosk-NAME] address = HOST:PORT) and writes no code.
//
// One StreamingRecognize RPC per utterance on one shared HTTP/2 channel (no connection set-up
// per utterance): the config first (LINEAR16_PCM at the utterance's rate, partial results,
// word times), then the utterance's audio as the pipeline sends it. Vosk takes 16-bit PCM
// only: a G.711 leg's mu-law or a-law (asr_encoding = mulaw) is decoded here, once, into the
// message. Vosk's chunks become results: final = false -> interim, final = true -> final, and
// a final chunk with words ends the turn (Kaldi's endpointer heard the caller stop) unless
// end_on_final is off, when voxbridge's VAD alone ends turns. Empty texts (Kaldi's endpoint on
// silence, the last result after a turn) are dropped; a text is cut at 4 KiB. Times are the
// words' (enable_word_time_offsets), from the utterance's start.
//
// Threads: open_asr() and the streams' methods on the call's thread; gRPC's threads only post
// to the call's Poster, where every response is mapped. Per message of caller audio: one
// protobuf message (and the G.711 decode); nothing is logged.
// Ownership: the server (or voxbridge-provider) holds the backend, and the backend its channel;
// a stream holds the stub it runs on. The destructor waits (2 s at most) until no stream uses
// the channel any more.
// Bounds: max_sessions utterances at once (open_asr() throws beyond: the call's fallback); the
// pipeline's max_queued audio messages per stream (dropped beyond, counted); the deadline the
// pipeline gives each utterance; 4 KiB of text per result.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "voxbridge/asr_vosk/options.hpp"
#include "voxbridge/providers/clients.hpp"

namespace voxbridge::asr_vosk {

/// What the backend has done (any thread).
struct VoskCounters {
  std::atomic<std::uint64_t> utterances{0};
  std::atomic<std::uint64_t> refused{0};   ///< over max_sessions
  std::atomic<std::uint64_t> failed{0};    ///< ended by an error other than cancel
  std::atomic<std::uint64_t> finals{0};    ///< final results with text
  std::atomic<std::uint64_t> audio_ms{0};  ///< caller audio sent
};

class VoskBackend final : public providers::PartialClients {
 public:
  /// Throws std::runtime_error if the TLS set-up (ca_file) fails.
  explicit VoskBackend(VoskOptions options);
  ~VoskBackend() override;
  VoskBackend(const VoskBackend&) = delete;
  VoskBackend& operator=(const VoskBackend&) = delete;

  /// LINEAR16, MULAW or ALAW at 8000..48000 Hz; throws std::runtime_error for another format
  /// or over max_sessions. The target's deadline bounds the utterance's RPC.
  std::shared_ptr<providers::AsrStream> open_asr(const providers::ProviderTarget& target,
                                                 const asr::v1::RecognitionConfig& config,
                                                 providers::Poster post,
                                                 providers::AsrEvents events,
                                                 std::size_t max_queued) override;

  const VoskOptions& options() const;
  const VoskCounters& counters() const;
  /// Utterances under way now.
  std::size_t sessions() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace voxbridge::asr_vosk
