// Deepgram's streaming recognition (Live Audio, listen.hpp) as an in-process ASR backend: a
// providers::ProviderClients whose open_asr() gives one utterance's AsrStream, the way the
// pipeline asks for them. It serves only speech recognition; open_llm/tts/agent throw.
//
// One socket per call, not per utterance: a call's first utterance opens it (model, encoding,
// rate, endpointing in the URL: MULAW 8 kHz on a G.711 leg when the agent asks for
// asr_encoding = mulaw, so nothing is resampled or transcoded twice), and the utterances after
// it reuse it, without a TLS handshake at the start of each. Between utterances the socket
// carries a KeepAlive text message every `keepalive` (Deepgram closes a socket that hears
// nothing for 10 s), and the call's end (call_ended(), or `linger` without an utterance when
// the end is not known) closes it with CloseStream.
// An utterance's events: SpeechStarted -> speech_started; interim Results -> interim results;
// final Results -> final results; speech_final or UtteranceEnd -> end_of_utterance (the turn
// ends at whichever of Deepgram's endpointing and voxbridge's VAD comes first). finish() sends
// Finalize unless Deepgram's final results already cover all the audio sent; the stream closes
// (ok) once they do, or after finalize_timeout. Times in results are from the utterance's start.
// A socket that breaks, is refused (HTTP 401, 400, 429...) or says something malformed ends
// the utterance with an error (the pipeline retries once on a new socket, then falls back).
//
// Threads: open_asr() and the streams' methods on the call's thread (any io thread of the
// server); each call's socket, JSON and timers on one of the backend's `threads` io threads.
// Per 20 ms of caller audio: one post and one binary WebSocket message, no JSON.
// Ownership: the server (or voxbridge-provider) holds the backend; a call's socket holds the
// backend's shared state; the destructor closes every socket still open and joins the threads.
// Bounds: max_sessions sockets (open_asr() throws beyond: the call's fallback); max_queued
// audio messages waiting for the io thread (send_audio() drops beyond, counted); 1 MiB queued
// to send on the socket, 1 MiB per server message, the connect timeout, finalize_timeout, and
// linger for a socket whose call's end is not known.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

#include "voxbridge/asr_deepgram/options.hpp"
#include "voxbridge/providers/clients.hpp"
#include "voxbridge/ws_agent/ws_agent.hpp"

namespace voxbridge::asr_deepgram {

/// What the backend has done (any thread). sessions_* count call sockets.
struct DeepgramCounters : ws_agent::StreamCounters {
  std::atomic<std::uint64_t> utterances{0};
  std::atomic<std::uint64_t> sockets_reused{0};     ///< utterances on a call's open socket
  std::atomic<std::uint64_t> finalize_timeouts{0};  ///< closed without the last results
  std::atomic<std::uint64_t> keepalives{0};
  std::atomic<std::uint64_t> audio_ms{0};   ///< caller audio sent (what Deepgram bills)
  std::atomic<std::uint64_t> malformed{0};  ///< server messages that ended an utterance
};

class DeepgramBackend final : public providers::PartialClients {
 public:
  /// Starts the threads; throws std::runtime_error if the TLS set-up (ca_file) fails.
  explicit DeepgramBackend(DeepgramOptions options);
  ~DeepgramBackend() override;
  DeepgramBackend(const DeepgramBackend&) = delete;
  DeepgramBackend& operator=(const DeepgramBackend&) = delete;

  /// LINEAR16 or MULAW at 8000..48000 Hz; throws std::runtime_error for another format or over
  /// max_sessions.
  std::shared_ptr<providers::AsrStream> open_asr(const providers::ProviderTarget& target,
                                                 const asr::v1::RecognitionConfig& config,
                                                 providers::Poster post,
                                                 providers::AsrEvents events,
                                                 std::size_t max_queued) override;
  /// The call's socket is closed (CloseStream) once its utterance, if any, has ended.
  void call_ended(std::string_view call_uuid) override;

  const DeepgramOptions& options() const;
  const DeepgramCounters& counters() const;
  /// Call sockets open now.
  std::size_t sessions() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace voxbridge::asr_deepgram
