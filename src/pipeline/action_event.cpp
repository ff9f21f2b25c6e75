#include "voxbridge/pipeline/action_event.hpp"

namespace voxbridge::pipeline {

events::Event action_event(const common::v1::Action& a, std::string_view error,
                           std::string_view how) {
  using Kind = events::ActionFields::Kind;
  events::ActionFields f;
  switch (a.kind_case()) {
    case common::v1::Action::kHangup:
      f.kind = Kind::hangup;
      f.reason = a.hangup().reason();
      f.final_words = a.hangup().final_words();
      break;
    case common::v1::Action::kTransfer:
      f.kind = Kind::transfer;
      f.target = a.transfer().target();
      f.context = a.transfer().context();
      break;
    case common::v1::Action::kSendDtmf:
      f.kind = Kind::send_dtmf;
      f.digits = a.send_dtmf().digits();
      f.duration_ms = a.send_dtmf().duration_ms();
      break;
    case common::v1::Action::kSetVariable:
      f.kind = Kind::set_variable;
      f.name = a.set_variable().name();
      f.value = a.set_variable().value();
      break;
    case common::v1::Action::kOriginate:
      f.kind = Kind::originate;
      f.number = a.originate().number();
      f.agent = a.originate().agent();
      // Sorted, so the same action always reads the same.
      for (const auto& [k, v] : a.originate().variables()) f.variables.emplace(k, v);
      break;
    case common::v1::Action::KIND_NOT_SET:
      break;
  }
  return events::action(f, error, how);
}

}  // namespace voxbridge::pipeline
