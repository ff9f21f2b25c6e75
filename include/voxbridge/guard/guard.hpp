// What may reach Asterisk. Every dial string, transfer target, context, channel variable, caller
// ID and DTMF string that voxbridge hands to Asterisk passes this one rule first, whichever way
// it travels: an agent's action over AMI or ARI, a transfer noted for the dialplan when there is
// no control path (GET /v1/calls/UUID/transfer, VB_TRANSFER), an outbound call from the HTTP API,
// the CLI or an agent. A model, a caller and an API client are all untrusted here.
//
// The rule, in the order it is applied:
//  1. Characters and length, BEFORE any pattern matching, so that an allowlist pattern such as
//     "_1800." (where '.' matches anything) only ever sees digits:
//       dial strings / transfer targets   [0-9*#+] ('+' first only), 1..32 characters
//       contexts                          [A-Za-z0-9_-], 1..79 (AST_MAX_CONTEXT - 1)
//       variable names                    a letter, then [A-Za-z0-9_], 1..64
//       variable values                   at most 256 bytes, no CR, LF, NUL or other control
//                                         byte; on Originate (where Asterisk splits
//                                         `Variable: a=1,b=2`) no ',' or '|' either
//       DTMF                              [0-9*#A-Da-d], 'w' = a 500 ms pause, 1..32
//       caller ID (originate)             at most 80 bytes, no control byte
//       agent names (VB_AGENT)            [A-Za-z0-9_-], 1..64
//  2. Policy: the allowlists (`allow_contexts`, `allow_extensions`, `allow_numbers`, Asterisk
//     patterns; empty = nothing allowed) and the variables an agent may set
//     (`allow_variables`: names, or prefixes written NAME*). The variables voxbridge itself
//     relies on (reserved_variable()) are never settable by an agent or an API client.
// A value that breaks the rule is refused with the reason, never cleaned up and passed on.
//
// Threads: pure functions and immutable values; any thread. A Policy is replaced as a whole
// on reload (SharedPolicy), so a check never sees half of an old and half of a new one.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace voxbridge::guard {

inline constexpr std::size_t kMaxDialString = 32;
inline constexpr std::size_t kMaxContext = 79;
inline constexpr std::size_t kMaxVariableName = 64;
inline constexpr std::size_t kMaxVariableValue = 256;
inline constexpr std::size_t kMaxDtmf = 32;
inline constexpr std::size_t kMaxCallerId = 80;
inline constexpr std::size_t kMaxAgentName = 64;
/// Asterisk's own limit for a music-on-hold class name (MAX_MUSICCLASS, 80 with its NUL).
inline constexpr std::size_t kMaxMohClass = 79;
/// Variables one originate request may carry.
inline constexpr std::size_t kMaxOriginateVariables = 32;

// --- 1. characters and lengths: "" if `s` is acceptable, else why not ----------------------

std::string check_dial_string(std::string_view s);
std::string check_context(std::string_view s);
std::string check_variable_name(std::string_view s);
/// `split_safe`: the value goes where Asterisk splits on ',' and '|' (Originate's Variable:).
std::string check_variable_value(std::string_view s, bool split_safe);
std::string check_dtmf(std::string_view s);
std::string check_caller_id(std::string_view s);
std::string check_agent_name(std::string_view s);
/// A music-on-hold class name; "" (the channel's default class) is acceptable.
std::string check_moh_class(std::string_view s);

/// Names voxbridge and its shipped dialplan rely on (VB_UUID, VB_TRANSFER, VB_AGENT,
/// VB_LANGUAGE, VB_OUTBOUND, VB_REQUESTED_BY, VB_HOST, VB_API, VB_REG, AUDIOSOCKET_UUID,
/// VOXBRIDGE...), or `uuid_variable` when the configuration names another one.
bool reserved_variable(std::string_view name, std::string_view uuid_variable = "VB_UUID");

// --- dial patterns ----------------------------------------------------------------------------
// Asterisk's dialplan patterns, which the people who configure voxbridge already write every
// day: "2001" matches only 2001; "_X" any digit, "_Z" 1-9, "_N" 2-9, "[15-7]" one of 1,5,6,7,
// "." one or more of anything, "!" zero or more; e.g. "_1XX", "_+1NXXNXXXXXX". A leading "_"
// marks a pattern; without it the text is literal. Also used by routes (caller ID, variables).

/// True if `exten` matches the Asterisk dialplan pattern (or literal) `pattern`.
bool match_dial_pattern(std::string_view pattern, std::string_view exten);
/// Checks a pattern's syntax (brackets closed, not empty); returns the problem or "".
std::string check_dial_pattern(std::string_view pattern);

// --- 2. policy --------------------------------------------------------------------------------

struct Policy {
  /// Dialplan contexts a transfer may go to.
  std::vector<std::string> contexts{"voxbridge-transfer"};
  /// Extensions (patterns) a transfer may go to, in one of `contexts`. The default is what the
  /// built-in receptionist and the shipped dialplan's voxbridge-transfer offer.
  std::vector<std::string> extensions{"100", "200"};
  /// Numbers (patterns) the agent may transfer to or call out to.
  std::vector<std::string> numbers;
  /// Variables an agent may set (set_variable, an agent's outbound call): names, or prefixes
  /// written "NAME*" ("CRM_*"). Reserved names are refused even when a prefix covers them.
  std::vector<std::string> variables;
  /// The channel variable that carries the AudioSocket UUID in AMI mode (reserved too).
  std::string uuid_variable = "VB_UUID";
  /// Actions (transfer, DTMF, variables, outbound calls) one call's agent may ask for.
  std::size_t max_actions_per_call = 20;
  /// Outbound calls one call's agent may place.
  std::size_t max_originates_per_call = 2;

  /// "" if a transfer to `target` in `context` is allowed, else the reason it is not.
  std::string check_transfer(std::string_view target, std::string_view context) const;
  /// "" if an outbound call to `number` is allowed, else the reason it is not.
  std::string check_originate(std::string_view number) const;
  /// "" if an agent may set `name` to `value` on its channel.
  std::string check_agent_variable(std::string_view name, std::string_view value) const;
  /// "" if an outbound call may carry these variables (names checked, not reserved; values
  /// split-safe). `from_agent`: also within `variables`.
  std::string check_originate_variables(const std::map<std::string, std::string>& vars,
                                        bool from_agent) const;
  /// Problems of the policy itself (bad patterns, reserved names listed), for the config.
  std::string validate() const;

  bool operator==(const Policy&) const = default;
};

/// The policy in force, replaced whole on reload; any thread. Each check takes a snapshot.
class SharedPolicy {
 public:
  explicit SharedPolicy(Policy p) : p_(std::make_shared<const Policy>(std::move(p))) {}
  std::shared_ptr<const Policy> get() const {
    std::lock_guard lock(mu_);
    return p_;
  }
  void set(Policy p) {
    auto next = std::make_shared<const Policy>(std::move(p));
    std::lock_guard lock(mu_);
    p_ = std::move(next);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Policy> p_;
};

}  // namespace voxbridge::guard
