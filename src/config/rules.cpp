// [rules-NAME] and [intent-NAME]: the rules dialogue's options, one table each.
#include <sstream>

#include "parse.hpp"
#include "voxbridge/audiosocket/protocol.hpp"

namespace voxbridge::config::detail {
namespace {

using W = const Where&;
using V = const std::string&;
using dialogue_rules::Intent;
using dialogue_rules::RuleSet;

const Key<RuleSet> kRules[] = {
    {"fallback", [](RuleSet& r, W, V v) { r.fallback = v; }},
    {"no_input", [](RuleSet& r, W, V v) { r.no_input = v; }},
};

/// `action = none | hangup | transfer EXTEN[@CONTEXT] | dtmf DIGITS | set NAME=VALUE`.
void set_action(IntentDraft& d, W w, V v) {
  auto& i = d.intent;
  std::istringstream in(v);
  std::string verb, target;
  in >> verb >> target;
  verb = lower(verb);
  if (verb == "none") {
    i.action = Intent::Action::none;
  } else if (verb == "hangup") {
    i.action = Intent::Action::hangup;
  } else if (verb == "transfer" && !target.empty()) {
    i.action = Intent::Action::transfer;
    const auto at = target.find('@');
    i.target = target.substr(0, at);
    i.context = at == std::string::npos ? std::string() : target.substr(at + 1);
  } else if (verb == "dtmf" && !target.empty() &&
             target.find_first_not_of("0123456789*#ABCDw") == std::string::npos) {
    i.action = Intent::Action::send_dtmf;
    i.target = target;
  } else if (verb == "set" && target.find('=') != std::string::npos && target.front() != '=') {
    i.action = Intent::Action::set_variable;
    const auto eq = target.find('=');
    i.target = target.substr(0, eq);
    i.context = target.substr(eq + 1);
  } else {
    w.fail("'" + v +
           "' is not none, hangup, transfer EXTEN[@CONTEXT], dtmf DIGITS or set NAME=VALUE");
  }
}

const Key<IntentDraft> kIntent[] = {
    {"rules", [](IntentDraft& d, W, V v) { d.rules = v; }},
    {"keywords",
     [](IntentDraft& d, W, V v) {
       for (const auto& k : parse_list(v)) d.intent.keywords.push_back(lower(k));
     }},
    {"dtmf",
     [](IntentDraft& d, W w, V v) {
       for (const char c : v) {
         if (!audiosocket::is_dtmf_digit(c)) w.fail("'" + v + "' is not DTMF digits (0-9 * # A-D)");
       }
       d.intent.dtmf = v;
     }},
    {"reply", [](IntentDraft& d, W, V v) { d.intent.reply = v; }},
    {"action", set_action},
};

}  // namespace

void set_rules(dialogue_rules::RuleSet& r, const Where& w, const std::string& v) {
  if (!set_key(kRules, r, w, v)) w.fail("unknown option (expected fallback or no_input)");
}

void set_intent(IntentDraft& d, const Where& w, const std::string& v) {
  if (!set_key(kIntent, d, w, v)) {
    w.fail("unknown option (expected rules, keywords, dtmf, reply or action)");
  }
}

}  // namespace voxbridge::config::detail
