#include "voxbridge/guard/guard.hpp"

#include "voxbridge/logtext/log_text.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace voxbridge::guard {

namespace {

bool all_of(std::string_view s, std::string_view allowed) {
  return s.find_first_not_of(allowed) == std::string_view::npos;
}

constexpr std::string_view kDigits = "0123456789";
constexpr std::string_view kWord =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
constexpr std::string_view kWordDash =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// The text quoted for an error message, with control bytes escaped and cut short: whatever
/// was refused may itself be hostile (a log line or a JSON result carries it).
std::string shown(std::string_view s) {
  return "'" + logtext::log_text(s, 40) + "'";
}

std::string too_long(const char* what, std::size_t max) {
  return std::string(what) + " longer than " + std::to_string(max) + " characters";
}

bool has_control_byte(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f;
  });
}

/// Matches one pattern element at p[i] against c; advances i past the element. Returns false
/// on no match.
bool match_one(std::string_view p, std::size_t& i, char c) {
  const char e = p[i];
  const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(e)));
  if (u == 'X') {
    ++i;
    return c >= '0' && c <= '9';
  }
  if (u == 'Z') {
    ++i;
    return c >= '1' && c <= '9';
  }
  if (u == 'N') {
    ++i;
    return c >= '2' && c <= '9';
  }
  if (e == '[') {
    const std::size_t close = p.find(']', i + 1);
    const std::string_view set = p.substr(i + 1, close - i - 1);
    i = close + 1;
    for (std::size_t k = 0; k < set.size(); ++k) {
      if (k + 2 < set.size() && set[k + 1] == '-') {
        if (c >= set[k] && c <= set[k + 2]) return true;
        k += 2;
      } else if (set[k] == c) {
        return true;
      }
    }
    return false;
  }
  ++i;
  return e == c;
}

bool match_from(std::string_view p, std::size_t i, std::string_view s, std::size_t j) {
  while (i < p.size()) {
    if (p[i] == '.' || p[i] == '!') {
      const std::size_t min = p[i] == '.' ? 1 : 0;
      // "." and "!" end a pattern in Asterisk (anything after them is ignored there too).
      return s.size() - j >= min;
    }
    if (j >= s.size()) return false;
    if (!match_one(p, i, s[j])) return false;
    ++j;
  }
  return j == s.size();
}

bool any_match(const std::vector<std::string>& patterns, std::string_view s) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return match_dial_pattern(p, s); });
}

/// `name` is listed in `allowed` by name or by a "PREFIX*" entry.
bool listed(const std::vector<std::string>& allowed, std::string_view name) {
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) {
    if (!a.empty() && a.back() == '*') {
      return name.substr(0, a.size() - 1) == std::string_view(a).substr(0, a.size() - 1);
    }
    return name == a;
  });
}

}  // namespace

std::string check_dial_string(std::string_view s) {
  if (s.empty()) return "empty number";
  const std::string_view rest = s.front() == '+' ? s.substr(1) : s;
  if (rest.empty() || !all_of(rest, "0123456789*#")) {
    return shown(s) + " is not a number (only 0-9 * # and a leading +)";
  }
  if (s.size() > kMaxDialString) return too_long("number", kMaxDialString);
  return {};
}

std::string check_context(std::string_view s) {
  if (s.empty()) return "empty context";
  if (s.size() > kMaxContext) return too_long("context", kMaxContext);
  if (!all_of(s, kWordDash)) return shown(s) + " is not a context name (A-Z a-z 0-9 _ -)";
  return {};
}

std::string check_variable_name(std::string_view s) {
  if (s.empty()) return "empty variable name";
  if (s.size() > kMaxVariableName) return too_long("variable name", kMaxVariableName);
  if (!std::isalpha(static_cast<unsigned char>(s.front())) || !all_of(s, kWord)) {
    return shown(s) + " is not a variable name (a letter, then A-Z a-z 0-9 _)";
  }
  return {};
}

std::string check_variable_value(std::string_view s, bool split_safe) {
  if (s.size() > kMaxVariableValue) return too_long("value", kMaxVariableValue);
  if (has_control_byte(s)) return "value " + shown(s) + " contains a control character";
  if (split_safe && s.find_first_of(",|") != std::string_view::npos) {
    return "value " + shown(s) + " contains ',' or '|' (Asterisk would split it)";
  }
  return {};
}

std::string check_dtmf(std::string_view s) {
  if (s.empty()) return "no DTMF digits";
  if (s.size() > kMaxDtmf) return too_long("DTMF string", kMaxDtmf);
  if (!all_of(s, "0123456789*#ABCDabcdw")) return shown(s) + " is not a DTMF string";
  return {};
}

std::string check_caller_id(std::string_view s) {
  if (s.size() > kMaxCallerId) return too_long("caller ID", kMaxCallerId);
  if (has_control_byte(s)) return "caller ID " + shown(s) + " contains a control character";
  return {};
}

