// The control path to Asterisk: what voxbridge knows of each call's channel, and what the agent
// may do to it (transfer, DTMF, variables) and to the PBX (outbound calls).
//
// Modes (the [control] section):
//  - ami: calls reach voxbridge through the dialplan AudioSocket() application or the
//    AudioSocket channel driver. An AMI connection watches VarSet events for the variable that
//    holds the call's UUID (VB_UUID, set right before AudioSocket(); AUDIOSOCKET_UUID from the
//    channel driver), which ties each AudioSocket connection to its channel. Actions become AMI
//    Redirect, PlayDTMF, Setvar; outbound calls AMI Originate.
//  - ari: calls enter Stasis(voxbridge); voxbridge answers them, creates the AudioSocket leg
//    itself (externalMedia) and bridges the two (see src/control/ari_path.cpp).
//
// Every action and outbound call passes guard:: first (the one character rule, then the
// allowlists, the variables an agent may set and the per-call caps); a refused or failed action
// is logged, counted and reported back to the agent ("denied: ..."), and the call goes on.
// The policy can be replaced while calls run (set_policy, on reload): the next check uses it.
//
// Threads: one control thread runs the clients; describe() and the CallActions may be called
// from any thread (io threads); their results come back on the control thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/control/ami_client.hpp"
#include "voxbridge/control/ari_client.hpp"
#include "voxbridge/control/options.hpp"
#include "voxbridge/guard/guard.hpp"

namespace voxbridge::control {

/// What became of an outbound call.
struct OriginateResult {
  enum class Outcome { answered, busy, no_answer, failed, denied, limit };
  Outcome outcome = Outcome::failed;
  std::string detail;   ///< Asterisk's reason, or why it was not placed
  std::string channel;  ///< the outbound channel, when known
};
const char* outcome_name(OriginateResult::Outcome o);

struct OriginateRequest {
  std::string to;     ///< number or extension (checked against the allowlist)
  std::string agent;  ///< set as VB_AGENT on the call (the dialplan/route picks it up)
  std::string caller_id;
  /// The call whose agent asked for this one (set as VB_REQUESTED_BY); empty from the API/CLI.
  std::string requested_by;
  /// Set on the outbound channel as variables, and so become the call's metadata.
  std::map<std::string, std::string> variables;
};

struct ControlCounters {
  std::atomic<std::uint64_t> actions_ok{0};
  std::atomic<std::uint64_t> actions_denied{0};
  std::atomic<std::uint64_t> actions_failed{0};
  std::atomic<std::uint64_t> originates{0};
  std::atomic<std::uint64_t> reconnects{0};
};

class Controller {
 public:
  explicit Controller(ControlConfig cfg);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  /// Starts the control thread and connects (never fails: it keeps retrying and logs).
  void start();
  void stop();

  /// Fills in the channel facts and the call's actions (any thread). In AMI mode the facts
  /// come with Asterisk's VarSet event, normally before the AudioSocket connection; should
  /// the connection win that race, CallActions::describe() has them a moment later.
  void describe(agent::CallInfo& info) const;
  /// True once the channel that carries `uuid` is known (tests, diagnostics).
  bool knows(const std::string& uuid) const;

  /// Places an outbound call into the agent (any thread); `done` runs on the control thread
  /// once it is answered or has failed.
  void originate(OriginateRequest req, std::function<void(OriginateResult)> done);

  /// Replaces the allowlists, settable variables and caps; the next check of every call (those
  /// in progress included) uses them. Any thread.
  void set_policy(guard::Policy policy);
  /// The policy in force (any thread).
  std::shared_ptr<const guard::Policy> policy() const;

  /// True while the AMI or ARI link is up.
  bool connected() const;
  const ControlCounters& counters() const { return counters_; }
  const ControlConfig& config() const { return cfg_; }

  struct State;

 private:
  ControlConfig cfg_;
  ControlCounters counters_;
  std::shared_ptr<State> state_;
};

}  // namespace voxbridge::control
