#include "voxbridge/control/controller.hpp"
#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/net/error_text.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "control_state.hpp"

namespace voxbridge::control {

namespace asio = boost::asio;

const char* outcome_name(OriginateResult::Outcome o) {
  switch (o) {
    case OriginateResult::Outcome::answered:
      return "answered";
    case OriginateResult::Outcome::busy:
      return "busy";
    case OriginateResult::Outcome::no_answer:
      return "no answer";
    case OriginateResult::Outcome::failed:
      return "failed";
    case OriginateResult::Outcome::denied:
      return "denied";
    case OriginateResult::Outcome::limit:
      return "limit";
  }
  return "failed";
}

namespace {

std::string describe_request(const agent::ActionRequest& r) {
  switch (r.kind) {
    case agent::ActionRequest::Kind::transfer:
      return "transfer to " + r.target + (r.context.empty() ? "" : "@" + r.context);
    case agent::ActionRequest::Kind::send_dtmf:
      return "send DTMF " + r.digits.substr(0, guard::kMaxDtmf);
    case agent::ActionRequest::Kind::set_variable:
      return "set " + r.name.substr(0, guard::kMaxVariableName);
    case agent::ActionRequest::Kind::originate:
      return "call " + r.target;
    case agent::ActionRequest::Kind::start_moh:
      return "start music on hold" + (r.name.empty() ? "" : " '" + r.name.substr(0, 80) + "'");
    case agent::ActionRequest::Kind::stop_moh:
      return "stop music on hold";
  }
  return "action";
}

}  // namespace

// ---------------------------------------------------------------------------------------------

class CallActionsImpl : public agent::CallActions {
 public:
  CallActionsImpl(std::weak_ptr<Controller::State> st, std::string uuid)
      : st_(std::move(st)), uuid_(std::move(uuid)) {}

  bool describe(agent::CallInfo& info) const override {
    auto st = st_.lock();
    return st && st->channels.facts(uuid_, info);
  }

  void run(const agent::ActionRequest& request, std::function<void(std::string)> done) override {
    auto st = st_.lock();
    if (!st) {
      done("voxbridge's control path has stopped");
      return;
    }
    asio::post(st->io,
               [w = st_, use = use_, uuid = uuid_, request, done = std::move(done)]() mutable {
                 if (auto s = w.lock()) s->run_action(uuid, request, *use, std::move(done));
               });
  }

