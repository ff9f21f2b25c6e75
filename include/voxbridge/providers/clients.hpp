// The provider contracts as the conversation layer sees them: one client per contract
// (AsrStream, LlmTurn, TtsStream, AgentStream), opened through a ProviderClients factory.
//
// The messages are the contract's protobuf messages (voxbridge.{asr,llm,tts,agent}.v1); how
// they travel is the factory's business. grpc_clients.hpp speaks them over gRPC to a provider
// process; a backend that speaks a vendor's own protocol in process implements the same
// interfaces. Nothing here includes gRPC.
//
// Rules every implementation keeps (the pipeline relies on them):
// - Threads: open_*() and every method run on the call's io thread. Each event handler runs
//   later through the Poster given at open (on that same thread), never inside a method call,
//   so a handler may call back into the stream.
// - `closed` runs exactly once, last, after every other event of the stream; after cancel()
//   it carries kCancelled. Handlers posted after the call lost interest still run: guard them
//   (capture a weak reference).
// - Bounds: what is sent waits in a queue of at most `max_queued` messages for a slow
//   provider; beyond it a send returns false and the message is dropped and counted (nothing
//   blocks, nothing grows). Audio towards the caller is pulled: pause_reads() stops responses
//   (the provider's writes wait on flow control) until resume_reads().
// - Every stream can be cancelled at any time, and is cancelled when its owner drops it only
//   if the owner calls cancel() (a stream keeps itself alive until it is closed).
// - open_*() throws std::runtime_error when the stream cannot even be set up (a CA file that
//   cannot be read): the caller's fallback.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "voxbridge/agent/v1/agent.pb.h"
#include "voxbridge/asr/v1/asr.pb.h"
#include "voxbridge/llm/v1/llm.pb.h"
#include "voxbridge/providers/target.hpp"
#include "voxbridge/tts/v1/tts.pb.h"

namespace voxbridge::providers {

/// Runs a function later on the thread that owns the stream's consumer (the call's io thread),
/// e.g. `[ex](auto fn) { boost::asio::post(ex, std::move(fn)); }`.
using Poster = std::function<void(std::function<void()>)>;

/// How a stream ended. Codes are the canonical RPC status codes (gRPC's and google.rpc.Code's
/// numbering), which in-process backends use as well: 0 ok, 1 cancelled, 4 deadline exceeded,
/// 14 unavailable, ...
struct StreamStatus {
  static constexpr int kOk = 0;
  static constexpr int kCancelled = 1;
  static constexpr int kUnknown = 2;
  static constexpr int kInvalidArgument = 3;
  static constexpr int kDeadlineExceeded = 4;
  static constexpr int kResourceExhausted = 8;
  static constexpr int kInternal = 13;
  static constexpr int kUnavailable = 14;

  int code = kOk;
  std::string message;  ///< the provider's words: untrusted text, log with logtext

