// The pipeline's thinking: one LLM turn at a time (voxbridge.llm.v1 Turn), sent with the
// conversation so far (ConversationHistory, capped) plus the replies the caller interrupted as
// they were heard, and the events since the last turn (DTMF, no input, barge-in, action
// results). A turn that fails before any text is retried once after the backoff.
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
  /// The agent's words as spoken in full (a reply, the greeting) join the history.
  void said(const std::string& text);
  /// The caller interrupted the reply `text` after hearing `heard` of it: the history keeps
  /// what was heard, marked interrupted.
  void interrupted(const std::string& text, const std::string& heard);
  /// Every 20 ms: a pending retry goes when its backoff has passed.
  void tick();
  /// Abandons the turn in progress (its events are ignored) and any pending retry.
  void cancel();
  /// The call is over: cancels, and no event is delivered any more.
  void stop();

  const ConversationHistory& history() const { return history_; }

 private:
  static constexpr std::uint64_t kNever = ~0ull;
  void open();
  void on_closed(const providers::StreamStatus& st);

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
};

}  // namespace voxbridge::pipeline
