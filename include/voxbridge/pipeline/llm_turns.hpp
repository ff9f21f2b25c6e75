// The pipeline's thinking: one LLM turn at a time (voxbridge.llm.v1 Turn), sent with the
// conversation so far (ConversationHistory, capped) plus the replies the caller interrupted as
// they were heard, and the events since the last turn (DTMF, no input, barge-in, action
// results). A turn that fails before any text is retried once after the backoff.
//
// Tools: every turn offers the call's business tools (offer()). The model's calls of them in a
// turn are collected (tool_calls(), at most kMaxToolCallsPerRound, ids bounded and unique); the
// agent runs them and continue_with() their results: the history gets the assistant's words with
// every call of the round (business tools, and actions that came with a tool_call_id) and one
// TOOL message per call, and a follow-up turn (same number, no user text) asks for the rest of
// the reply. Actions with a tool_call_id are answered in the history too: "pending" until their
// result comes (action_result()). Nothing is recorded of a round that was cancelled (barge-in):
// the history never holds a call without its answer.
//
// One per call, on the call's io thread. Stream events arrive through the call's Poster and are
// dropped once the turn is cancelled or stop() ran.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "voxbridge/common/v1/common.pb.h"
#include "voxbridge/llm/v1/llm.pb.h"
#include "voxbridge/metrics/metrics.hpp"
#include "voxbridge/pipeline/pipeline.hpp"
#include "voxbridge/providers/clients.hpp"

namespace voxbridge::pipeline {

/// Tool calls (business tools and actions with an id) kept of one turn; the model's others are
/// dropped with a warning.
inline constexpr std::size_t kMaxToolCallsPerRound = 8;
/// Longest tool call id, name and arguments taken from the model.
inline constexpr std::size_t kMaxToolCallIdBytes = 128;
inline constexpr std::size_t kMaxToolNameBytes = 64;
inline constexpr std::size_t kMaxToolArgumentsBytes = 8 * 1024;

class LlmTurns {
 public:
  struct Events {
    /// Text of the reply as the model writes it (never empty).
    std::function<void(std::string_view delta)> text;
    std::function<void(const common::v1::Action&)> action;
    /// The turn ended well.
    std::function<void()> done;
    /// The turn failed after its retry (or after text had come, when no retry is possible).
    std::function<void(std::string why)> failed;
  };

  /// `spec` and `call` (the facts sent with each turn) must outlive this.
  LlmTurns(const PipelineSpec& spec, std::shared_ptr<providers::ProviderClients> clients,
           const common::v1::CallInfo& call);
  ~LlmTurns();

  void start(providers::Poster post, std::string uuid, Events events,
             metrics::ProviderCounters* counters);

  /// Something the model hears with the next turn.
  void add_event(llm::v1::Event e);
  bool has_events() const { return !events_.empty(); }
  /// Starts turn number `turn` on the caller's words (empty: only the events), cancelling any
  /// turn in progress. The words join the history.
  void ask(unsigned turn, const std::string& user_text);
  /// The agent's words as spoken in full (a reply, the greeting) join the history, with the
  /// actions the model called with a tool_call_id in this turn (each answered "pending" until
  /// action_result()). Empty words and no such action: nothing.
  void said(const std::string& text);
  /// The business tools offered with every turn from now on (CallTools::definitions()).
  void offer(std::vector<common::v1::ToolDefinition> tools);
  /// The business tool calls of the turn that just ended, in the order the model made them.
  const std::vector<common::v1::ToolCall>& tool_calls() const { return business_; }
  /// The round's tool calls are answered (`results`, by ToolCall id; a call with none gets an
  /// error answer): `text` (what the model said before its calls) and the calls join the
  /// history with their answers, and a follow-up of turn `turn` starts (no user text; the
  /// events wait for the next caller turn).
  void continue_with(unsigned turn, const std::string& text,
                     const std::vector<common::v1::ToolResult>& results);
  /// The result of the action the model called as `id` (`text`: "ok" or the error) answers that
  /// call in the history; false if no call of this turn or the history has that id.
  bool action_result(const std::string& id, const std::string& text);
  /// The caller interrupted the reply `text` after hearing `heard` of it: the history keeps
  /// what was heard, marked interrupted.
  void interrupted(const std::string& text, const std::string& heard);
  /// Every 20 ms: a pending retry goes when its backoff has passed.
  void tick();
  /// Abandons the turn in progress (its events are ignored) and any pending retry.
  void cancel();
  /// The call is over: cancels, and no event is delivered any more.
  /// Model requests made (each tool round is one).
  std::uint64_t turns_opened() const { return turns_opened_; }
  void stop();

  const ConversationHistory& history() const { return history_; }

 private:
  std::uint64_t turns_opened_ = 0;
  static constexpr std::uint64_t kNever = ~0ull;
  void open();
  void on_closed(const providers::StreamStatus& st);
  void build(unsigned turn, const std::string& user_text);
  /// The model's call `c` (untrusted): bounded, its id unique in the call; false: dropped.
  bool take_call(common::v1::ToolCall& c);

  const PipelineSpec& spec_;
  std::shared_ptr<providers::ProviderClients> clients_;
  const common::v1::CallInfo& call_;
  providers::Poster post_;
  std::string uuid_;
  Events ev_;
  metrics::ProviderCounters* counters_ = nullptr;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);

  ConversationHistory history_;
  std::vector<llm::v1::Message> interrupted_;  // the last kMaxInterruptedMessages
  std::vector<llm::v1::Event> events_;         // for the next turn
  llm::v1::TurnRequest request_;               // of the turn in progress (kept for its retry)
  std::shared_ptr<providers::LlmTurn> turn_;
  std::uint64_t gen_ = 0;  // of the turn: events of cancelled turns are ignored
  bool got_text_ = false;  // the turn in progress has written text (no retry then)
  int retries_ = 0;        // of the turn in progress
  std::uint64_t tick_ = 0;
  std::uint64_t retry_at_ = kNever;

  std::vector<common::v1::ToolDefinition> tools_;  // offered with every turn
  /// The calls of the round in progress, in order (business tools and actions with an id),
  /// and the business ones alone.
  std::vector<common::v1::ToolCall> round_;
  std::vector<common::v1::ToolCall> business_;
  /// Results of the round's actions that came before the round joined the history (id, text).
  std::vector<std::pair<std::string, std::string>> early_;
  std::vector<std::string> ids_;  // every call id seen in the call (the newest kMaxIds)
  std::uint64_t made_ids_ = 0;
};

}  // namespace voxbridge::pipeline
