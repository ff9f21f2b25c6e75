// An OpenAI-compatible LLM behind the project's LLM contract: Chat Completions with streaming
// (server-sent events) over HTTP or HTTPS, which OpenAI, Ollama, vLLM and the llama.cpp server
// all speak. Text deltas are passed on as they arrive (so TTS starts on the first sentence);
// tool calls become voxbridge actions (transfer, hang_up, send_dtmf; Action.tool_call_id = the
// call's id) or, for the turn's business tools (TurnRequest.tools, offered after the actions),
// TurnResponse.tool_call. History: an ASSISTANT message with tool_calls goes out with its
// `tool_calls`, a TOOL message as {"role":"tool","tool_call_id","content"}; an action result
// whose call is answered in the history is not repeated as a note in the user message.
//
// A turn runs on the gRPC thread that serves it (never an io thread) with its own small
// io_context: connect, send, then read the event stream with a stall timeout; the turn ends
// early when the client cancels it (barge-in). HTTP errors, timeouts and malformed streams end
// the turn with a gRPC error that the pipeline retries once, then answers with its fallback.
//
// Limits: the server is not trusted to be small. A response that breaks one of the limits below
// ends the turn with RESOURCE_EXHAUSTED and a message naming the limit; memory held for one turn
// stays under about kMaxResponseBytes + kMaxSseLineBytes + kMaxToolCalls * (name + arguments).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include "voxbridge/llm/v1/llm.pb.h"
#include "voxbridge/llm_openai/options.hpp"

namespace voxbridge::llm_openai {

/// Longest line of the event stream (one `data:` delta is a few hundred bytes).
inline constexpr std::size_t kMaxSseLineBytes = 64 * 1024;
/// Longest response body, streamed or not (a spoken reply is a few kilobytes).
inline constexpr std::size_t kMaxResponseBytes = 1024 * 1024;
/// Tool calls in one turn; the server's `index` must be 0 .. kMaxToolCalls - 1.
inline constexpr std::size_t kMaxToolCalls = 8;
/// Longest tool name (ours are "transfer", "hang_up", "send_dtmf").
inline constexpr std::size_t kMaxToolNameBytes = 64;
/// Longest tool call id (OpenAI's are ~30 characters).
inline constexpr std::size_t kMaxToolCallIdBytes = 128;
/// Longest JSON arguments of one tool call.
inline constexpr std::size_t kMaxToolArgumentsBytes = 8 * 1024;

/// The JSON body of the Chat Completions request for one turn (model, temperature, stream,
/// messages: system prompt, history, the new user text with its events; the tools).
std::string request_body(const OpenAiOptions& o, const llm::v1::TurnRequest& turn);

struct TurnSink {
  std::function<void(const std::string& text)> text;
  std::function<void(const common::v1::Action& action)> action;
  /// A call of one of the turn's business tools (after the stream ended, like actions).
  std::function<void(const common::v1::ToolCall& call)> tool_call;
  std::function<bool()> cancelled;  ///< polled; true ends the turn with CANCELLED
};

struct TurnError {
  int code = 0;  ///< a grpc::StatusCode; 0 = OK
  std::string message;
};

/// Runs one turn against the server; blocks until the stream ends, fails or is cancelled.
TurnError run_turn(const OpenAiOptions& o, const llm::v1::TurnRequest& turn, const TurnSink& sink);

}  // namespace voxbridge::llm_openai
