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
#include "voxbridge/control/ami_actions.hpp"

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

bool watched_variable(std::string_view name) {
  return name.rfind("VB_", 0) == 0 || name == "FROM_DID";
}

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
  }
  return "action";
}

/// Asterisk's OriginateResponse Reason codes (AST_CONTROL_*).
OriginateResult::Outcome outcome_from_reason(int reason) {
  switch (reason) {
    case 4:
      return OriginateResult::Outcome::answered;
    case 5:
      return OriginateResult::Outcome::busy;
    case 3:  // ringing, never answered
    case 1:  // hung up before answer
      return OriginateResult::Outcome::no_answer;
    default:
      return OriginateResult::Outcome::failed;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

class CallActionsImpl : public agent::CallActions {
 public:
  CallActionsImpl(std::weak_ptr<Controller::State> st, std::string uuid)
      : st_(std::move(st)), uuid_(std::move(uuid)) {}

  bool describe(agent::CallInfo& info) const override {
    auto st = st_.lock();
    return st && st->facts(uuid_, info);
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
  if (cfg.mode == ControlConfig::Mode::ari) {
    ari_action(uuid, r, context, std::move(done));
  } else {
    ami_action(uuid, r, context, std::move(done));
  }
}

// --- AMI mode ---------------------------------------------------------------------------------

std::string Controller::State::channel_of(const std::string& uuid) const {
  std::lock_guard lock(mu);
  auto u = uuid_to_id.find(uuid);
  if (u == uuid_to_id.end()) return {};
  auto c = channels.find(u->second);
  return c == channels.end() ? std::string() : c->second.name;
}

void Controller::State::ami_action(const std::string& uuid, const agent::ActionRequest& r,
                                   const std::string& context,
                                   std::function<void(std::string)> done) {
  const std::string channel = channel_of(uuid);
  if (channel.empty()) {
    finish_action(uuid, r,
                  "no Asterisk channel known for this call (is " + cfg.uuid_variable +
                      " set right before AudioSocket(), and AMI connected?)",
                  done);
    return;
  }
  auto finish = [self = shared_from_this(), uuid, r, done](AmiReply rep) {
    self->finish_action(uuid, r, rep.ok ? std::string() : "AMI: " + rep.error, done);
  };
  switch (r.kind) {
    case agent::ActionRequest::Kind::transfer: {
      auto a = ami_actions::redirect(channel, context, r.target);
      ami->send(a.name, std::move(a.fields), finish);
      return;
    }
    case agent::ActionRequest::Kind::set_variable: {
      auto a = ami_actions::setvar(channel, r.name, r.value);
      ami->send(a.name, std::move(a.fields), finish);
      return;
    }
    case agent::ActionRequest::Kind::originate:
      return;  // run_action places new calls itself
    case agent::ActionRequest::Kind::send_dtmf:
      ami_dtmf(channel, r.digits, 0, r.digit_ms,
               [self = shared_from_this(), uuid, r, done](std::string error) {
                 self->finish_action(uuid, r, error, done);
               });
      return;
  }
}

void Controller::State::ami_dtmf(std::string channel, std::string digits, std::size_t index,
                                 int digit_ms, std::function<void(std::string)> done) {
  if (index >= digits.size()) {
    done({});
    return;
  }
  const char d = digits[index];
  if (d == 'w') {
    auto t = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(500));
    t->async_wait([self = shared_from_this(), t, channel, digits, index, digit_ms,
                   done](const boost::system::error_code&) mutable {
      self->ami_dtmf(std::move(channel), std::move(digits), index + 1, digit_ms, std::move(done));
    });
    return;
  }
  auto a = ami_actions::play_dtmf(channel, d, digit_ms);
  ami->send(
      a.name, std::move(a.fields),
      [self = shared_from_this(), channel, digits, index, digit_ms, done](AmiReply rep) mutable {
        if (!rep.ok) {
          done("AMI: " + rep.error);
          return;
        }
        self->ami_dtmf(std::move(channel), std::move(digits), index + 1, digit_ms, std::move(done));
      });
}

void Controller::State::on_ami_event(const AmiMessage& m) {
  const std::string_view ev = m.event();
  if (ev == "OriginateResponse") {
    on_originate_response(m);
    return;
  }
  if (ev == "DTMFEnd") {
    spdlog::debug("AMI: DTMF {} ({}) on {}", m.get("Digit"), m.get("Direction"), m.get("Channel"));
    return;
  }
  const std::string id(m.get("Uniqueid"));
  // Set(GLOBAL(...)) reports "none"; failed originates "<unknown>".
  if (id.empty() || id == "none" || id == "<unknown>") return;
  std::lock_guard lock(mu);
  if (ev == "Hangup") {
    auto it = channels.find(id);
    if (it != channels.end()) {
      if (!it->second.uuid.empty()) uuid_to_id.erase(it->second.uuid);
      channels.erase(it);
      full_scan_useless = false;
    }
    return;
  }
  if (ev != "Newchannel" && ev != "VarSet" && ev != "Newexten" && ev != "NewCallerid") return;
  auto it = channels.find(id);
  if (it == channels.end()) {
    if (channels.size() >= kMaxChannels) {
      // Full (Hangups missed while disconnected, or a PBX far busier than we serve): the
      // channels no call of ours is tied to go first. A scan that freed nothing is not
      // repeated until a Hangup or a reconnect changes the table.
      if (full_scan_useless) return;
      std::erase_if(channels, [](const auto& c) { return c.second.uuid.empty(); });
      if (channels.size() >= kMaxChannels) {
        full_scan_useless = true;
        return;
      }
    }
    it = channels.emplace(id, ChannelFacts{}).first;
    it->second.exten = m.get("Exten");
  }
  ChannelFacts& c = it->second;
  c.name = m.get("Channel");
  c.caller_number = m.get("CallerIDNum");
  c.caller_name = m.get("CallerIDName");
  if (c.caller_name == "<unknown>") c.caller_name.clear();
  if (c.caller_number == "<unknown>") c.caller_number.clear();
  if (ev != "VarSet") return;
  const std::string name(m.get("Variable"));
  const std::string value(m.get("Value"));
  if (name == cfg.uuid_variable || name == "AUDIOSOCKET_UUID") {
    if (!c.uuid.empty()) uuid_to_id.erase(c.uuid);
    c.uuid = value;
    uuid_to_id[value] = id;
  }
  if (watched_variable(name) && (c.variables.size() < 64 || c.variables.count(name) != 0)) {
    c.variables[name] = value;
  }
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
  if (cfg.mode == ControlConfig::Mode::ari) {
    ari_originate(std::move(req), std::move(done));
    return;
  }
  std::string channel = cfg.originate_channel;
  if (auto p = channel.find("${NUMBER}"); p != std::string::npos) channel.replace(p, 9, req.to);
  const std::string cid = req.caller_id.empty() ? cfg.originate_caller_id : req.caller_id;
  std::vector<std::pair<std::string, std::string>> vars;
  if (!req.agent.empty()) vars.emplace_back("VB_AGENT", req.agent);
  vars.emplace_back("VB_OUTBOUND", req.to);
  for (const auto& [k, v] : req.variables) vars.emplace_back(k, v);
  if (!req.requested_by.empty()) vars.emplace_back("VB_REQUESTED_BY", req.requested_by);
  auto a = ami_actions::originate(channel, cfg.originate_context, cfg.originate_exten,
                                  static_cast<long>(cfg.originate_timeout.count()), cid, vars);
  ++outbound_active;
  counters.originates.fetch_add(1);
  auto entry = std::make_shared<PendingOriginate>();
  entry->done = std::move(done);
  entry->to = req.to;
  const std::string id =
      ami->send(a.name, std::move(a.fields), [self = shared_from_this(), entry](AmiReply r) {
        if (r.ok) return;  // queued: OriginateResponse tells the rest
        OriginateResult failed;
        failed.detail = "AMI: " + r.error;
        self->finish_originate(entry, failed);
      });
  if (id.empty()) return;  // the reply handler reports it
  entry->action_id = id;
  pending_originates[id] = entry;
  entry->timer =
      std::make_shared<asio::steady_timer>(io, cfg.originate_timeout + std::chrono::seconds(15));
  entry->timer->async_wait([self = shared_from_this(), entry](const boost::system::error_code& ec) {
    if (ec) return;
    OriginateResult lost;
    lost.detail = "no OriginateResponse from Asterisk";
    self->finish_originate(entry, lost);
  });
}

void Controller::State::on_originate_response(const AmiMessage& m) {
  auto it = pending_originates.find(std::string(m.action_id()));
  if (it == pending_originates.end()) return;
  auto entry = it->second;
  OriginateResult res;
  const std::string reason(m.get("Reason"));
  int code = 0;
  try {
    code = std::stoi(reason);
  } catch (const std::exception&) {
  }
  res.outcome = m.get("Response") == "Success" ? OriginateResult::Outcome::answered
                                               : outcome_from_reason(code);
  if (res.outcome != OriginateResult::Outcome::answered && code == 4) {
    res.outcome = OriginateResult::Outcome::failed;
  }
  res.channel = m.get("Channel");
  res.detail = "Reason " + reason;
  finish_originate(entry, res);
}

void Controller::State::finish_originate(const std::shared_ptr<PendingOriginate>& entry,
                                         OriginateResult res) {
  if (entry->finished) return;
  entry->finished = true;
  if (entry->timer) entry->timer->cancel();
  pending_originates.erase(entry->action_id.empty() ? entry->channel_id : entry->action_id);
  if (outbound_active > 0) --outbound_active;
  if (res.outcome == OriginateResult::Outcome::answered) {
    spdlog::info("originate to {}: answered (channel {})", entry->to, res.channel);
  } else {
    spdlog::warn("originate to {}: {} ({})", entry->to, outcome_name(res.outcome), res.detail);
  }
  entry->done(std::move(res));
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
  if (cfg_.mode == ControlConfig::Mode::ami) {
    st.ami = AmiClient::create(st.io.get_executor(), cfg_.ami);
    st.ami->on_event([w = std::weak_ptr<State>(state_)](const AmiMessage& m) {
      if (auto s = w.lock()) s->on_ami_event(m);
    });
    st.ami->on_state([this, w = std::weak_ptr<State>(state_)](bool up, std::string_view why) {
      if (!up) counters_.reconnects.fetch_add(1);
      if (auto s = w.lock(); s && up) {
        // Events were lost while the link was down (Hangups among them): forget the channels
        // no call of ours is tied to; they are learnt again from new events.
        std::lock_guard lock(s->mu);
        std::erase_if(s->channels, [](const auto& c) { return c.second.uuid.empty(); });
        s->full_scan_useless = false;
      }
      spdlog::info("control: AMI {} ({})", up ? "up" : "down", why);
    });
    asio::post(st.io, [a = st.ami] { a->start(); });
  } else {
    st.start_ari();
  }
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
    if (s->ami) s->ami->stop();
    s->stop_ari();
    s->work.reset();
  });
  // The clients close their sockets; whatever they were doing ends within the io's run.
  st.io.stop();
  st.thread.join();
}

bool Controller::State::facts(const std::string& uuid, agent::CallInfo& info) const {
  std::lock_guard lock(mu);
  auto u = uuid_to_id.find(uuid);
  if (u == uuid_to_id.end()) return false;
  auto c = channels.find(u->second);
  if (c == channels.end()) return false;
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

void Controller::describe(agent::CallInfo& info) const {
  if (cfg_.mode == ControlConfig::Mode::none) return;
  info.actions = std::make_shared<CallActionsImpl>(state_, info.uuid);
  state_->facts(info.uuid, info);
}

bool Controller::knows(const std::string& uuid) const {
  std::lock_guard lock(state_->mu);
  return state_->uuid_to_id.count(uuid) != 0;
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
  if (state_->ami) return state_->ami->connected();
  return state_->ari_connected();
}

}  // namespace voxbridge::control
