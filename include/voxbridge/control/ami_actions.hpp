// The AMI actions voxbridge sends, with the fields Asterisk's manager documents for each. Pure
// builders (no I/O): AmiClient::send(a.name, a.fields, ...) sends one; encode_action() still
// refuses any value holding a line break.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "voxbridge/control/ami_codec.hpp"

namespace voxbridge::control::ami_actions {

struct Action {
  std::string name;
  AmiFields fields;
};

/// Moves a channel (e.g. one inside AudioSocket()) to context,exten,priority.
Action redirect(const std::string& channel, const std::string& context, const std::string& exten,
                int priority = 1);
/// A blind transfer through the channel's technology (SIP REFER where it applies).
Action blind_transfer(const std::string& channel, const std::string& context,
                      const std::string& exten);
/// Hangs up a channel with a Q.850 cause (16 = normal clearing).
Action hangup(const std::string& channel, int cause = 16);
/// One DTMF digit; toward the caller unless `receive` (then as if the caller pressed it).
Action play_dtmf(const std::string& channel, char digit, int duration_ms = 0, bool receive = false);
Action setvar(const std::string& channel, const std::string& name, const std::string& value);
Action getvar(const std::string& channel, const std::string& name);
/// Async originate of `channel` into context,exten,1; OriginateResponse (same ActionID) tells
/// the outcome. `timeout_ms` is the ringing time.
Action originate(const std::string& channel, const std::string& context, const std::string& exten,
                 long timeout_ms, const std::string& caller_id,
                 const std::vector<std::pair<std::string, std::string>>& variables);

}  // namespace voxbridge::control::ami_actions
