// OpenAI Realtime (and Azure OpenAI's Realtime) as a speech-to-speech backend in process: a
// providers::ProviderClients whose open_agent() opens one Realtime WebSocket session per call
// and speaks voxbridge's agent contract to the call (conversation.hpp does the translating).
// It serves only the speech-to-speech contract; open_asr/llm/tts throw.
//
// Threads: the backend runs `threads` io threads of its own. Each call's socket, JSON and base64
// work runs on one of them, never on a call's io thread: the call's thread only moves a message
// into a queue (send()), and the backend posts what it has for the call through the call's
// Poster. Per call, per 20 ms of caller audio: one post; per append (append_ms): one base64
// encode and one WebSocket write; per model audio delta: one JSON parse and one base64 decode.
// Ownership: the backend is shared by the agents that use it (the server holds it); a stream
// holds what it needs of the backend, so a stream outlives nothing it uses. The destructor
// aborts every session still open and joins the threads.
// Bounds: max_sessions sessions at once (open_agent() throws beyond: the call's fallback);
// max_queued messages from the call waiting for the backend thread (send() drops beyond, counted);
// the socket's limits (ws_client.hpp): 4 MiB per server event, 1 MiB queued to send, the
// connect timeout and the idle timeout; the model's audio held while reads are paused is capped
// (30 s, then dropped and counted).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "voxbridge/providers/clients.hpp"
#include "voxbridge/realtime_openai/options.hpp"
#include "voxbridge/ws_agent/ws_agent.hpp"

namespace voxbridge::realtime_openai {

/// What a backend has done, for metrics and tests (any thread).
struct BackendCounters : ws_agent::StreamCounters {
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> service_errors{0};  ///< `error` events the session survived
};

class RealtimeBackend final : public ws_agent::Backend<RealtimeOptions, BackendCounters> {
 public:
  /// Starts the threads; throws std::runtime_error if the TLS set-up (ca_file) fails.
  RealtimeBackend(RealtimeOptions options, int resampler_quality);

  std::shared_ptr<providers::AgentStream> open_agent(const providers::ProviderTarget& target,
                                                     const agent::v1::AgentConfig& config,
                                                     providers::Poster post,
                                                     providers::AgentEvents events,
                                                     std::size_t max_queued) override;
};

/// The WebSocket URL for `o`: `URL?model=MODEL` (OpenAI, and Azure's GA path
/// .../openai/v1/realtime), or for Azure's preview path `URL?api-version=VERSION&deployment=MODEL`.
std::string session_url(const RealtimeOptions& o);

}  // namespace voxbridge::realtime_openai
