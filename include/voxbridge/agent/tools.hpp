// Business tools as an agent sees them: one call's handle on the tools its agent may offer its
// model (the [tool-NAME] sections that name the agent). The agent puts definitions() into what
// its model is told (AgentConfig.tools, TurnRequest.tools) and passes each of the model's tool
// calls to run(); the result comes back once, on the call's thread. The implementation
// (src/tools/, vb_tools) does the HTTP(S) request on its own threads, never on an io thread.
//
// Untrusted input: a ToolCall is model output. run() refuses (with an error result, never an
// exception, never a request) a tool not offered on this call, arguments that are not a JSON
// object or break the tool's limits, and calls over the per-call or per-tool caps.
//
// Threads: every member is called on the call's io thread; `done` runs there too (posted back
// with the call's Poster), exactly once per run() unless stop() came first.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "voxbridge/common/v1/common.pb.h"

namespace voxbridge::agent {

class CallTools {
 public:
  virtual ~CallTools() = default;

  /// What the agent plays to the caller while a tool runs (the tool's own settings).
  struct Filler {
    /// After this long without a result the filler starts; 0 = never.
    std::chrono::milliseconds after{0};
    /// A short phrase for the agent to speak (or play, pre-synthesized); empty = none.
    std::string phrase;
    /// `phrase` already spoken (the built-in Flite voice, once per server) at the server's
    /// internal rate, shared by every call; null = not synthesized (speak `phrase` yourself, or
    /// play nothing).
    std::shared_ptr<const std::vector<std::int16_t>> audio;
    /// ARI mode: the music-on-hold class to start on the channel instead of the phrase
    /// ("default"); empty = the phrase.
    std::string moh_class;
  };

  /// The tools this call's agent may offer its model; empty = none (offer nothing).
  virtual const std::vector<common::v1::ToolDefinition>& definitions() const = 0;
  /// Runs the model's `call`. `done` gets exactly one result, on the call's thread: the tool's
  /// answer, or an error result saying why not (refused, failed, timed out).
  virtual void run(const common::v1::ToolCall& call,
                   std::function<void(const common::v1::ToolResult&)> done) = 0;
  /// The filler for the tool named `name` (a default Filler for an unknown name).
  virtual Filler filler(const std::string& name) const = 0;
  /// The call is over: requests still running are cancelled, their results dropped.
  virtual void stop() = 0;
};

}  // namespace voxbridge::agent
