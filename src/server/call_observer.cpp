#include "voxbridge/server/call_observer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "voxbridge/control/controller.hpp"
#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/tools/tools.hpp"

namespace voxbridge::server {

namespace {

/// One call as the server follows it: its facts, and its transcript for call_ended and the
/// events API.
class ServerCall : public session::ObservedCall {
 public:
  ServerCall(events::CallFacts facts, webhooks::WebhookSender* webhooks, EndedCalls* ended)
      : facts_(std::move(facts)), webhooks_(webhooks), ended_(ended) {}

  void event(const events::Event& e, const std::string& line) override {
    if (webhooks_ != nullptr && e.type() == events::Type::action) {
      webhooks_->post("action", events::action_body(facts_.uuid, line));
    }
    // Bounded: a call that talks for hours does not grow the webhook without end.
    constexpr std::size_t kMaxBytes = 256 * 1024;
    if (transcript_bytes_ + line.size() <= kMaxBytes) {
      transcript_bytes_ += line.size();
      transcript_.push_back(line);
    }
  }

  void end(const events::Event& end) override {
    if (webhooks_ != nullptr) {
      webhooks_->post("call_ended", events::call_ended_body(facts_, end, transcript_));
    }
    if (ended_ != nullptr) {
      ended_->add(facts_.uuid, std::move(transcript_));
      transcript_.clear();
    }
  }

  std::size_t events_from(std::size_t from, std::vector<std::string>& out) const override {
    for (std::size_t i = from; i < transcript_.size(); ++i) out.push_back(transcript_[i]);
    return std::max(from, transcript_.size());
  }

 private:
  events::CallFacts facts_;
  webhooks::WebhookSender* webhooks_;
  EndedCalls* ended_;
  std::vector<std::string> transcript_;
  std::size_t transcript_bytes_ = 0;
};

}  // namespace

void EndedCalls::add(const std::string& uuid, std::vector<std::string> events) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  while (!ended_.empty() && (ended_.size() >= kMax || now - ended_.front().at > kKeep)) {
    ended_.pop_front();
  }
  ended_.push_back({uuid, now, std::move(events)});
}

std::optional<std::size_t> EndedCalls::events_from(const std::string& uuid, std::size_t from,
                                                   std::vector<std::string>& out) {
  std::lock_guard lock(mu_);
  for (auto it = ended_.rbegin(); it != ended_.rend(); ++it) {
    if (it->uuid != uuid) continue;
    for (std::size_t k = from; k < it->events.size(); ++k) out.push_back(it->events[k]);
    return std::max(from, it->events.size());
  }
  return std::nullopt;
}

std::unique_ptr<agent::Agent> ListenerObserver::make_agent() {
  return o_.make_agent ? o_.make_agent() : nullptr;
}

void ListenerObserver::note_transfers(agent::CallInfo& info) const {
  // No control path: a transfer passes the same rule and allowlists, and is noted for the
  // dialplan to fetch over the HTTP API (VB_TRANSFER) when the API is on.
  info.note_transfer = [policy = o_.actions.policy, denied = o_.actions.denied_without_control,
                        book = o_.note_transfers ? o_.actions.transfers : nullptr,
                        context = o_.transfer_context, uuid = info.uuid,
                        used = std::make_shared<std::size_t>(0)](
                           const std::string& target, const std::string& asked) -> std::string {
    std::string why;
    const auto p = policy->get();
    if (++*used > p->max_actions_per_call) {
      why = "this call has had its " + std::to_string(p->max_actions_per_call) +
            " actions (max_actions_per_call)";
    } else if (!asked.empty() && asked != context) {
      why = "without a control path a transfer goes to transfer_context '" + context +
            "' only, not '" + logtext::log_text(asked, 80) + "'";
    } else {
      why = p->check_transfer(target, context);
    }
    if (!why.empty()) {
      denied->fetch_add(1);
      spdlog::warn("call uuid={}: transfer to {}: denied: {}", uuid, logtext::log_text(target, 80),
                   why);
      return why;
    }
    if (book) book->note(uuid, target);
    return {};
  };
}

session::CallPlan ListenerObserver::start(agent::CallInfo& info) {
  if (o_.control != nullptr) {
    o_.control->describe(info);
  } else {
    note_transfers(info);
  }
  session::CallPlan plan;
  std::string agent_name = o_.agent_name;
  bool record = o_.record;
  if (o_.routing) {
    RouteChoice choice = o_.routing->route(*o_.registrations, o_.require_registration, info);
    if (!choice.refuse.empty()) {
      plan.refuse = std::move(choice.refuse);
      return plan;
    }
    if (choice.make_agent) {
      plan.agent = choice.make_agent();
      plan.agent_name = choice.agent_name;
      agent_name = choice.agent_name;
    }
    plan.route = std::move(choice.route);
    if (choice.record) record = *choice.record;
  }
  const auto wall_start = std::chrono::system_clock::now();
  if (record && o_.recorder != nullptr) {
    plan.recording =
        o_.recorder->start_call(info.uuid, o_.record_audio, o_.record_transcript, wall_start);
  }
  events::CallFacts& f = plan.facts;
  f.uuid = info.uuid;
  f.listener = info.listener;
  f.agent = agent_name;
  f.route = plan.route;
  f.peer = info.peer;
  f.started_unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(wall_start.time_since_epoch()).count();
  f.channel = info.channel;
  f.caller_number = info.caller_number;
  f.caller_name = info.caller_name;
  f.called_number = info.called_number;
  f.variables = info.variables;
  if (o_.webhooks != nullptr || o_.ended != nullptr) {
    plan.call = std::make_unique<ServerCall>(f, o_.webhooks, o_.ended);
  }
  if (o_.webhooks != nullptr) o_.webhooks->post("call_started", events::call_started_body(f));
  if (o_.tools != nullptr && o_.tools->offers(agent_name)) {
    plan.tools = [runner = o_.tools, agent_name](const agent::CallInfo& i,
                                                 agent::CallControl::Poster post) {
      return runner->for_call(agent_name, i, std::move(post));
    };
  }
  return plan;
}

}  // namespace voxbridge::server
