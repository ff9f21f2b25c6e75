// ElevenLabs' streaming synthesis (stream-input, stream_input.hpp) as an in-process TTS backend:
// a providers::ProviderClients whose open_tts() gives one reply's TtsStream, the way the
// pipeline asks for them. It serves only speech synthesis; open_asr/llm/agent throw.
//
// One socket per reply, opened when the reply's stream is (before the model's first sentence,
// so the handshake overlaps the model's thinking): the first message sets the voice and the
// first generation's size, each sentence goes out as it is written with flush (speech starts
// before the model has finished), the end of the text closes the input, and the service's
// isFinal ends the stream. Audio comes back as the reply's rate asks: pcm_16000 / pcm_24000 /
// ..., or ulaw_8000 on an 8 kHz reply (decoded here: the pipeline takes LINEAR16). ChunkDone
// marks follow the service's alignment (the characters spoken so far). cancel() (barge-in)
// drops the socket at once.
//
// Threads: open_tts() and the streams' methods on the call's thread; each reply's socket, JSON,
// base64 and mu-law decoding on one of the backend's `threads` io threads; responses go back
// through the call's Poster, held while the call pauses reads.
// Ownership: the server (or voxbridge-provider) holds the backend; a reply's socket holds the
// backend's shared state; the destructor aborts every socket still open and joins the threads.
// Bounds: max_sessions sockets (open_tts() throws beyond: the reply's fallback); max_queued text
// messages waiting for the io thread; 4 KiB of text per message; 1 MiB per server message; the
// responses held while reads are paused (kMaxHeld, beyond: dropped and counted); the connect
// timeout.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "voxbridge/providers/clients.hpp"
#include "voxbridge/tts_elevenlabs/options.hpp"
#include "voxbridge/ws_agent/ws_agent.hpp"

namespace voxbridge::tts_elevenlabs {

/// What the backend has done (any thread). sessions_* count reply sockets.
struct ElevenLabsCounters : ws_agent::StreamCounters {
  std::atomic<std::uint64_t> characters{0};    ///< text sent (what ElevenLabs bills)
  std::atomic<std::uint64_t> audio_ms{0};      ///< audio received
  std::atomic<std::uint64_t> cancelled{0};     ///< replies cut by barge-in or hangup
  std::atomic<std::uint64_t> held_dropped{0};  ///< responses over kMaxHeld while paused
};

class ElevenLabsBackend final : public providers::PartialClients {
 public:
  /// Responses held for a call that has paused reads (a reply's audio, 100 ms or more each).
  static constexpr std::size_t kMaxHeld = 3000;

  /// Starts the threads; throws std::runtime_error if the TLS set-up (ca_file) fails.
  explicit ElevenLabsBackend(ElevenLabsOptions options);
  ~ElevenLabsBackend() override;
  ElevenLabsBackend(const ElevenLabsBackend&) = delete;
  ElevenLabsBackend& operator=(const ElevenLabsBackend&) = delete;

  /// LINEAR16 at 8000, 16000, 22050, 24000, 44100 or 48000 Hz; throws std::runtime_error for
  /// another format or over max_sessions.
  std::shared_ptr<providers::TtsStream> open_tts(const providers::ProviderTarget& target,
                                                 const tts::v1::SynthesisConfig& config,
                                                 providers::Poster post,
                                                 providers::TtsEvents events,
                                                 std::size_t max_queued) override;

  const ElevenLabsOptions& options() const;
  const ElevenLabsCounters& counters() const;
  /// Reply sockets open now.
  std::size_t sessions() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace voxbridge::tts_elevenlabs
