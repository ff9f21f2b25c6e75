// The action runner: carries out what an agent (the pipeline's LLM, a speech-to-speech agent)
// asks Asterisk to do to its call, and says how it went.
//
// It maps a `common::v1::Action` (transfer, send_dtmf, set_variable, originate) onto the call's
// Asterisk control path (`CallInfo::actions`, ARI or AMI). Without one it decides itself: a
// transfer passes `CallInfo::note_transfer` (the same rule and allowlists; allowed = noted for the
// dialplan after AudioSocket(), and its owner hangs up), the rest are answered "not configured".
// Each result is reported once, on the call's thread: to the owner (`OnResult`, with what to do
// next) and to the call's transcript (an `action` event, see action_event.hpp). It counts transfers
// that were refused or failed and, at the third, tells its owner to give up (a model must not loop
// on transfers it cannot have).
//
// What stays with the owner: WHEN to run an action (a transfer after the words before it have
// played), hangup (the owner's own way to end its call), and how to carry out `Next` (hang up,
// play the fallback, tell its model).
//
// Threads: one runner per call, used only on the call's io thread. The control path's `done`
// runs on the control thread; the runner posts it back with the call's Poster and drops it if
// the runner was stopped or destroyed meanwhile. Decisions without a control path are reported
// synchronously, inside run(). Owns nothing but its callbacks; `info` belongs to the owner and
// must outlive the runner.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/common/v1/common.pb.h"

namespace voxbridge::pipeline {

class ActionRunner {
 public:
  /// What the owner does after a result.
  enum class Next {
    go_on,        ///< the call goes on (any result but the three below)
    transferred,  ///< Asterisk moves the caller; the AudioSocket closes: say and do no more
    hang_up,      ///< transfer noted for the dialplan: hang up after the queued audio
    give_up,      ///< kMaxRefusedTransfers refused or failed transfers: fallback, end the call
  };
  struct Result {
    const common::v1::Action& action;
    const std::string& error;  ///< "" = done (or on its way), else why not
    Next next;
  };
  using OnResult = std::function<void(const Result&)>;
  struct Options {
    /// Without a control path, a transfer is decided by note_transfer (and the call hangs up);
    /// false: it is answered "not configured" like the other actions.
    bool transfer_without_control = true;
  };

  /// Transfers refused or failed on one call before the runner says give_up.
  static constexpr std::size_t kMaxRefusedTransfers = 3;

  ActionRunner(const agent::CallInfo& info, agent::CallControl::Poster post, Options options,
               OnResult on_result);
  ~ActionRunner();
  ActionRunner(const ActionRunner&) = delete;
  ActionRunner& operator=(const ActionRunner&) = delete;

  /// Carries out `action` (not hangup: that is the owner's). The result comes later, through
  /// the control path, or at once without one.
  void run(const common::v1::Action& action);
  /// The call is over: results still on their way are dropped.
  void stop();
  /// An action in the call's transcript (CallInfo::transcript, an `action` event): `error` ""
  /// = done (or on its way); `how` says how, if not plain. run() records each result itself;
  /// owners record what they carry out on their own (hangup).
  void record(const common::v1::Action& action, const std::string& error,
              const std::string& how = {}) const;

  std::size_t refused_transfers() const { return refused_transfers_; }

  /// "transfer to 100", "send DTMF 12#"...: for logs (untrusted text: pass it through log_text).
  static std::string describe(const common::v1::Action& action);

 private:
  /// `by_control`: the result came from the control path (else the runner decided).
  void finish(const common::v1::Action& action, const std::string& error, const std::string& how,
              bool by_control);

  const agent::CallInfo& info_;
  agent::CallControl::Poster post_;
  Options options_;
  OnResult on_result_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::size_t refused_transfers_ = 0;
};

}  // namespace voxbridge::pipeline
