// An OpenAI-compatible transcription server (transcription.hpp) as an in-process ASR backend: a
// providers::ProviderClients whose open_asr() gives one utterance's AsrStream, the way the
// pipeline asks for them. It serves only speech recognition; open_llm/tts/agent throw.
//
// Such servers take whole files, not streams: an utterance's audio is kept on the call's thread
// as voxbridge's own VAD and endpointing cut it, and finish() sends it as one WAV in one
// POST /audio/transcriptions (on a kept-alive connection, net/http_pool.hpp). Before that, the
// gate: an utterance with less than min_speech of voiced audio (WebRTC's detector) is not sent,
// and the answer is dropped when it is empty ("", "[BLANK_AUDIO]", "(silence)"), or a phrase
// Whisper is known to invent on noise ("Thank you.") from an utterance with less than
// hallucination_guard voiced. What is left is the utterance's final result; with stream=true,
// the server's deltas come before it as interim results.
//
// Threads: open_asr() and the streams' methods on the call's thread; the gate, the WAV, the
// request and its answer on one of the backend's `threads` io threads; results go back through
// the call's Poster. Per 20 ms of caller audio: a copy into the utterance's buffer (which grows
// by doubling), no post, no lock.
// Ownership: the server (or voxbridge-provider) holds the backend; a request holds the
// backend's shared state; the destructor cancels the requests under way and joins the threads.
// Bounds: max_sessions utterances at once (open_asr() throws beyond: the call's fallback);
// max_utterance of audio per utterance (later audio is dropped, counted); the connect timeout;
// `timeout` for the answer's header and each piece of it; 1 MiB per answer; max_idle kept-alive
// connections per thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "voxbridge/asr_openai/options.hpp"
#include "voxbridge/net/http_pool.hpp"
#include "voxbridge/providers/clients.hpp"

namespace voxbridge::asr_openai {

/// What the backend has done (any thread).
struct TranscriptionCounters {
  std::atomic<std::uint64_t> utterances{0};
  std::atomic<std::uint64_t> refused{0};  ///< over max_sessions
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> failed{0};           ///< requests that ended in an error
  std::atomic<std::uint64_t> gated{0};            ///< utterances not sent: too little speech
  std::atomic<std::uint64_t> dropped_empty{0};    ///< answers that held no words
  std::atomic<std::uint64_t> dropped_phrases{0};  ///< known hallucinations dropped
  std::atomic<std::uint64_t> audio_ms{0};         ///< audio sent (what a hosted service bills)
  std::atomic<std::uint64_t> dropped_audio{0};    ///< audio messages over max_utterance
};

class TranscriptionBackend final : public providers::PartialClients {
 public:
  /// Starts the threads; throws std::runtime_error if the TLS set-up (ca_file) fails, or
  /// std::invalid_argument for a base_url that is not http(s)://.
  explicit TranscriptionBackend(TranscriptionOptions options);
  ~TranscriptionBackend() override;
  TranscriptionBackend(const TranscriptionBackend&) = delete;
  TranscriptionBackend& operator=(const TranscriptionBackend&) = delete;

  /// LINEAR16 or MULAW (sent as LINEAR16) at 8000..48000 Hz; throws std::runtime_error for
  /// another format or over max_sessions.
  std::shared_ptr<providers::AsrStream> open_asr(const providers::ProviderTarget& target,
                                                 const asr::v1::RecognitionConfig& config,
                                                 providers::Poster post,
                                                 providers::AsrEvents events,
                                                 std::size_t max_queued) override;

  const TranscriptionOptions& options() const;
  const TranscriptionCounters& counters() const;
  /// Utterances open now.
  std::size_t sessions() const;
  /// The connections' story: opened, requests, reused, retried (summed over the threads).
  net::HttpPoolCounters http_counters() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace voxbridge::asr_openai
