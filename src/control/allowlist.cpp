#include "voxbridge/control/allowlist.hpp"

#include <algorithm>
#include <cctype>

namespace voxbridge::control {

namespace {

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

}  // namespace

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

std::string Allowlist::check_transfer(std::string_view target, std::string_view context) const {
  if (target.empty()) return "no transfer target";
  if (std::find(contexts.begin(), contexts.end(), context) == contexts.end()) {
    return "context '" + std::string(context) + "' is not in allow_contexts";
  }
  if (any_match(extensions, target) || any_match(numbers, target)) return {};
  return "'" + std::string(target) + "' matches neither allow_extensions nor allow_numbers";
}

std::string Allowlist::check_originate(std::string_view number) const {
  if (number.empty()) return "no number to call";
  if (any_match(numbers, number) || any_match(extensions, number)) return {};
  return "'" + std::string(number) + "' matches neither allow_numbers nor allow_extensions";
}

}  // namespace voxbridge::control
