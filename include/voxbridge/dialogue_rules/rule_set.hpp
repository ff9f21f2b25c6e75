// A rules dialogue as plain data ([rules-NAME] with its [intent-NAME] sections): config fills
// it, RulesDialogue (rules.hpp) answers with it.
#pragma once

#include <string>
#include <vector>

namespace voxbridge::dialogue_rules {

struct Intent {
  std::string name;
  std::vector<std::string> keywords;  ///< lower case words or phrases
  std::string dtmf;                   ///< digits that choose this intent (empty = none)
  std::string reply;
  enum class Action { none, transfer, hangup, send_dtmf, set_variable } action = Action::none;
  std::string target;   ///< transfer: extension or number; send_dtmf: digits; set: name
  std::string context;  ///< transfer: dialplan context (empty = the default); set: value

  bool operator==(const Intent&) const = default;
};

struct RuleSet {
  std::string name;
  std::vector<Intent> intents;
  std::string fallback = "Sorry, I did not catch that.";
  std::string no_input = "Are you still there?";

  bool operator==(const RuleSet&) const = default;
};

}  // namespace voxbridge::dialogue_rules
