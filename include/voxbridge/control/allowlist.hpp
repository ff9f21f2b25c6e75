// What the agent may reach: every transfer and outbound call is checked here before it goes to
// Asterisk. An LLM can be talked into dialling premium or international numbers, so nothing is
// allowed unless the configuration says so.
//
// Patterns are Asterisk's dialplan patterns, which the people who configure voxbridge already
// write every day: "2001" matches only 2001; "_X" any digit, "_Z" 1-9, "_N" 2-9, "[15-7]" one of
// 1,5,6,7, "." one or more of anything, "!" zero or more; e.g. "_1XX", "_+1NXXNXXXXXX",
// "_0[1-9]XXXXXXXX". A leading "_" marks a pattern; without it the text is literal.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace voxbridge::control {

/// True if `exten` matches the Asterisk dialplan pattern (or literal) `pattern`.
bool match_dial_pattern(std::string_view pattern, std::string_view exten);

/// Checks a pattern's syntax (brackets closed, not empty); returns the problem or "".
std::string check_dial_pattern(std::string_view pattern);

struct Allowlist {
  /// Dialplan contexts a transfer may go to.
  std::vector<std::string> contexts;
  /// Extensions (patterns) a transfer may go to, in one of `contexts`.
  std::vector<std::string> extensions;
  /// Numbers (patterns) the agent may transfer to or call out to.
  std::vector<std::string> numbers;

  /// "" if a transfer to `target` in `context` is allowed, else the reason it is not.
  std::string check_transfer(std::string_view target, std::string_view context) const;
  /// "" if an outbound call to `number` is allowed, else the reason it is not.
  std::string check_originate(std::string_view number) const;
};

}  // namespace voxbridge::control
