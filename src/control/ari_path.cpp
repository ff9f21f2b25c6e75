// ARI mode: a call enters Stasis(voxbridge); voxbridge answers it, asks Asterisk for an
// AudioSocket leg to its own listener (externalMedia, with a fresh UUID), bridges the two, and
// tears all of it down when either side ends. Agent actions go to the caller's channel over
// ARI; outbound calls are originated into the same app.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <random>

#include "control_state.hpp"

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

}  // namespace

void Controller::State::start_ari() {
  ari = AriClient::create(io.get_executor(), cfg.ari);
  ari->on_event([w = weak_from_this()](const json::object& e) {
    if (auto s = w.lock()) s->on_ari_event(e);
  });
  ari->on_state([w = weak_from_this()](bool up, std::string_view why) {
    auto s = w.lock();
    if (!s) return;
    s->ari_up = up;
    if (!up) s->counters.reconnects.fetch_add(1);
    spdlog::info("control: ARI {} ({})", up ? "up" : "down", why);
  });
  boost::asio::post(io, [a = ari] { a->start(); });
}

void Controller::State::stop_ari() {
  if (ari) ari->stop();
}

void Controller::State::on_ari_event(const json::object& e) {
  const std::string type = str(e, "type");
  const json::object* channel = obj(e, "channel");
  const std::string id = channel != nullptr ? str(*channel, "id") : std::string();
  if (type == "StasisStart" && channel != nullptr) {
    ari_stasis_start(*channel, e.if_contains("args"));
  } else if (type == "StasisEnd" && !id.empty()) {
    if (auto it = ari_calls.find(id); it != ari_calls.end()) {
      ari_teardown(it->second, it->second->transferred ? "caller transferred" : "caller left");
    } else if (auto m = ari_by_media.find(id); m != ari_by_media.end()) {
      ari_teardown(m->second, "AudioSocket leg ended");
    }
  } else if (type == "ChannelDestroyed" && !id.empty()) {
    int cause = 0;
    if (const auto* c = e.if_contains("cause"); c != nullptr && c->is_int64()) {
      cause = static_cast<int>(c->as_int64());
    }
    ari_channel_gone(id, cause);
  } else if (type == "ChannelHangupRequest" && !id.empty()) {
    spdlog::debug("ARI: hangup requested on {}", id);
  } else if (type == "ChannelDtmfReceived" && !id.empty()) {
    spdlog::debug("ARI: DTMF {} on {}", str(e, "digit"), id);
  } else if (type == "ChannelVarset" && !id.empty()) {
    const std::string name = str(e, "variable");
    if (name.rfind("VB_", 0) == 0 || name == "FROM_DID") {
      std::lock_guard lock(mu);
      if (auto c = channels.find(id); c != channels.end() && c->second.variables.size() < 64) {
        c->second.variables[name] = str(e, "value");
      }
    }
  } else if (type == "PlaybackFinished") {
    spdlog::debug("ARI: playback finished");
  } else if (type == "BridgeDestroyed") {
    if (const json::object* b = obj(e, "bridge")) {
      const std::string bid = str(*b, "id");
      for (auto& [cid, call] : ari_calls) {
        if (call->bridge == bid) call->bridge.clear();
      }
    }
  }
}

