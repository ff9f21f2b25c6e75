// Gemini Live as a speech-to-speech backend in process: a providers::ProviderClients whose
// open_agent() opens one BidiGenerateContent WebSocket session per call and speaks voxbridge's
// agent contract to the call (conversation.hpp does the translating). It serves only the
// speech-to-speech contract; open_asr/llm/tts throw.
//
// Threads: the backend runs `threads` io threads of its own. Each call's socket, JSON and base64
// work runs on one of them, never on a call's io thread: the call's thread only moves a message
// into a queue (send()), and the backend posts what it has for the call through the call's
// Poster. Per call, per 20 ms of caller audio: one post; per append (append_ms): one resample,
// one base64 encode and one WebSocket write; per model audio message: one JSON parse, one base64
// decode and one resample.
// Resumption: on `goAway`, or when the socket breaks or the service closes it normally mid-call,
// the stream opens a new socket whose setup carries the latest sessionResumption handle (the
// old socket is closed and its late messages ignored); the call goes on, its audio held (two
// seconds at most) until the new setupComplete. At most max_resumes per call.
// Ownership: the backend is shared by the agents that use it (the server holds it); a stream
// holds what it needs of the backend. The destructor aborts every session still open and joins
// the threads.
// Bounds: max_sessions sessions at once (open_agent() throws beyond: the call's fallback);
// max_queued messages from the call waiting for the backend thread (send() drops beyond,
// counted); the socket's limits (ws_client.hpp): 4 MiB per server message, 1 MiB queued to
// send, the connect timeout and the idle timeout; the model's audio held while reads are paused
// is capped (then dropped and counted).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "voxbridge/providers/clients.hpp"
#include "voxbridge/realtime_gemini/options.hpp"
#include "voxbridge/ws_agent/ws_agent.hpp"

namespace voxbridge::realtime_gemini {

/// What a backend has done, for metrics and tests (any thread).
struct BackendCounters : ws_agent::StreamCounters {
  std::atomic<std::uint64_t> resumptions{0};  ///< new sockets that went on with a call
};

class GeminiBackend final : public ws_agent::Backend<GeminiOptions, BackendCounters> {
 public:
  /// Starts the threads; throws std::runtime_error if the TLS set-up (ca_file) fails.
  GeminiBackend(GeminiOptions options, int resampler_quality);

  std::shared_ptr<providers::AgentStream> open_agent(const providers::ProviderTarget& target,
                                                     const agent::v1::AgentConfig& config,
                                                     providers::Poster post,
                                                     providers::AgentEvents events,
                                                     std::size_t max_queued) override;
};

/// The WebSocket URL for `o`: the endpoint, with `?key=KEY` when key_in_query.
std::string session_url(const GeminiOptions& o);

}  // namespace voxbridge::realtime_gemini
