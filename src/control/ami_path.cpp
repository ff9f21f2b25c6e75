// AMI mode: calls reach voxbridge through the dialplan's AudioSocket(); the AMI connection's
// VarSet events tie each AudioSocket UUID to its channel (the channel table), actions become
// Redirect, PlayDTMF and Setvar on that channel, and outbound calls AMI Originate, whose
// OriginateResponse event says how they went.
//
// Thread: the control thread, except connected() (any thread).
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "control_state.hpp"
#include "voxbridge/control/ami_actions.hpp"

namespace voxbridge::control {

namespace asio = boost::asio;

namespace {

bool watched_variable(std::string_view name) {
  return name.rfind("VB_", 0) == 0 || name == "FROM_DID";
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

class AmiPath final : public ControlPath, public std::enable_shared_from_this<AmiPath> {
 public:
  explicit AmiPath(Controller::State& state) : st_(state) {}

  void start() override;
  void stop() override {
    if (ami_) ami_->stop();
  }
  bool connected() const override { return ami_ && ami_->connected(); }
  void run_action(const std::string& uuid, const agent::ActionRequest& r,
                  const std::string& context, std::function<void(std::string)> done) override;
  void originate(OriginateRequest req, std::function<void(OriginateResult)> done) override;

 private:
  void dtmf(std::string channel, std::string digits, std::size_t index, int digit_ms,
            std::function<void(std::string)> done);
  void on_event(const AmiMessage& m);
  void on_originate_response(const AmiMessage& m);

  Controller::State& st_;
  std::shared_ptr<AmiClient> ami_;
};

void AmiPath::start() {
  ami_ = AmiClient::create(st_.io.get_executor(), st_.cfg.ami);
  ami_->on_event([w = weak_from_this()](const AmiMessage& m) {
    if (auto s = w.lock()) s->on_event(m);
  });
  ami_->on_state([w = weak_from_this()](bool up, std::string_view why) {
    auto s = w.lock();
    if (!s) return;
    if (!up) s->st_.counters.reconnects.fetch_add(1);
    // Events were lost while the link was down (Hangups among them): forget the channels no
    // call of ours is tied to; they are learnt again from new events.
    if (up) s->st_.channels.forget_untied();
    spdlog::info("control: AMI {} ({})", up ? "up" : "down", why);
  });
  asio::post(st_.io, [a = ami_] { a->start(); });
}

void AmiPath::run_action(const std::string& uuid, const agent::ActionRequest& r,
                         const std::string& context, std::function<void(std::string)> done) {
  const std::string channel = st_.channels.name_of(uuid);
  if (channel.empty()) {
    st_.finish_action(uuid, r,
                      "no Asterisk channel known for this call (is " + st_.cfg.uuid_variable +
                          " set right before AudioSocket(), and AMI connected?)",
                      done);
    return;
  }
  auto finish = [self = shared_from_this(), uuid, r, done](AmiReply rep) {
    self->st_.finish_action(uuid, r, rep.ok ? std::string() : "AMI: " + rep.error, done);
  };
  switch (r.kind) {
    case agent::ActionRequest::Kind::transfer: {
      auto a = ami_actions::redirect(channel, context, r.target);
      ami_->send(a.name, std::move(a.fields), finish);
      return;
    }
    case agent::ActionRequest::Kind::set_variable: {
      auto a = ami_actions::setvar(channel, r.name, r.value);
      ami_->send(a.name, std::move(a.fields), finish);
      return;
    }
    case agent::ActionRequest::Kind::originate:
      return;  // the State places new calls itself
    case agent::ActionRequest::Kind::start_moh:
    case agent::ActionRequest::Kind::stop_moh:
      st_.finish_action(uuid, r, "AMI has no action for music on hold", done);  // (State refuses)
      return;
    case agent::ActionRequest::Kind::send_dtmf:
      dtmf(channel, r.digits, 0, r.digit_ms,
           [self = shared_from_this(), uuid, r, done](std::string error) {
             self->st_.finish_action(uuid, r, error, done);
           });
      return;
  }
}

void AmiPath::dtmf(std::string channel, std::string digits, std::size_t index, int digit_ms,
                   std::function<void(std::string)> done) {
  if (index >= digits.size()) {
    done({});
    return;
  }
  const char d = digits[index];
  if (d == 'w') {
    auto t = std::make_shared<asio::steady_timer>(st_.io, std::chrono::milliseconds(500));
    t->async_wait([self = shared_from_this(), t, channel, digits, index, digit_ms,
                   done](const boost::system::error_code&) mutable {
      self->dtmf(std::move(channel), std::move(digits), index + 1, digit_ms, std::move(done));
    });
    return;
  }
  auto a = ami_actions::play_dtmf(channel, d, digit_ms);
  ami_->send(
      a.name, std::move(a.fields),
      [self = shared_from_this(), channel, digits, index, digit_ms, done](AmiReply rep) mutable {
        if (!rep.ok) {
          done("AMI: " + rep.error);
          return;
        }
        self->dtmf(std::move(channel), std::move(digits), index + 1, digit_ms, std::move(done));
      });
}

void AmiPath::on_event(const AmiMessage& m) {
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
  if (ev == "Hangup") {
    st_.channels.forget(id);
    return;
  }
  if (ev != "Newchannel" && ev != "VarSet" && ev != "Newexten" && ev != "NewCallerid") return;
  ChannelTable& t = st_.channels;
  std::lock_guard lock(t.mu);
  auto it = t.by_id.find(id);
  if (it == t.by_id.end()) {
    if (t.by_id.size() >= ChannelTable::kMaxChannels) {
      // Full (Hangups missed while disconnected, or a PBX far busier than we serve): the
      // channels no call of ours is tied to go first. A scan that freed nothing is not
      // repeated until a Hangup or a reconnect changes the table.
      if (t.full_scan_useless) return;
      std::erase_if(t.by_id, [](const auto& c) { return c.second.uuid.empty(); });
      if (t.by_id.size() >= ChannelTable::kMaxChannels) {
        t.full_scan_useless = true;
        return;
      }
    }
    it = t.by_id.emplace(id, ChannelFacts{}).first;
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
  if (name == st_.cfg.uuid_variable || name == "AUDIOSOCKET_UUID") {
    if (!c.uuid.empty()) t.uuid_to_id.erase(c.uuid);
    c.uuid = value;
    t.uuid_to_id[value] = id;
  }
  if (watched_variable(name) && (c.variables.size() < 64 || c.variables.count(name) != 0)) {
    c.variables[name] = value;
  }
}

void AmiPath::originate(OriginateRequest req, std::function<void(OriginateResult)> done) {
  const ControlConfig& cfg = st_.cfg;
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
  auto entry = st_.begin_originate(req.to, std::move(done));
  const std::string id =
      ami_->send(a.name, std::move(a.fields), [self = shared_from_this(), entry](AmiReply r) {
        if (r.ok) return;  // queued: OriginateResponse tells the rest
        OriginateResult failed;
        failed.detail = "AMI: " + r.error;
        self->st_.finish_originate(entry, failed);
      });
  if (id.empty()) return;  // the reply handler reports it
  st_.track_originate(entry, id, "no OriginateResponse from Asterisk");
}

void AmiPath::on_originate_response(const AmiMessage& m) {
  auto entry = st_.pending_originate(std::string(m.action_id()));
  if (!entry) return;
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
  st_.finish_originate(entry, res);
}

}  // namespace

std::shared_ptr<ControlPath> make_ami_path(Controller::State& state) {
  return std::make_shared<AmiPath>(state);
}

}  // namespace voxbridge::control
