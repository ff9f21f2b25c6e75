// What the rest of the server learns of a call, and decides for it, through one interface: the
// session does the socket and the tick; a CallObserver (the server implements it) makes the
// listener's agent, describes and routes the call when its UUID arrives, and follows its
// transcript events and its end (recording, webhooks, the events journal).
//
// Called per call and per event, never per frame.
//
// Threads and ownership: one CallObserver serves every call of a listener on every io thread
// (SessionConfig holds it by shared_ptr), so make_agent and start may run on several io
// threads at once and must be thread-safe. What start returns belongs to the call: the session
// owns it and uses it on the call's io thread only. The observer must keep what it refers to
// (recorder, webhook sender, journal) alive as long as any call it started.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/events/call_event.hpp"
#include "voxbridge/recording/recorder.hpp"

namespace voxbridge::session {

/// One call as the observer follows it once it has started: made by CallObserver::start,
/// owned by the session, used on the call's io thread only, destroyed with the session.
class ObservedCall {
 public:
  virtual ~ObservedCall() = default;
  /// One transcript or call event (start, user, agent, dtmf, action, ..., end), with `line` its
  /// serialized form (the call's time in it) as the recording keeps it.
  virtual void event(const events::Event& e, const std::string& line) = 0;
  /// The call is over: `end` is its end event (already passed to event()); its recording is
  /// closed. Called once, last.
  virtual void end(const events::Event& end) = 0;
  /// The events kept so far from index `from` on, appended to `out`; returns the index after
  /// the last (GET /v1/calls/UUID/events while the call runs).
  virtual std::size_t events_from(std::size_t from, std::vector<std::string>& out) const = 0;
};

/// What the observer decided for one call at its start.
struct CallPlan {
  /// Non-empty: the call is refused with this reason (hung up at once, counted); the rest is
  /// then unused.
  std::string refuse;
  /// Set: the call gets this agent instead of the listener's.
  std::unique_ptr<agent::Agent> agent;
  std::string agent_name;  ///< with `agent`: its name, for logs and /status
  std::string route;       ///< the matching route's name, for logs ("" = listener default)
  /// What is known of the call (the `start` event).
  events::CallFacts facts;
  /// Set: the call is recorded (audio from the media path, events from the session).
  std::unique_ptr<recording::CallRecording> recording;
  /// Set: the observer follows the call's events and end; null = nobody keeps them.
  std::unique_ptr<ObservedCall> call;
  /// Set: makes the call's business-tools handle (CallInfo::tools) once the session has filled
  /// in the rest of `info` (its transcript); `post` runs functions on the call's io thread. Run
  /// once, on the call's io thread, before the agent starts.
  std::function<std::shared_ptr<agent::CallTools>(const agent::CallInfo& info,
                                                  agent::CallControl::Poster post)>
      tools;
};

/// The server's side of every call of a listener (see the opening comment).
class CallObserver {
 public:
  virtual ~CallObserver() = default;
  /// The listener's agent for a connection just accepted, before its UUID (on its io thread).
  /// Null: the call runs without one.
  virtual std::unique_ptr<agent::Agent> make_agent() = 0;
  /// The UUID arrived (on the call's io thread): adds what the control path knows of the call
  /// to `info` (caller ID, variables, actions), then routes it (may refuse it, pick its agent,
  /// start its recording). `info` is what the agent then gets.
  virtual CallPlan start(agent::CallInfo& info) = 0;
};

}  // namespace voxbridge::session
