// ARI mode: a call enters Stasis(voxbridge); voxbridge answers it, asks Asterisk for an
// AudioSocket leg to its own listener (externalMedia, with a fresh UUID), bridges the two, and
// tears all of it down when either side ends. Agent actions go to the caller's channel over
// ARI; outbound calls are originated into the same app.
//
// Thread: the control thread, except connected() (any thread).
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <random>

#include "control_state.hpp"
#include "voxbridge/control/ari_client.hpp"

namespace voxbridge::control {

namespace json = boost::json;

namespace {

std::string str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

const json::object* obj(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_object() ? &v->as_object() : nullptr;
}

std::string new_uuid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t hi = rng();
  std::uint64_t lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 1
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

/// Q.850 cause of an outbound call that ended before it was answered.
OriginateResult::Outcome outcome_from_cause(int cause) {
  switch (cause) {
    case 17:
      return OriginateResult::Outcome::busy;
    case 18:
    case 19:
    case 16:  // normal clearing before answer: the callee declined or the ring timed out
      return OriginateResult::Outcome::no_answer;
    default:
      return OriginateResult::Outcome::failed;
  }
}

/// ARI mode: one caller in Stasis, its AudioSocket leg and the bridge between them.
struct AriCall {
  std::string caller;  ///< channel id of the caller
  std::string media;   ///< channel id of the externalMedia leg (empty until created)
  std::string bridge;  ///< bridge id (empty until created)
  std::string uuid;
  bool transferred = false;      ///< left Stasis on purpose: do not hang the caller up
  bool media_in_stasis = false;  ///< the leg's StasisStart came: it may join the bridge
  bool bridged = false;
  bool ending = false;
};

class AriPath final : public ControlPath, public std::enable_shared_from_this<AriPath> {
 public:
  explicit AriPath(Controller::State& state) : st_(state) {}

  void start() override;
  void stop() override {
    if (ari_) ari_->stop();
  }
  bool connected() const override { return up_; }
  void run_action(const std::string& uuid, const agent::ActionRequest& r,
                  const std::string& context, std::function<void(std::string)> done) override;
  void originate(OriginateRequest req, std::function<void(OriginateResult)> done) override;

 private:
  void on_event(const json::object& e);
  void stasis_start(const json::object& channel, const json::value* args);
  void channel_gone(const std::string& id, int cause);
  void try_bridge(const std::shared_ptr<AriCall>& call);
  void teardown(const std::shared_ptr<AriCall>& call, const std::string& why);