 private:
  std::weak_ptr<Controller::State> st_;
  std::string uuid_;
  // This call's use of the per-call caps; read and written on the control thread only.
  std::shared_ptr<Controller::State::CallUse> use_ = std::make_shared<Controller::State::CallUse>();
};

Controller::State::State(const ControlConfig& c, ControlCounters& k)
    : cfg(c), counters(k), shared_policy([&c] {
        guard::Policy p = c.allow;
        p.uuid_variable = c.uuid_variable;  // whoever built the config, it stays reserved
        return p;
      }()) {}

void Controller::State::deny_action(const std::string& uuid, const agent::ActionRequest& r,
                                    const std::string& why,
                                    const std::function<void(std::string)>& done) {
  counters.actions_denied.fetch_add(1);
  spdlog::warn("call uuid={}: {}: denied: {}", uuid, logtext::log_text(describe_request(r)), why);
  done("denied: " + why);
}

void Controller::State::finish_action(const std::string& uuid, const agent::ActionRequest& r,
                                      const std::string& error,
                                      const std::function<void(std::string)>& done) {
  if (error.empty()) {
    counters.actions_ok.fetch_add(1);
    spdlog::info("call uuid={}: {}: done", uuid, describe_request(r));
  } else {
    counters.actions_failed.fetch_add(1);
    spdlog::warn("call uuid={}: {}: failed: {}", uuid, describe_request(r), error);
  }
  done(error);
}

void Controller::State::run_action(const std::string& uuid, const agent::ActionRequest& r,
                                   CallUse& use, std::function<void(std::string)> done) {
  // Checks that need no Asterisk come first: a denied action never reaches it. Whatever the
  // agent asked for passes guard:: (characters and lengths, then the policy in force now).
  const auto policy = shared_policy.get();
  const bool moh = r.kind == agent::ActionRequest::Kind::start_moh ||
                   r.kind == agent::ActionRequest::Kind::stop_moh;
  if (moh) {
    // voxbridge's own filler, not the agent's: outside the agent's caps (the tool runner's
    // per-call cap bounds how often it can happen), and only ARI can play it.
    std::string refused = guard::check_moh_class(r.name);
    if (refused.empty() && cfg.mode != ControlConfig::Mode::ari) {
      refused = "music on hold needs [control] mode = ari";
    }
    if (!refused.empty()) {
      deny_action(uuid, r, refused, done);
      return;
    }
    path->run_action(uuid, r, cfg.transfer_context, std::move(done));
    return;
  }
  if (use.actions >= policy->max_actions_per_call) {
    deny_action(uuid, r,
                "this call has had its " + std::to_string(policy->max_actions_per_call) +
                    " actions (max_actions_per_call)",
                done);
    return;
  }
  ++use.actions;
  std::string refused;
  const std::string context = r.context.empty() ? cfg.transfer_context : r.context;
  switch (r.kind) {
    case agent::ActionRequest::Kind::transfer:
      refused = policy->check_transfer(r.target, context);
      break;
    case agent::ActionRequest::Kind::send_dtmf:
      refused = guard::check_dtmf(r.digits);
      if (refused.empty() && (r.digit_ms < 0 || r.digit_ms > 2000)) {
        refused = "a digit of " + std::to_string(r.digit_ms) + " ms (0..2000)";
      }
      break;
    case agent::ActionRequest::Kind::set_variable:
      refused = policy->check_agent_variable(r.name, r.value);
      break;
    case agent::ActionRequest::Kind::originate:
      if (use.originates >= policy->max_originates_per_call) {
        refused = "this call has placed its " + std::to_string(policy->max_originates_per_call) +
                  " outbound calls (max_originates_per_call)";
      } else if (refused = policy->check_originate(r.target); refused.empty()) {
        refused = policy->check_originate_variables(r.variables, /*from_agent=*/true);
        if (refused.empty() && !r.name.empty()) refused = guard::check_agent_name(r.name);
      }
      break;
    case agent::ActionRequest::Kind::start_moh:
    case agent::ActionRequest::Kind::stop_moh:
      break;  // above
  }
  if (!refused.empty()) {
    deny_action(uuid, r, refused, done);
    return;
  }
  if (r.kind == agent::ActionRequest::Kind::originate) {
    // A new call, not this one: the same path as voxbridge originate.
    OriginateRequest o;
    o.to = r.target;
    o.agent = r.name;
    o.variables = r.variables;
    o.requested_by = uuid;
    ++use.originates;
    originate(std::move(o), [self = shared_from_this(), uuid, r, done](OriginateResult res) {
      self->finish_action(uuid, r,
                          res.outcome == OriginateResult::Outcome::answered
                              ? std::string()
                              : std::string(outcome_name(res.outcome)) +
                                    (res.detail.empty() ? "" : " (" + res.detail + ")"),
                          done);
    });
    return;
  }
  path->run_action(uuid, r, context, std::move(done));
}

// --- outbound calls -----------------------------------------------------------------------------

void Controller::State::originate(OriginateRequest req, std::function<void(OriginateResult)> done) {
  OriginateResult res;
  // The same rule whoever asks (an agent, the HTTP API, the CLI): number, variables, caller ID
  // and agent name pass guard:: before anything is built from them.
  const auto policy = shared_policy.get();
  std::string why = policy->check_originate(req.to);
  if (why.empty()) why = policy->check_originate_variables(req.variables, /*from_agent=*/false);
  if (why.empty()) why = guard::check_caller_id(req.caller_id);
  if (why.empty() && !req.agent.empty()) why = guard::check_agent_name(req.agent);
  if (!why.empty()) {
    counters.actions_denied.fetch_add(1);
    spdlog::warn("originate to {}: denied: {}", logtext::log_text(req.to), why);
    res.outcome = OriginateResult::Outcome::denied;
    res.detail = why;
    done(res);
    return;
  }
  if (outbound_active >= cfg.max_outbound) {
    res.outcome = OriginateResult::Outcome::limit;
    res.detail = std::to_string(outbound_active) + " outbound calls already (max_outbound)";
    spdlog::warn("originate to {}: {}", req.to, res.detail);
    done(res);
    return;
  }
  path->originate(std::move(req), std::move(done));
}

std::shared_ptr<PendingOriginate> Controller::State::begin_originate(
    const std::string& to, std::function<void(OriginateResult)> done) {
  ++outbound_active;
  counters.originates.fetch_add(1);
  auto entry = std::make_shared<PendingOriginate>();
  entry->done = std::move(done);
  entry->to = to;
  return entry;
}

void Controller::State::track_originate(const std::shared_ptr<PendingOriginate>& entry,
                                        std::string id, std::string silence) {
  entry->id = std::move(id);
  pending_originates[entry->id] = entry;
  entry->timer =
      std::make_shared<asio::steady_timer>(io, cfg.originate_timeout + std::chrono::seconds(15));
  entry->timer->async_wait([self = shared_from_this(), entry,
                            silence = std::move(silence)](const boost::system::error_code& ec) {
    if (ec) return;
    OriginateResult lost;
    lost.detail = silence;
    self->finish_originate(entry, lost);
  });
}

std::shared_ptr<PendingOriginate> Controller::State::pending_originate(
    const std::string& id) const {
  auto it = pending_originates.find(id);
  return it == pending_originates.end() ? nullptr : it->second;
}

void Controller::State::finish_originate(const std::shared_ptr<PendingOriginate>& entry,
                                         OriginateResult res) {
  if (entry->finished) return;
  entry->finished = true;
  if (entry->timer) entry->timer->cancel();
  pending_originates.erase(entry->id);
  if (outbound_active > 0) --outbound_active;
  if (res.outcome == OriginateResult::Outcome::answered) {
    spdlog::info("originate to {}: answered (channel {})", entry->to, res.channel);
  } else {
    spdlog::warn("originate to {}: {} ({})", entry->to, outcome_name(res.outcome), res.detail);
  }
  entry->done(std::move(res));
}

// --- the channel table ------------------------------------------------------------------------

bool ChannelTable::facts(const std::string& uuid, agent::CallInfo& info) const {
  std::lock_guard lock(mu);
  auto u = uuid_to_id.find(uuid);
  if (u == uuid_to_id.end()) return false;
  auto c = by_id.find(u->second);
  if (c == by_id.end()) return false;
  const ChannelFacts& f = c->second;
  info.channel = f.name;
  info.caller_number = f.caller_number;
  info.caller_name = f.caller_name;
  info.variables = f.variables;
  info.called_number.clear();
  if (auto d = f.variables.find("FROM_DID"); d != f.variables.end() && !d->second.empty()) {
    info.called_number = d->second;
  } else if (f.exten != "s") {
    info.called_number = f.exten;
  }
  return true;
}

std::string ChannelTable::id_of(const std::string& uuid) const {
  std::lock_guard lock(mu);
  auto u = uuid_to_id.find(uuid);
  return u == uuid_to_id.end() ? std::string() : u->second;
}

std::string ChannelTable::name_of(const std::string& uuid) const {
  std::lock_guard lock(mu);
  auto u = uuid_to_id.find(uuid);
  if (u == uuid_to_id.end()) return {};
  auto c = by_id.find(u->second);
  return c == by_id.end() ? std::string() : c->second.name;
}

bool ChannelTable::knows(const std::string& uuid) const {
  std::lock_guard lock(mu);
  return uuid_to_id.count(uuid) != 0;
}

void ChannelTable::put(const std::string& id, ChannelFacts f) {
  std::lock_guard lock(mu);
  uuid_to_id[f.uuid] = id;
  by_id[id] = std::move(f);
}

void ChannelTable::forget(const std::string& id) {
  std::lock_guard lock(mu);
  auto it = by_id.find(id);
  if (it == by_id.end()) return;
  if (!it->second.uuid.empty()) uuid_to_id.erase(it->second.uuid);
  by_id.erase(it);
  full_scan_useless = false;
}

void ChannelTable::forget_untied() {
  std::lock_guard lock(mu);
  std::erase_if(by_id, [](const auto& c) { return c.second.uuid.empty(); });
  full_scan_useless = false;
}

// --- Controller -------------------------------------------------------------------------------

Controller::Controller(ControlConfig cfg)
    : cfg_(std::move(cfg)), state_(std::make_shared<State>(cfg_, counters_)) {}

Controller::~Controller() {
  stop();
}

void Controller::start() {
  auto& st = *state_;
  if (st.thread.joinable() || cfg_.mode == ControlConfig::Mode::none) return;
  st.work.emplace(st.io.get_executor());
  st.path = cfg_.mode == ControlConfig::Mode::ami ? make_ami_path(st) : make_ari_path(st);
  st.path->start();
  st.thread = std::thread([&st] {
    try {
      st.io.run();
    } catch (const std::exception& e) {
      spdlog::critical("control thread: {}", net::error_text(e));
    }
  });
}

void Controller::stop() {
  auto& st = *state_;
  if (!st.thread.joinable()) return;
  asio::post(st.io, [s = state_] {
    s->path->stop();
    s->work.reset();
  });
  // The client closes its sockets; whatever it was doing ends within the io's run.
  st.io.stop();
  st.thread.join();
}

void Controller::describe(agent::CallInfo& info) const {
  if (cfg_.mode == ControlConfig::Mode::none) return;
  info.actions = std::make_shared<CallActionsImpl>(state_, info.uuid);
  state_->channels.facts(info.uuid, info);
}

bool Controller::knows(const std::string& uuid) const {
  return state_->channels.knows(uuid);
}

void Controller::originate(OriginateRequest req, std::function<void(OriginateResult)> done) {
  if (cfg_.mode == ControlConfig::Mode::none) {
    OriginateResult r;
    r.detail = "no Asterisk control path configured ([control] mode = ami or ari)";
    done(r);
    return;
  }
  asio::post(state_->io, [s = state_, req = std::move(req), done = std::move(done)]() mutable {
    s->originate(std::move(req), std::move(done));
  });
}

void Controller::set_policy(guard::Policy policy) {
  policy.uuid_variable = cfg_.uuid_variable;
  state_->shared_policy.set(std::move(policy));
}

std::shared_ptr<const guard::Policy> Controller::policy() const {
  return state_->shared_policy.get();
}

bool Controller::connected() const {
  return state_->path && state_->path->connected();
}

}  // namespace voxbridge::control
