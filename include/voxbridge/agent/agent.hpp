// The agent interface: what talks to the caller.
//
// A session hands its agent the caller's audio (already decoded and at the call's internal
// rate), DTMF digits and the end of the call; the agent answers through CallControl by queueing
// audio for the paced playout, flushing it, or hanging up. Built-in agents live here; the gRPC
// conversation pipeline implements the same interface. All calls happen on the call's io thread;
// an agent that works elsewhere must post back to it. on_audio() and on_tick() run once per
// frame and must not allocate, block or log at info level.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "voxbridge/agent/spec.hpp"
#include "voxbridge/events/call_event.hpp"
#include "voxbridge/metrics/metrics.hpp"

namespace voxbridge::agent {

/// What an agent may do to its call.
class CallControl {
 public:
  virtual ~CallControl() = default;
  /// Queues audio at internal_rate_hz() for playout; returns the samples accepted (the rest did
  /// not fit: respect playout_full()).
  virtual std::size_t play(std::span<const std::int16_t> samples) = 0;
  /// Drops all queued audio; the caller hears silence from the next 20 ms tick.
  virtual void flush() = 0;
  /// Ends the call from the server side: queued audio is played first when `after_playout`,
  /// then Asterisk gets a hangup message (0x00).
  virtual void hangup(std::string_view reason, bool after_playout = true) = 0;
  virtual int internal_rate_hz() const = 0;
  /// Samples waiting in the playout queue.
  virtual std::size_t queued_samples() const = 0;
  /// True above the high watermark: stop producing until it drops (backpressure).
  virtual bool playout_full() const = 0;
  /// Sample rate of the caller's leg as far as known (its first audio tells), 0 if unknown.
  virtual int caller_rate_hz() const { return 0; }
  /// The codec of the caller's leg as far as known (its first audio tells): "slin", "ulaw" or
  /// "alaw"; empty if unknown.
  virtual std::string_view caller_codec() const { return {}; }
  /// How an agent whose work completes elsewhere (gRPC threads) gets back to its call: the
  /// returned function runs its argument later on the call's io thread. It stays valid after
  /// the call (and this control) are gone: functions posted late run (guard them with a weak
  /// reference) or, once the server has stopped, are dropped. The default runs them at once
  /// (controls without an event loop, in tests).
  using Poster = std::function<void(std::function<void()>)>;
  virtual Poster poster() const {
    return [](std::function<void()> fn) { fn(); };
  }
};

/// Something the agent asks Asterisk to do to its call (through ARI or AMI).
struct ActionRequest {
  /// start_moh / stop_moh: music on hold on the caller's channel, voxbridge's own filler while a
  /// business tool runs (ARI mode only; never an agent's action, not counted against its caps).
  enum class Kind { transfer, send_dtmf, set_variable, originate, start_moh, stop_moh };
  Kind kind = Kind::transfer;
  std::string target;   ///< transfer: extension or number; originate: number to call
  std::string context;  ///< transfer: dialplan context (empty = the configured default)
  std::string digits;   ///< send_dtmf: 0-9 * # A-D, w = 500 ms pause
  int digit_ms = 0;     ///< send_dtmf: per digit, 0 = Asterisk's default
  std::string name;     ///< set_variable; originate: the agent for the new call; start_moh: the
                        ///< music-on-hold class (empty = the channel's default)
  std::string value;    ///< set_variable
  std::map<std::string, std::string> variables;  ///< originate: for the new call
};

struct CallInfo;
class CallTools;

/// The Asterisk side of one call, when voxbridge has a control path (ARI or AMI) to it.
class CallActions {
 public:
  virtual ~CallActions() = default;
  /// Runs `request` against the call's channel; `done` gets "" on success or why it was
  /// refused (allowlist) or failed. `done` runs on the control thread: post back to the call.
  virtual void run(const ActionRequest& request, std::function<void(std::string error)> done) = 0;
  /// Fills in the channel facts (channel, caller, DID, variables) if the control path knows
  /// them by now; false if not yet. Any thread; a lookup, no I/O.
  virtual bool describe(CallInfo& info) const = 0;
};

/// Facts about the call, known when it starts.
struct CallInfo {
  std::string uuid;      ///< canonical text form
  std::string peer;      ///< "ip:port" of Asterisk
  std::string listener;  ///< listener section name
  // What the control path (ARI/AMI) knew of the call's channel when it started; empty without.
  std::string channel;        ///< Asterisk channel name, e.g. "PJSIP/trunk-00000012"
  std::string caller_number;  ///< caller ID number
  std::string caller_name;
  std::string called_number;  ///< DID (FROM_DID, or the extension the call came in on)
  /// Channel variables voxbridge watches (VB_*), e.g. VB_LANGUAGE.
  std::map<std::string, std::string> variables;
  /// Null without a control path.
  std::shared_ptr<CallActions> actions;
  /// Without a control path: decides a transfer the agent asked for (target, context; the
  /// same guard:: rule and allowlists as with one) and, if allowed, notes it so that the
  /// dialplan after AudioSocket() can fetch it (HTTP API GET /v1/calls/UUID/transfer, with
  /// CURL()) once the socket is hung up. Returns "" if allowed, else why not. Empty = every
  /// such transfer is refused.
  std::function<std::string(const std::string& target, const std::string& context)> note_transfer;
  /// The call's io thread's agent metrics (turn phases, providers); null = not counted.
  metrics::AgentCounters* metrics = nullptr;
  /// The business tools this call's agent may offer its model (see tools.hpp); null = none.
  std::shared_ptr<CallTools> tools;
  /// The call's transcript (JSONL recording, webhooks, events API): one typed event (build it
  /// with the events:: functions); the session adds the time and serializes it. On the call's
  /// thread; empty when nobody keeps a transcript.
  std::function<void(events::Event)> transcript;
};

class Agent {
 public:
  virtual ~Agent() = default;
  /// The UUID arrived; `control` stays valid until on_end() returns.
  virtual void on_start(CallControl& control, const CallInfo& info) = 0;
  /// The caller's audio as the leg carries it (decoded, at the leg's rate), just before
  /// on_audio() hands the same piece at the internal rate; valid until that on_audio() returns.
  /// For agents that want the leg's own rate (a recognizer at 8 kHz on an 8 kHz leg) without
  /// resampling there and back.
  virtual void on_leg_audio(std::span<const std::int16_t> samples, int rate_hz) {
    (void)samples;
    (void)rate_hz;
  }
  /// Caller audio at the internal rate, in frame-sized pieces.
  virtual void on_audio(std::span<const std::int16_t> samples) = 0;
  /// One DTMF digit (0-9 * # A-D), at digit end.
  virtual void on_dtmf(char digit) = 0;
  /// Called after every playout tick (20 ms), so an agent can keep the queue fed.
  virtual void on_tick() {}
  /// The call is over (either side); no more calls follow.
  virtual void on_end(std::string_view reason) = 0;
  /// What the agent is doing, for `/status` ("listening", "thinking", "speaking"...); empty
  /// lets the session say it from the playout queue. On the call's thread.
  virtual std::string_view state() const { return {}; }
};

/// Reads a WAV prompt (16-bit PCM or G.711, any rate) and resamples it to `rate_hz`, once, at
/// startup. Throws std::runtime_error naming the file and the problem.
std::vector<std::int16_t> load_prompt(const std::string& file, int rate_hz, int quality);

/// Builds an agent for one call. `internal_rate_hz` is the rate the agent will see; prompts are
/// resampled to it here, once per call, never per frame.
class AgentFactory {
 public:
  /// Loads and validates the spec (WAV files are read once here); throws std::runtime_error
  /// with a clear reason on failure.
  AgentFactory(AgentSpec spec, int internal_rate_hz, int resampler_quality);
  std::unique_ptr<Agent> create() const;
  const AgentSpec& spec() const { return spec_; }

 private:
  AgentSpec spec_;
  int rate_hz_;
  std::shared_ptr<const std::vector<std::int16_t>> prompt_;  // at rate_hz_, shared by all calls
};

}  // namespace voxbridge::agent