std::string check_agent_name(std::string_view s) {
  if (s.empty()) return "empty agent name";
  if (s.size() > kMaxAgentName) return too_long("agent name", kMaxAgentName);
  if (!all_of(s, kWordDash)) return shown(s) + " is not an agent name (A-Z a-z 0-9 _ -)";
  return {};
}

std::string check_moh_class(std::string_view s) {
  if (s.size() > kMaxMohClass) return too_long("music-on-hold class", kMaxMohClass);
  if (!all_of(s, kWordDash)) return shown(s) + " is not a music-on-hold class (A-Z a-z 0-9 _ -)";
  return {};
}

bool reserved_variable(std::string_view name, std::string_view uuid_variable) {
  static constexpr std::array<std::string_view, 14> kReserved = {
      "VB_UUID",         "VB_TRANSFER",   "VB_AGENT",        "VB_LANGUAGE", "VB_OUTBOUND",
      "VB_REQUESTED_BY", "VB_HOST",       "VB_API",          "VB_REG",      "AUDIOSOCKET_UUID",
      "VOXBRIDGE",       "VOXBRIDGE_API", "VOXBRIDGE_TOKEN", "FROM_DID"};
  if (name == uuid_variable) return true;
  return std::find(kReserved.begin(), kReserved.end(), name) != kReserved.end();
}

std::string check_dial_pattern(std::string_view pattern) {
  if (pattern.empty() || pattern == "_") return "empty pattern";
  if (pattern.front() != '_') return {};
  for (std::size_t i = 1; i < pattern.size(); ++i) {
    if (pattern[i] == '[') {
      const std::size_t close = pattern.find(']', i + 1);
      if (close == std::string_view::npos) return "'[' without ']' in " + std::string(pattern);
      if (close == i + 1) return "empty [] in " + std::string(pattern);
      i = close;
    }
  }
  return {};
}

bool match_dial_pattern(std::string_view pattern, std::string_view exten) {
  if (exten.empty() || !check_dial_pattern(pattern).empty()) return false;
  if (pattern.front() != '_') return pattern == exten;
  return match_from(pattern, 1, exten, 0);
}

std::string Policy::check_transfer(std::string_view target, std::string_view context) const {
  if (target.empty()) return "no transfer target";
  if (auto bad = check_dial_string(target); !bad.empty()) return bad;
  if (auto bad = check_context(context); !bad.empty()) return bad;
  if (std::find(contexts.begin(), contexts.end(), context) == contexts.end()) {
    return "context '" + std::string(context) + "' is not in allow_contexts";
  }
  if (any_match(extensions, target) || any_match(numbers, target)) return {};
  return "'" + std::string(target) + "' matches neither allow_extensions nor allow_numbers";
}

std::string Policy::check_originate(std::string_view number) const {
  if (number.empty()) return "no number to call";
  if (auto bad = check_dial_string(number); !bad.empty()) return bad;
  if (any_match(numbers, number) || any_match(extensions, number)) return {};
  return "'" + std::string(number) + "' matches neither allow_numbers nor allow_extensions";
}

std::string Policy::check_agent_variable(std::string_view name, std::string_view value) const {
  if (auto bad = check_variable_name(name); !bad.empty()) return bad;
  if (reserved_variable(name, uuid_variable)) {
    return "'" + std::string(name) + "' is reserved for voxbridge";
  }
  if (!listed(variables, name)) return "'" + std::string(name) + "' is not in allow_variables";
  return check_variable_value(value, false);
}

std::string Policy::check_originate_variables(const std::map<std::string, std::string>& vars,
                                              bool from_agent) const {
  if (vars.size() > kMaxOriginateVariables) {
    return "more than " + std::to_string(kMaxOriginateVariables) + " variables";
  }
  for (const auto& [k, v] : vars) {
    if (auto bad = check_variable_name(k); !bad.empty()) return bad;
    if (reserved_variable(k, uuid_variable)) return "'" + k + "' is reserved for voxbridge";
    if (from_agent && !listed(variables, k)) return "'" + k + "' is not in allow_variables";
    if (auto bad = check_variable_value(v, true); !bad.empty()) return k + ": " + bad;
  }
  return {};
}

std::string Policy::validate() const {
  for (const auto& c : contexts) {
    if (auto bad = check_context(c); !bad.empty()) return "allow_contexts: " + bad;
  }
  for (const auto* list : {&extensions, &numbers}) {
    for (const auto& p : *list) {
      if (auto bad = check_dial_pattern(p); !bad.empty()) return bad;
    }
  }
  for (const auto& v : variables) {
    const std::string_view name =
        !v.empty() && v.back() == '*' ? std::string_view(v).substr(0, v.size() - 1) : v;
    if (auto bad = check_variable_name(name); !bad.empty()) return "allow_variables: " + bad;
    if (v.back() != '*' && reserved_variable(name, uuid_variable)) {
      return "allow_variables: '" + v + "' is reserved for voxbridge";
    }
  }
  return {};
}

}  // namespace voxbridge::guard