  Controller::State& st_;
  std::shared_ptr<AriClient> ari_;
  std::atomic<bool> up_{false};
  std::map<std::string, std::shared_ptr<AriCall>> calls_;     // by caller channel id
  std::map<std::string, std::shared_ptr<AriCall>> by_media_;  // by media channel id
  std::map<std::string, std::shared_ptr<AriCall>> by_uuid_;   // by AudioSocket UUID
};

void AriPath::start() {
  ari_ = AriClient::create(st_.io.get_executor(), st_.cfg.ari);
  ari_->on_event([w = weak_from_this()](const json::object& e) {
    if (auto s = w.lock()) s->on_event(e);
  });
  ari_->on_state([w = weak_from_this()](bool up, std::string_view why) {
    auto s = w.lock();
    if (!s) return;
    s->up_ = up;
    if (!up) s->st_.counters.reconnects.fetch_add(1);
    spdlog::info("control: ARI {} ({})", up ? "up" : "down", why);
  });
  boost::asio::post(st_.io, [a = ari_] { a->start(); });
}

void AriPath::on_event(const json::object& e) {
  const std::string type = str(e, "type");
  const json::object* channel = obj(e, "channel");
  const std::string id = channel != nullptr ? str(*channel, "id") : std::string();
  if (type == "StasisStart" && channel != nullptr) {
    stasis_start(*channel, e.if_contains("args"));
  } else if (type == "StasisEnd" && !id.empty()) {
    if (auto it = calls_.find(id); it != calls_.end()) {
      teardown(it->second, it->second->transferred ? "caller transferred" : "caller left");
    } else if (auto m = by_media_.find(id); m != by_media_.end()) {
      teardown(m->second, "AudioSocket leg ended");
    }
  } else if (type == "ChannelDestroyed" && !id.empty()) {
    int cause = 0;
    if (const auto* c = e.if_contains("cause"); c != nullptr && c->is_int64()) {
      cause = static_cast<int>(c->as_int64());
    }
    channel_gone(id, cause);
  } else if (type == "ChannelHangupRequest" && !id.empty()) {
    spdlog::debug("ARI: hangup requested on {}", id);
  } else if (type == "ChannelDtmfReceived" && !id.empty()) {
    spdlog::debug("ARI: DTMF {} on {}", str(e, "digit"), id);
  } else if (type == "ChannelVarset" && !id.empty()) {
    const std::string name = str(e, "variable");
    if (name.rfind("VB_", 0) == 0 || name == "FROM_DID") {
      ChannelTable& t = st_.channels;
      std::lock_guard lock(t.mu);
      if (auto c = t.by_id.find(id); c != t.by_id.end() && c->second.variables.size() < 64) {
        c->second.variables[name] = str(e, "value");
      }
    }
  } else if (type == "PlaybackFinished") {
    spdlog::debug("ARI: playback finished");
  } else if (type == "BridgeDestroyed") {
    if (const json::object* b = obj(e, "bridge")) {
      const std::string bid = str(*b, "id");
      for (auto& [cid, call] : calls_) {
        if (call->bridge == bid) call->bridge.clear();
      }
    }
  }
}

void AriPath::stasis_start(const json::object& channel, const json::value* args) {
  const std::string id = str(channel, "id");
  if (id.empty() || calls_.count(id) != 0) return;
  if (auto m = by_media_.find(id); m != by_media_.end()) {
    // Our leg, whose externalMedia response came before its StasisStart.
    const auto call = m->second;
    call->media_in_stasis = true;
    try_bridge(call);
    return;
  }
  // An outbound call we originated: it answered.
  std::map<std::string, std::string> originate_vars;
  if (auto entry = st_.pending_originate(id)) {
    originate_vars = entry->variables;
    OriginateResult res;
    res.outcome = OriginateResult::Outcome::answered;
    res.channel = str(channel, "name");
    st_.finish_originate(entry, res);
  }
  const std::string name = str(channel, "name");
  if (name.rfind("AudioSocket/", 0) == 0) {
    // Our externalMedia leg entered the app (its args carry the UUID we gave it as data); it
    // can be added to the bridge only from now on, and this may come before or after the
    // externalMedia response that names it.
    std::string uuid;
    if (args != nullptr && args->is_array() && !args->as_array().empty() &&
        args->as_array()[0].is_string()) {
      uuid = std::string(args->as_array()[0].as_string());
    }
    auto it = by_uuid_.find(uuid);
    if (it == by_uuid_.end() || it->second->ending) {
      ari_->hangup(id, "normal", [](AriResponse) {});  // its call is gone: no leftover leg
      return;
    }
    it->second->media_in_stasis = true;
    try_bridge(it->second);
    return;
  }

  if (calls_.size() >= ChannelTable::kMaxChannels) {
    // Far beyond what one voxbridge serves: hang up rather than track without bound.
    spdlog::warn("ARI: {} calls in the app already: hanging up {}", calls_.size(), id);
    ari_->hangup(id, "congestion", [](AriResponse) {});
    return;
  }
  auto call = std::make_shared<AriCall>();
  call->caller = id;
  call->uuid = new_uuid();
  ChannelFacts f;
  f.name = name;
  f.uuid = call->uuid;
  if (const json::object* c = obj(channel, "caller")) {
    f.caller_number = str(*c, "number");
    f.caller_name = str(*c, "name");
  }
  if (const json::object* d = obj(channel, "dialplan")) f.exten = str(*d, "exten");
  f.variables = std::move(originate_vars);
  if (const json::object* vars = obj(channel, "channelvars")) {
    for (const auto& [k, v] : *vars) {
      if (v.is_string() && f.variables.size() < 64) f.variables[k] = std::string(v.as_string());
    }
  }
  st_.channels.put(id, std::move(f));
  calls_[id] = call;
  by_uuid_[call->uuid] = call;
  spdlog::info("ARI: call {} ({}) entered {}: AudioSocket leg uuid={}", id, name, st_.cfg.ari.app,
               call->uuid);
  auto self = shared_from_this();
  const std::string state = str(channel, "state");
  auto after_answer = [self, call](AriResponse r) {
    if (call->ending) return;
    if (!r.ok()) {
      self->teardown(call, "answer failed: " + r.error);
      return;
    }
    self->ari_->external_media(
        self->st_.cfg.media_address, call->uuid, self->st_.cfg.media_format,
        [self, call](AriResponse m) {
          if (!m.ok() || !m.body.is_object()) {
            self->teardown(call, "externalMedia failed: " + m.error);
            return;
          }
          call->media = str(m.body.as_object(), "id");
          self->by_media_[call->media] = call;
          if (call->ending) {  // the caller left meanwhile
            self->teardown(call, "caller left");
            return;
          }
          self->ari_->create_bridge([self, call](AriResponse b) {
            if (b.ok() && b.body.is_object()) call->bridge = str(b.body.as_object(), "id");
            if (!b.ok() || call->ending) {
              self->teardown(call, b.ok() ? "caller left" : "bridge failed: " + b.error);
              return;
            }
            self->try_bridge(call);
          });
        });
  };
  if (state == "Up") {
    after_answer(AriResponse{204, {}, {}});
  } else {
    ari_->answer(id, after_answer);
  }
}

void AriPath::try_bridge(const std::shared_ptr<AriCall>& call) {
  if (call->ending || call->bridged || call->bridge.empty() || call->media.empty() ||
      !call->media_in_stasis) {
    return;
  }
  call->bridged = true;
  auto self = shared_from_this();
  ari_->add_to_bridge(call->bridge, call->caller + "," + call->media, [self, call](AriResponse a) {
    if (!a.ok()) self->teardown(call, "bridging failed: " + a.error);
  });
}

void AriPath::channel_gone(const std::string& id, int cause) {
  if (auto entry = st_.pending_originate(id)) {
    OriginateResult res;
    res.outcome = outcome_from_cause(cause);
    res.detail = "cause " + std::to_string(cause);
    st_.finish_originate(entry, res);
  }
  st_.channels.forget(id);
  if (auto it = calls_.find(id); it != calls_.end()) {
    auto call = it->second;
    call->caller.clear();  // gone: nothing to hang up
    calls_.erase(it);
    teardown(call, "caller hung up");
  } else if (auto m = by_media_.find(id); m != by_media_.end()) {
    auto call = m->second;
    by_media_.erase(m);
    call->media.clear();
    teardown(call, "AudioSocket leg ended");
  }
}

void AriPath::teardown(const std::shared_ptr<AriCall>& call_ref, const std::string& why) {
  // A copy: callers pass map entries (calls_ / by_media_) that are erased below.
  const std::shared_ptr<AriCall> call = call_ref;
  auto ignore = [](AriResponse) {};
  if (!call->ending) {
    call->ending = true;
    spdlog::info("ARI: call uuid={} ends: {}", call->uuid, why);
  }
  by_uuid_.erase(call->uuid);
  // Each piece goes exactly once: hang up what is still there, destroy the bridge.
  if (!call->bridge.empty()) {
    ari_->destroy_bridge(call->bridge, ignore);
    call->bridge.clear();
  }
  if (!call->media.empty()) {
    ari_->hangup(call->media, "normal", ignore);
    by_media_.erase(call->media);
    call->media.clear();
  }
  if (!call->caller.empty()) {
    if (!call->transferred) ari_->hangup(call->caller, "normal", ignore);
    // Its facts go too: after StasisEnd this app may hear nothing more of the channel (a
    // Local channel, or one continued in the dialplan, sends it no ChannelDestroyed).
    st_.channels.forget(call->caller);
    calls_.erase(call->caller);
    call->caller.clear();
  }
}

void AriPath::run_action(const std::string& uuid, const agent::ActionRequest& r,
                         const std::string& context, std::function<void(std::string)> done) {
  std::shared_ptr<AriCall> call;
  if (auto c = calls_.find(st_.channels.id_of(uuid)); c != calls_.end()) call = c->second;
  if (!call || call->ending || call->caller.empty()) {
    st_.finish_action(uuid, r, "the call is not (or no longer) in the Stasis app", done);
    return;
  }
  auto self = shared_from_this();
  auto finish = [self, uuid, r, done](AriResponse res) {
    self->st_.finish_action(uuid, r, res.ok() ? std::string() : "ARI: " + res.error, done);
  };
  switch (r.kind) {
    case agent::ActionRequest::Kind::transfer:
      // The caller leaves Stasis for the dialplan; its AudioSocket leg and bridge go away.
      call->transferred = true;
      ari_->continue_in_dialplan(call->caller, context, r.target, 1,
                                 [self, call, finish](AriResponse res) {
                                   if (!res.ok()) call->transferred = false;
                                   finish(std::move(res));
                                 });
      return;
    case agent::ActionRequest::Kind::send_dtmf: {
      std::string digits = r.digits;
      for (char& c : digits) {
        if (c == 'w') c = ',';  // ARI's pause between digits
      }
      ari_->dtmf(call->caller, digits, r.digit_ms, finish);
      return;
    }
    case agent::ActionRequest::Kind::set_variable:
      ari_->set_variable(call->caller, r.name, r.value, finish);
      return;
    case agent::ActionRequest::Kind::originate:
      return;  // run_action places new calls itself
    case agent::ActionRequest::Kind::start_moh:
    case agent::ActionRequest::Kind::stop_moh:
      // On the caller's channel only. Asterisk runs it as a generator on that channel
      // (res/stasis/control.c app_control_moh_start -> ast_moh_start): it is written towards
      // the caller, never into the bridge, so the AudioSocket leg does not hear it; and while
      // it runs, the bridge's voice frames to the caller are dropped (main/channel.c,
      // ast_write_stream: a generator without AST_FLAG_WRITE_INT keeps the channel).
      ari_->music_on_hold(call->caller, r.kind == agent::ActionRequest::Kind::start_moh, r.name,
                          finish);
      return;
  }
}

void AriPath::originate(OriginateRequest req, std::function<void(OriginateResult)> done) {
  const ControlConfig& cfg = st_.cfg;
  std::string endpoint = cfg.originate_channel;
  if (auto p = endpoint.find("${NUMBER}"); p != std::string::npos) endpoint.replace(p, 9, req.to);
  std::map<std::string, std::string> params{
      {"endpoint", endpoint},
      {"app", cfg.ari.app},
      {"appArgs", "outbound"},
      {"timeout", std::to_string(std::max<long>(1, cfg.originate_timeout.count() / 1000))}};
  const std::string cid = req.caller_id.empty() ? cfg.originate_caller_id : req.caller_id;
  if (!cid.empty()) params["callerId"] = cid;
  std::map<std::string, std::string> vars = req.variables;
  if (!req.agent.empty()) vars["VB_AGENT"] = req.agent;
  vars["VB_OUTBOUND"] = req.to;
  if (!req.requested_by.empty()) vars["VB_REQUESTED_BY"] = req.requested_by;
  auto entry = st_.begin_originate(req.to, std::move(done));
  entry->variables = vars;
  // Our own channel id, so its events are recognised at once.
  const std::string id = new_uuid();
  params["channelId"] = id;
  st_.track_originate(entry, id, "no answer or hangup reported by Asterisk");
  ari_->originate(params, vars, [self = shared_from_this(), entry](AriResponse r) {
    if (r.ok()) return;  // ringing: StasisStart or ChannelDestroyed tells the rest
    OriginateResult res;
    res.detail = "ARI: " + r.error;
    self->st_.finish_originate(entry, res);
  });
}

}  // namespace

std::shared_ptr<ControlPath> make_ari_path(Controller::State& state) {
  return std::make_shared<AriPath>(state);
}

}  // namespace voxbridge::control