  bool ok() const { return code == kOk; }
  bool cancelled() const { return code == kCancelled; }
};

/// What an HTTP status a provider answered with (an error answer, a refused upgrade) means for a
/// stream: 401 unauthenticated (16), 403 permission denied (7), 400 / 404 / 413 / 415 / 422
/// invalid argument, 429 resource exhausted, 408 / 504 deadline exceeded, anything else
/// unavailable. The pipeline retries once whatever the code, then falls back; the code is what
/// the logs and the metrics say.
inline int status_from_http(int http_status) {
  switch (http_status) {
    case 401:
      return 16;
    case 403:
      return 7;
    case 400:
    case 404:
    case 413:
    case 415:
    case 422:
      return StreamStatus::kInvalidArgument;
    case 429:
      return StreamStatus::kResourceExhausted;
    case 408:
    case 504:
      return StreamStatus::kDeadlineExceeded;
    default:
      return StreamStatus::kUnavailable;
  }
}

// --- streaming recognition (voxbridge.asr.v1.Recognizer/StreamingRecognize) ---

struct AsrResult {
  std::string transcript;
  bool is_final = false;
  float stability = 0;
  float confidence = 0;
  std::uint32_t start_ms = 0;
  std::uint32_t end_ms = 0;
};

/// What an ASR stream reports (on the call's thread).
struct AsrEvents {
  std::function<void(std::uint32_t offset_ms)> speech_started;
  std::function<void(const AsrResult&)> result;
  std::function<void(std::uint32_t offset_ms)> end_of_utterance;
  /// Exactly once, last: how the stream ended (ok after finish(), cancelled after cancel()).
  std::function<void(const StreamStatus&)> closed;
};

/// One utterance's recognition: audio in (the format of the config it was opened with).
class AsrStream {
 public:
  virtual ~AsrStream() = default;
  /// Queues one audio message; false if it was dropped (queue full, or finished).
  virtual bool send_audio(std::span<const std::uint8_t> bytes) = 0;
  /// No more audio: the provider sends its last results and ends the stream.
  virtual void finish() = 0;
  /// Abandons the stream (barge-in, hangup); `closed` still follows, cancelled.
  virtual void cancel() = 0;
  /// Audio messages dropped so far (slow provider).
  virtual std::uint64_t dropped() const = 0;
};

// --- one LLM turn (voxbridge.llm.v1.Dialogue/Turn) ---

struct LlmEvents {
  /// Text deltas, actions and end_of_turn, as they come; the handler may move from it.
  std::function<void(llm::v1::TurnResponse&)> response;
  std::function<void(const StreamStatus&)> closed;
};

class LlmTurn {
 public:
  virtual ~LlmTurn() = default;
  virtual void cancel() = 0;
};

// --- streaming synthesis (voxbridge.tts.v1.Synthesizer/StreamingSynthesize) ---

struct TtsEvents {
  /// Audio (in the config's format) and chunk_done marks; the handler may move from it.
  std::function<void(tts::v1::SynthesizeResponse&)> response;
  std::function<void(const StreamStatus&)> closed;
};

class TtsStream {
 public:
  virtual ~TtsStream() = default;
  /// Queues one piece of text to speak; its chunk_done carries `chunk_id`. False if dropped.
  virtual bool send_text(const std::string& text, std::uint64_t chunk_id) = 0;
  /// No more text: the provider finishes the audio and ends the stream.
  virtual void finish() = 0;
  virtual void cancel() = 0;
  /// Backpressure: no response is delivered between pause_reads() and resume_reads() (one
  /// already under way may still come); none is lost.
  virtual void pause_reads() = 0;
  virtual void resume_reads() = 0;
};

// --- a speech-to-speech agent (voxbridge.agent.v1.Agent/Converse) ---

struct AgentEvents {
  std::function<void(agent::v1::AgentResponse&)> response;
  std::function<void(const StreamStatus&)> closed;
};

class AgentStream {
 public:
  virtual ~AgentStream() = default;
  /// Queues caller audio or an event; false if it was dropped (queue full, or finished).
  virtual bool send(agent::v1::AgentRequest request) = 0;
  virtual void finish() = 0;
  virtual void cancel() = 0;
  /// The call is over but the agent is still owed what was queued (an action's result): it is
  /// sent, the stream half-closes, and it is cancelled if the agent has not ended it within
  /// `grace`. No handler runs for the owner afterwards unless it still wants them.
  virtual void close(std::chrono::milliseconds grace) = 0;
  virtual void pause_reads() = 0;
  virtual void resume_reads() = 0;
  virtual std::uint64_t dropped() const = 0;
};

/// Opens provider streams for calls. Shared by every call of the agents that use it; open_*()
/// may be called from any io thread at once (implementations are thread-safe).
class ProviderClients {
 public:
  virtual ~ProviderClients() = default;
  virtual std::shared_ptr<AsrStream> open_asr(const ProviderTarget& target,
                                              const asr::v1::RecognitionConfig& config, Poster post,
                                              AsrEvents events, std::size_t max_queued) = 0;
  virtual std::shared_ptr<LlmTurn> open_llm(const ProviderTarget& target,
                                            const llm::v1::TurnRequest& request, Poster post,
                                            LlmEvents events) = 0;
  virtual std::shared_ptr<TtsStream> open_tts(const ProviderTarget& target,
                                              const tts::v1::SynthesisConfig& config, Poster post,
                                              TtsEvents events, std::size_t max_queued) = 0;
  virtual std::shared_ptr<AgentStream> open_agent(const ProviderTarget& target,
                                                  const agent::v1::AgentConfig& config, Poster post,
                                                  AgentEvents events, std::size_t max_queued) = 0;
  /// The call is over: a backend that keeps something per call across its streams (a socket
  /// reused by a call's utterances) lets it go. Any io thread; a no-op for the others.
  virtual void call_ended(std::string_view /*call_uuid*/) {}
};

/// An in-process backend serves some of the contracts (speech recognition, a voice, both, or
/// speech-to-speech agents): it derives from this and overrides those. Each contract it does not
/// serve throws std::runtime_error("NAME serves WHAT only, not CONTRACT") from open_*(), which
/// the call takes as it takes any stream that cannot be set up: its fallback.
class PartialClients : public ProviderClients {
 public:
  std::shared_ptr<AsrStream> open_asr(const ProviderTarget&, const asr::v1::RecognitionConfig&,
                                      Poster, AsrEvents, std::size_t) override {
    not_served("speech recognition");
  }
  std::shared_ptr<LlmTurn> open_llm(const ProviderTarget&, const llm::v1::TurnRequest&, Poster,
                                    LlmEvents) override {
    not_served("LLM turns");
  }
  std::shared_ptr<TtsStream> open_tts(const ProviderTarget&, const tts::v1::SynthesisConfig&,
                                      Poster, TtsEvents, std::size_t) override {
    not_served("speech synthesis");
  }
  std::shared_ptr<AgentStream> open_agent(const ProviderTarget&, const agent::v1::AgentConfig&,
                                          Poster, AgentEvents, std::size_t) override {
    not_served("speech-to-speech agents");
  }

 protected:
  /// `name` names the backend in the errors ("deepgram-x"); `serves` says what it serves
  /// ("speech recognition").
  PartialClients(std::string name, std::string serves)
      : name_(std::move(name)), serves_(std::move(serves)) {}

 private:
  [[noreturn]] void not_served(const char* contract) const {
    throw std::runtime_error(name_ + " serves " + serves_ + " only, not " + contract);
  }
  std::string name_, serves_;
};

}  // namespace voxbridge::providers
