// The server's side of every call (session::CallObserver): the listener's agent, what the
// control path knows of a call, routing, recording, webhooks (call_started, action,
// call_ended), the business tools its agent offers, and the transcript events kept for GET
// /v1/calls/UUID/events, live and for a minute after the call ended (EndedCalls).
//
// Threads: a ListenerObserver serves a listener's calls on every io thread at once (it is
// immutable once built; what it reaches is thread-safe). A call's ServerCall (what start()
// returns in CallPlan::call) is used on that call's io thread only. Ownership: the server owns
// the recorder, webhook sender, controller and EndedCalls it points to, and keeps them until
// every call has ended; the routing, registrations and action state are shared.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "voxbridge/guard/guard.hpp"
#include "voxbridge/http_api/http_api.hpp"
#include "voxbridge/recording/recorder.hpp"
#include "voxbridge/server/routing.hpp"
#include "voxbridge/session/call_observer.hpp"
#include "voxbridge/webhooks/webhooks.hpp"

namespace voxbridge::control {
class Controller;
}

namespace voxbridge::tools {
class ToolRunner;
}

namespace voxbridge::server {

/// The transcripts of calls that ended in the last minute (at most 256), for
/// GET /v1/calls/UUID/events after the call is gone. Any thread (once per call, not per frame).
class EndedCalls {
 public:
  static constexpr std::size_t kMax = 256;
  static constexpr std::chrono::seconds kKeep{60};
  /// A call ended with these events (on its io thread).
  void add(const std::string& uuid, std::vector<std::string> events);
  /// The events of the latest ended call with that UUID from index `from` on, appended to
  /// `out`; the index after the last, or nullopt if no such call ended lately.
  std::optional<std::size_t> events_from(const std::string& uuid, std::size_t from,
                                         std::vector<std::string>& out);

 private:
  struct Ended {
    std::string uuid;
    std::chrono::steady_clock::time_point at;
    std::vector<std::string> events;
  };
  std::mutex mu_;
  std::deque<Ended> ended_;  // guarded by mu_, oldest first
};

/// What governs agent actions on every call: the allowlists and caps in force (a reload
/// replaces them for calls in progress too), and, without a control path, the transfers noted
/// for the dialplan and those refused.
struct ActionState {
  std::shared_ptr<guard::SharedPolicy> policy;
  /// Transfers refused on calls without a control path (the controller counts its own).
  std::shared_ptr<std::atomic<std::uint64_t>> denied_without_control =
      std::make_shared<std::atomic<std::uint64_t>>(0);
  std::shared_ptr<http_api::TransferBook> transfers = std::make_shared<http_api::TransferBook>();
};

/// What one listener's observer needs (built per listener on every load and reload).
struct ListenerObserverOptions {
  std::string agent_name;  ///< the listener's agent
  MakeAgent make_agent;
  /// Routing: null = none (no routes, no registrations required, no HTTP API).
  std::shared_ptr<const Routing> routing;
  std::shared_ptr<http_api::Registrations> registrations;
  bool require_registration = false;
  /// The control path, or null: then a transfer is checked against `actions` and, with
  /// `note_transfers`, noted for the dialplan to fetch over the HTTP API (VB_TRANSFER).
  control::Controller* control = nullptr;
  ActionState actions;
  bool note_transfers = false;
  std::string transfer_context;
  /// Recordings: null = off; `record` is the listener's choice (a route may change it).
  recording::Recorder* recorder = nullptr;
  bool record = false;
  bool record_audio = true;
  bool record_transcript = true;
  webhooks::WebhookSender* webhooks = nullptr;  ///< null = off
  /// Non-null: each call's events are kept (the HTTP API is on) and go here when it ends.
  EndedCalls* ended = nullptr;
  /// Business tools ([tool-NAME]): a call whose agent offers some gets its handle
  /// (CallInfo::tools); null = none configured.
  tools::ToolRunner* tools = nullptr;
};

/// The server's session::CallObserver for one listener (see the opening comment).
class ListenerObserver : public session::CallObserver {
 public:
  explicit ListenerObserver(ListenerObserverOptions options) : o_(std::move(options)) {}
  std::unique_ptr<agent::Agent> make_agent() override;
  session::CallPlan start(agent::CallInfo& info) override;

 private:
  /// Without a control path: how the call's agent asks for a transfer.
  void note_transfers(agent::CallInfo& info) const;
  ListenerObserverOptions o_;
};

}  // namespace voxbridge::server
