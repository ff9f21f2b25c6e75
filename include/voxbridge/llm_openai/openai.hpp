// An OpenAI-compatible LLM behind the project's LLM contract: Chat Completions with streaming
// (server-sent events) over HTTP or HTTPS, which OpenAI, Ollama, vLLM and the llama.cpp server
// all speak. Text deltas are passed on as they arrive (so TTS starts on the first sentence);
// tool calls become voxbridge actions (transfer, hang_up, send_dtmf).
//
// A turn runs on the gRPC thread that serves it (never an io thread) with its own small
// io_context: connect, send, then read the event stream with a stall timeout; the turn ends
// early when the client cancels it (barge-in). HTTP errors, timeouts and malformed streams end
// the turn with a gRPC error that the pipeline retries once, then answers with its fallback.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "voxbridge/llm/v1/llm.pb.h"

namespace voxbridge::llm_openai {

struct OpenAiOptions {
  std::string name;                                    ///< the [openai-NAME] section
  std::string base_url = "http://127.0.0.1:11434/v1";  ///< up to /chat/completions
  std::string model = "llama3.2";
  std::string api_key;  ///< sent as "Authorization: Bearer ..." when set
  std::string system_prompt =
      "You are a friendly phone assistant. Answer in one or two short spoken sentences, "
      "without lists or markup.";
  double temperature = 0.7;
  std::string ca_file;  ///< HTTPS: CA bundle (empty = the system's)
  std::chrono::milliseconds connect_timeout{5000};
  /// Longest wait for the response headers and then for each piece of the stream.
  std::chrono::milliseconds stall_timeout{15000};

  bool operator==(const OpenAiOptions&) const = default;
};

/// The JSON body of the Chat Completions request for one turn (model, temperature, stream,
/// messages: system prompt, history, the new user text with its events; the tools).
std::string request_body(const OpenAiOptions& o, const llm::v1::TurnRequest& turn);

struct TurnSink {
  std::function<void(const std::string& text)> text;
  std::function<void(const common::v1::Action& action)> action;
  std::function<bool()> cancelled;  ///< polled; true ends the turn with CANCELLED
};

struct TurnError {
  int code = 0;  ///< a grpc::StatusCode; 0 = OK
  std::string message;
};

/// Runs one turn against the server; blocks until the stream ends, fails or is cancelled.
TurnError run_turn(const OpenAiOptions& o, const llm::v1::TurnRequest& turn, const TurnSink& sink);

}  // namespace voxbridge::llm_openai
