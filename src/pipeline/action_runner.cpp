#include "voxbridge/pipeline/action_runner.hpp"

#include <spdlog/spdlog.h>

#include <utility>

#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/pipeline/action_event.hpp"

namespace voxbridge::pipeline {

namespace {

constexpr const char* kNotConfigured = "not configured: no Asterisk control path";

agent::ActionRequest to_request(const common::v1::Action& a) {
  agent::ActionRequest req;
  if (a.has_transfer()) {
    req.kind = agent::ActionRequest::Kind::transfer;
    req.target = a.transfer().target();
    req.context = a.transfer().context();
  } else if (a.has_send_dtmf()) {
    req.kind = agent::ActionRequest::Kind::send_dtmf;
    req.digits = a.send_dtmf().digits();
    req.digit_ms = static_cast<int>(a.send_dtmf().duration_ms());
  } else if (a.has_originate()) {
    req.kind = agent::ActionRequest::Kind::originate;
    req.target = a.originate().number();
    req.name = a.originate().agent();
    for (const auto& [k, v] : a.originate().variables()) req.variables[k] = v;
  } else {
    req.kind = agent::ActionRequest::Kind::set_variable;
    req.name = a.set_variable().name();
    req.value = a.set_variable().value();
  }
  return req;
}

}  // namespace

ActionRunner::ActionRunner(const agent::CallInfo& info, agent::CallControl::Poster post,
                           Options options, OnResult on_result)
    : info_(info), post_(std::move(post)), options_(options), on_result_(std::move(on_result)) {}

ActionRunner::~ActionRunner() = default;

void ActionRunner::stop() {
  alive_.reset();
}

std::string ActionRunner::describe(const common::v1::Action& a) {
  return a.has_transfer()       ? "transfer to " + a.transfer().target()
         : a.has_send_dtmf()    ? "send DTMF " + a.send_dtmf().digits()
         : a.has_set_variable() ? "set " + a.set_variable().name()
         : a.has_originate()    ? "call " + a.originate().number()
         : a.has_hangup()       ? std::string("hang up")
                                : std::string("unknown action");
}

void ActionRunner::run(const common::v1::Action& a) {
  if (!alive_) return;
  const bool known =
      a.has_transfer() || a.has_send_dtmf() || a.has_set_variable() || a.has_originate();
  if (known && info_.actions) {
    info_.actions->run(to_request(a),
                       [post = post_, w = std::weak_ptr<int>(alive_), this, a](std::string error) {
                         post([w, this, a, error = std::move(error)] {
                           if (w.lock()) finish(a, error, {}, true);
                         });
                       });
    return;
  }
  if (a.has_transfer() && options_.transfer_without_control) {
    // No control path: the same rule and allowlists decide. Allowed: noted for the dialplan
    // (VB_TRANSFER, fetched over the HTTP API), and the owner closes the socket so that the
    // dialplan after AudioSocket() routes the call.
    const auto& t = a.transfer();
    const std::string refused = info_.note_transfer ? info_.note_transfer(t.target(), t.context())
                                                    : "no transfer policy for this call";
    if (!refused.empty()) {
      finish(a, "denied: " + refused, {}, false);
      return;
    }
    spdlog::info(
        "call uuid={}: transfer to {}{}{}: no Asterisk control path, hanging up after "
        "the reply so the dialplan continues",
        info_.uuid, logtext::log_text(t.target(), 80), t.context().empty() ? "" : "@",
        logtext::log_text(t.context(), 80));
    finish(a, "", "the socket closes after the reply, the dialplan continues", false);
    return;
  }
  spdlog::info("call uuid={}: action {}: not configured (no Asterisk control path)", info_.uuid,
               logtext::log_text(describe(a), 200));
  finish(a, kNotConfigured, {}, false);
}

void ActionRunner::finish(const common::v1::Action& a, const std::string& error,
                          const std::string& how, bool by_control) {
  record(a, error, how);
  Next next = Next::go_on;
  if (a.has_transfer() && error.empty()) {
    next = by_control ? Next::transferred : Next::hang_up;
  } else if (a.has_transfer() && error != kNotConfigured &&
             ++refused_transfers_ >= kMaxRefusedTransfers) {
    // A model that keeps asking for transfers it cannot have gets no endless turns of its own.
    next = Next::give_up;
  }
  if (on_result_) on_result_(Result{a, error, next});
}

void ActionRunner::record(const common::v1::Action& action, const std::string& error,
                          const std::string& how) const {
  if (info_.transcript) info_.transcript(action_event(action, error, how));
}

}  // namespace voxbridge::pipeline
