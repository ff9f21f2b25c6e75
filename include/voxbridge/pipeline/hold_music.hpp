// Music on hold as a business tool's filler (ARI mode): started on the caller's channel through
// the control path when a tool is slow, stopped the moment its result is back. The caller hears
// Asterisk's music instead of a phrase; the AudioSocket leg does not (Asterisk plays it to the
// caller's channel only and drops the bridge's audio to it meanwhile).
//
// Thread: the call's. Every member runs there, and so do the callbacks (the control path's
// answers are posted back with the call's poster). Owned by one call's agent; answers that
// come after it is gone are dropped.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "voxbridge/agent/agent.hpp"

namespace voxbridge::pipeline {

class HoldMusic {
 public:
  /// `info` must outlive this (declare it after the CallInfo it refers to).
  HoldMusic(const agent::CallInfo& info, agent::CallControl::Poster post);
  /// Stops the music if it is on: a call that leaves for the dialplan (a transfer) must not
  /// take it along.
  ~HoldMusic();
  HoldMusic(const HoldMusic&) = delete;
  HoldMusic& operator=(const HoldMusic&) = delete;

  /// Whether the call can have it at all (a control path that may play it: ARI). Without one
  /// the owner plays its phrase at once.
  bool available() const { return info_.actions != nullptr; }
  /// Asks for `moh_class` on the caller's channel. `refused` runs later (the call's thread)
  /// with the reason if Asterisk or voxbridge's rules would not play it (AMI mode, a bad class,
  /// the call not in Stasis): the owner plays its phrase instead.
  void start(const std::string& moh_class, std::function<void(const std::string&)> refused);
  /// Stops it if it was asked for (at once, even if its start is not answered yet: ARI
  /// requests go out in order). Nothing if it was not.
  void stop();
  /// Asked for and not stopped (nor refused).
  bool on() const { return on_; }

 private:
  const agent::CallInfo& info_;
  agent::CallControl::Poster post_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  bool on_ = false;
  unsigned generation_ = 0;  // which start() a refusal belongs to
};

}  // namespace voxbridge::pipeline
