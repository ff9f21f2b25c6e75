// An OpenAI-compatible speech server (speech.hpp) as an in-process TTS backend: a
// providers::ProviderClients whose open_tts() gives one reply's TtsStream, the way the pipeline
// asks for them. It serves only speech synthesis; open_asr/llm/agent throw.
//
// Each sentence the model writes becomes one POST /audio/speech with response_format=pcm, sent
// the moment the sentence is (the reply's first words are spoken before the model has
// finished), on a kept-alive connection (net/http_pool.hpp: no TCP or TLS handshake per
// sentence). A reply's sentences go one after the other on one connection at a time, so the
// audio comes in order; the audio is handed on as it arrives (resampled from the server's
// sample_rate to the rate the agent asks, if they differ), and each sentence's end gives its
// ChunkDone. cancel() (barge-in) drops the request under way at once: its connection is closed,
// never reused, and the sentences still queued are forgotten.
//
// Threads: open_tts() and the streams' methods on the call's thread; each reply's requests, the
// resampling and the held responses on one of the backend's `threads` io threads; responses go
// back through the call's Poster, held while the call pauses reads.
// Ownership: the server (or voxbridge-provider) holds the backend; a reply holds the backend's
// shared state; the destructor gives the replies under way a moment, then joins the threads.
// Bounds: max_sessions replies at once (open_tts() throws beyond: the reply's fallback);
// max_queued sentences waiting; 4 KiB of text per sentence; 16 MiB of audio per sentence; the
// responses held while reads are paused (kMaxHeld, beyond: dropped and counted); the connect
// timeout, and `timeout` for the answer's header and each piece of it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "voxbridge/net/http_pool.hpp"
#include "voxbridge/providers/clients.hpp"
#include "voxbridge/tts_openai/options.hpp"

namespace voxbridge::tts_openai {

/// What the backend has done (any thread).
struct SpeechCounters {
  std::atomic<std::uint64_t> replies{0};
  std::atomic<std::uint64_t> refused{0};       ///< over max_sessions
  std::atomic<std::uint64_t> requests{0};      ///< sentences asked for
  std::atomic<std::uint64_t> failed{0};        ///< replies ended by an error
  std::atomic<std::uint64_t> cancelled{0};     ///< replies cut by barge-in or hangup
  std::atomic<std::uint64_t> characters{0};    ///< text sent (what a hosted service bills)
  std::atomic<std::uint64_t> audio_ms{0};      ///< audio received
  std::atomic<std::uint64_t> dropped_text{0};  ///< sentences over max_queued
  std::atomic<std::uint64_t> held_dropped{0};  ///< responses over kMaxHeld while paused
};

class SpeechBackend final : public providers::PartialClients {
 public:
  /// Responses held for a call that has paused reads (16 KiB of audio or less each).
  static constexpr std::size_t kMaxHeld = 4000;

  /// Starts the threads; throws std::runtime_error if the TLS set-up (ca_file) fails, or
  /// std::invalid_argument for a base_url that is not http(s)://.
  explicit SpeechBackend(SpeechOptions options);
  ~SpeechBackend() override;
  SpeechBackend(const SpeechBackend&) = delete;
  SpeechBackend& operator=(const SpeechBackend&) = delete;

  /// LINEAR16 at 8000..48000 Hz; throws std::runtime_error for another format or over
  /// max_sessions.
  std::shared_ptr<providers::TtsStream> open_tts(const providers::ProviderTarget& target,
                                                 const tts::v1::SynthesisConfig& config,
                                                 providers::Poster post,
                                                 providers::TtsEvents events,
                                                 std::size_t max_queued) override;

  const SpeechOptions& options() const;
  const SpeechCounters& counters() const;
  /// Replies open now.
  std::size_t sessions() const;
  /// The connections' story: opened, requests, reused, retried (summed over the threads).
  net::HttpPoolCounters http_counters() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace voxbridge::tts_openai
