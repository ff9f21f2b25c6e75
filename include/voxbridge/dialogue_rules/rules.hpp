// Built-in dialogue: a rules agent for receptionists and simple menus, configured in
// voxbridge.conf ([rules-NAME] and [intent-NAME] sections), served over the project's LLM
// contract (voxbridge.llm.v1.Dialogue) so the pipeline treats it like any language model.
//
// Each turn: DTMF digits pick the intent whose `dtmf` they equal; otherwise the first intent
// (in file order) with a keyword or phrase found in the caller's words, as whole words. The
// intent's reply is spoken, with slots filled ({caller_id}, {caller_name}, {called}, {time},
// {date}), then its action (transfer, hang up, send DTMF, set a channel variable). A no-input turn
// gets `no_input`; anything else gets `fallback`.
#pragma once

#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "voxbridge/dialogue_rules/rule_set.hpp"
#include "voxbridge/llm/v1/llm.grpc.pb.h"

namespace voxbridge::dialogue_rules {

/// The intent for this turn's words and digits, or null.
const Intent* match(const RuleSet& rules, const std::string& user_text, const std::string& digits);

/// `text` with {caller_id}, {caller_name}, {called}, {time} ("3:05 PM") and {date}
/// ("Monday, November 23") filled from the call and `now` (local time).
std::string fill_slots(const std::string& text, const common::v1::CallInfo& call, std::tm now);

/// The Dialogue service over a set of rule sets. The rule set of a turn is named by the
/// request metadata "vb-rules" (the pipeline's `rules` option sets it); without it, the only
/// rule set if there is one.
class RulesDialogue final : public llm::v1::Dialogue::Service {
 public:
  explicit RulesDialogue(std::map<std::string, RuleSet> sets) : sets_(std::move(sets)) {}
  grpc::Status Turn(grpc::ServerContext* ctx, const llm::v1::TurnRequest* req,
                    grpc::ServerWriter<llm::v1::TurnResponse>* writer) override;

 private:
  std::map<std::string, RuleSet> sets_;
};

}  // namespace voxbridge::dialogue_rules