void Controller::State::ari_stasis_start(const json::object& channel, const json::value* args) {
  const std::string id = str(channel, "id");
  if (id.empty() || ari_calls.count(id) != 0) return;
  if (auto m = ari_by_media.find(id); m != ari_by_media.end()) {
    // Our leg, whose externalMedia response came before its StasisStart.
    const auto call = m->second;
    call->media_in_stasis = true;
    ari_try_bridge(call);
    return;
  }
  // An outbound call we originated: it answered.
  std::map<std::string, std::string> originate_vars;
  if (auto p = pending_originates.find(id); p != pending_originates.end()) {
    auto entry = p->second;
    originate_vars = entry->variables;
    OriginateResult res;
    res.outcome = OriginateResult::Outcome::answered;
    res.channel = str(channel, "name");
    finish_originate(entry, res);
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
    auto it = ari_by_uuid.find(uuid);
    if (it == ari_by_uuid.end() || it->second->ending) {
      ari->hangup(id, "normal", [](AriResponse) {});  // its call is gone: no leftover leg
      return;
    }
    it->second->media_in_stasis = true;
    ari_try_bridge(it->second);
    return;
  }

  if (ari_calls.size() >= kMaxChannels) {
    // Far beyond what one voxbridge serves: hang up rather than track without bound.
    spdlog::warn("ARI: {} calls in the app already: hanging up {}", ari_calls.size(), id);
    ari->hangup(id, "congestion", [](AriResponse) {});
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
  {
    std::lock_guard lock(mu);
    channels[id] = std::move(f);
    uuid_to_id[call->uuid] = id;
  }
  ari_calls[id] = call;
  ari_by_uuid[call->uuid] = call;
  spdlog::info("ARI: call {} ({}) entered {}: AudioSocket leg uuid={}", id, name, cfg.ari.app,
               call->uuid);
  auto self = shared_from_this();
  const std::string state = str(channel, "state");
  auto after_answer = [self, call](AriResponse r) {
    if (call->ending) return;
    if (!r.ok()) {
      self->ari_teardown(call, "answer failed: " + r.error);
      return;
    }
    self->ari->external_media(
        self->cfg.media_address, call->uuid, self->cfg.media_format, [self, call](AriResponse m) {
          if (!m.ok() || !m.body.is_object()) {
            self->ari_teardown(call, "externalMedia failed: " + m.error);
            return;
          }
          call->media = str(m.body.as_object(), "id");
          self->ari_by_media[call->media] = call;
          if (call->ending) {  // the caller left meanwhile
            self->ari_teardown(call, "caller left");
            return;
          }
          self->ari->create_bridge([self, call](AriResponse b) {
            if (b.ok() && b.body.is_object()) call->bridge = str(b.body.as_object(), "id");
            if (!b.ok() || call->ending) {
              self->ari_teardown(call, b.ok() ? "caller left" : "bridge failed: " + b.error);
              return;
            }
            self->ari_try_bridge(call);
          });
        });
  };
  if (state == "Up") {
    after_answer(AriResponse{204, {}, {}});
  } else {
    ari->answer(id, after_answer);
  }
}

void Controller::State::ari_try_bridge(const std::shared_ptr<AriCall>& call) {
  if (call->ending || call->bridged || call->bridge.empty() || call->media.empty() ||
      !call->media_in_stasis) {
    return;
  }
  call->bridged = true;
  auto self = shared_from_this();
  ari->add_to_bridge(call->bridge, call->caller + "," + call->media, [self, call](AriResponse a) {
    if (!a.ok()) self->ari_teardown(call, "bridging failed: " + a.error);
  });
}

void Controller::State::ari_channel_gone(const std::string& id, int cause) {
  if (auto p = pending_originates.find(id); p != pending_originates.end()) {
    auto entry = p->second;
    OriginateResult res;
    res.outcome = outcome_from_cause(cause);
    res.detail = "cause " + std::to_string(cause);
    finish_originate(entry, res);
  }
  {
    std::lock_guard lock(mu);
    if (auto c = channels.find(id); c != channels.end()) {
      if (!c->second.uuid.empty()) uuid_to_id.erase(c->second.uuid);
      channels.erase(c);
    }
  }
  if (auto it = ari_calls.find(id); it != ari_calls.end()) {
    auto call = it->second;
    call->caller.clear();  // gone: nothing to hang up
    ari_calls.erase(it);
    ari_teardown(call, "caller hung up");
  } else if (auto m = ari_by_media.find(id); m != ari_by_media.end()) {
    auto call = m->second;
    ari_by_media.erase(m);
    call->media.clear();
    ari_teardown(call, "AudioSocket leg ended");
  }
}

void Controller::State::ari_teardown(const std::shared_ptr<AriCall>& call_ref,
                                     const std::string& why) {
  // A copy: callers pass map entries (ari_calls / ari_by_media) that are erased below.
  const std::shared_ptr<AriCall> call = call_ref;
  auto ignore = [](AriResponse) {};
  if (!call->ending) {
    call->ending = true;
    spdlog::info("ARI: call uuid={} ends: {}", call->uuid, why);
  }
  ari_by_uuid.erase(call->uuid);
  // Each piece goes exactly once: hang up what is still there, destroy the bridge.
  if (!call->bridge.empty()) {
    ari->destroy_bridge(call->bridge, ignore);
    call->bridge.clear();
  }
  if (!call->media.empty()) {
    ari->hangup(call->media, "normal", ignore);
    ari_by_media.erase(call->media);
    call->media.clear();
  }
  if (!call->caller.empty()) {
    if (!call->transferred) ari->hangup(call->caller, "normal", ignore);
    {
      // Its facts go too: after StasisEnd this app may hear nothing more of the channel (a
      // Local channel, or one continued in the dialplan, sends it no ChannelDestroyed).
      std::lock_guard lock(mu);
      channels.erase(call->caller);
      uuid_to_id.erase(call->uuid);
    }
    ari_calls.erase(call->caller);
    call->caller.clear();
  }
}

void Controller::State::ari_action(const std::string& uuid, const agent::ActionRequest& r,
                                   const std::string& context,
                                   std::function<void(std::string)> done) {
  std::shared_ptr<AriCall> call;
  {
    std::lock_guard lock(mu);
    if (auto u = uuid_to_id.find(uuid); u != uuid_to_id.end()) {
      if (auto c = ari_calls.find(u->second); c != ari_calls.end()) call = c->second;
    }
  }
  if (!call || call->ending || call->caller.empty()) {
    finish_action(uuid, r, "the call is not (or no longer) in the Stasis app", done);
    return;
  }
  auto self = shared_from_this();
  auto finish = [self, uuid, r, done](AriResponse res) {
    self->finish_action(uuid, r, res.ok() ? std::string() : "ARI: " + res.error, done);
  };
  switch (r.kind) {
    case agent::ActionRequest::Kind::transfer:
      // The caller leaves Stasis for the dialplan; its AudioSocket leg and bridge go away.
      call->transferred = true;
      ari->continue_in_dialplan(call->caller, context, r.target, 1,
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
      ari->dtmf(call->caller, digits, r.digit_ms, finish);
      return;
    }
    case agent::ActionRequest::Kind::set_variable:
      ari->set_variable(call->caller, r.name, r.value, finish);
      return;
    case agent::ActionRequest::Kind::originate:
      return;  // run_action places new calls itself
  }
}

void Controller::State::ari_originate(OriginateRequest req,
                                      std::function<void(OriginateResult)> done) {
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
  ++outbound_active;
  counters.originates.fetch_add(1);
  auto entry = std::make_shared<PendingOriginate>();
  entry->done = std::move(done);
  entry->to = req.to;
  entry->variables = vars;
  entry->channel_id = new_uuid();  // our own channel id, so its events are recognised at once
  params["channelId"] = entry->channel_id;
  pending_originates[entry->channel_id] = entry;
  auto self = shared_from_this();
  ari->originate(params, vars, [self, entry](AriResponse r) {
    if (r.ok()) return;  // ringing: StasisStart or ChannelDestroyed tells the rest
    OriginateResult res;
    res.detail = "ARI: " + r.error;
    self->finish_originate(entry, res);
  });
  entry->timer = std::make_shared<boost::asio::steady_timer>(
      io, cfg.originate_timeout + std::chrono::seconds(15));
  entry->timer->async_wait([self, entry](const boost::system::error_code& ec) {
    if (ec) return;
    OriginateResult res;
    res.detail = "no answer or hangup reported by Asterisk";
    self->finish_originate(entry, res);
  });
}

}  // namespace voxbridge::control
