#include "voxbridge/server/server.hpp"

#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/net/error_text.hpp"
#include "voxbridge/pipeline/pipeline.hpp"
#include "voxbridge/pipeline/speech_agent.hpp"
#include "voxbridge/provider_host/builtin_providers.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <thread>

namespace voxbridge::server {

namespace asio = boost::asio;

std::size_t resolve_threads(std::size_t configured) {
  if (configured != 0) return configured;
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

namespace {

using MakeAgent = std::function<std::unique_ptr<agent::Agent>()>;

MakeAgent agent_factory(const config::Config& cfg, const agent::AgentSpec& spec,
                        const std::shared_ptr<providers::ProviderClients>& clients,
                        const config::RouteConfig* route = nullptr) {
  const auto& g = cfg.general;
  if (spec.type == agent::AgentSpec::Type::speech) {
    auto factory = std::make_shared<pipeline::SpeechAgentFactory>(
        cfg.speech_agents.at(spec.name), g.internal_rate_hz, g.resampler_quality, clients);
    return [factory] { return factory->create(); };
  }
  if (spec.type == agent::AgentSpec::Type::pipeline) {
    pipeline::PipelineSpec ps = cfg.pipelines.at(spec.name);
    if (route != nullptr && route->language) ps.language = *route->language;
    if (route != nullptr && route->greeting) {
      ps.greeting = *route->greeting;
      ps.greeting_file.clear();
    }
    if (route != nullptr) {
      ps.dtmf = route->dtmf.value_or(ps.dtmf);
      ps.dtmf_terminator = route->dtmf_terminator.value_or(ps.dtmf_terminator);
      ps.dtmf_timeout = route->dtmf_timeout.value_or(ps.dtmf_timeout);
      ps.dtmf_max_digits = route->dtmf_max_digits.value_or(ps.dtmf_max_digits);
    }
    auto factory = std::make_shared<pipeline::PipelineFactory>(std::move(ps), g.internal_rate_hz,
                                                               g.resampler_quality, clients);
    return [factory] { return factory->create(); };
  }
  auto factory =
      std::make_shared<agent::AgentFactory>(spec, g.internal_rate_hz, g.resampler_quality);
  return [factory] { return factory->create(); };
}

/// The agents the calls of `cfg` may reach: each listener's and each route's, once each.
std::vector<std::string> agents_in_use(const config::Config& cfg) {
  std::vector<std::string> out;
  auto add = [&out](const std::string& a) {
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  };
  for (const auto& l : cfg.listeners) add(l.agent);
  for (const auto& r : cfg.routes) add(r.agent);
  return out;
}

/// True if an agent in use talks to the built-in providers (address `builtin`): the server
/// then serves them in process.
bool uses_builtin_providers(const config::Config& cfg) {
  for (const auto& a : agents_in_use(cfg)) {
    const auto it = cfg.pipelines.find(a);
    if (it == cfg.pipelines.end()) continue;
    const auto& p = it->second;
    for (const auto* t : {&p.asr, &p.llm, &p.tts}) {
      if (t->address == config::kBuiltinAddress) return true;
    }
  }
  return false;
}

/// True if every condition of the route holds for the call.
bool route_matches(const config::RouteConfig& r, const agent::CallInfo& info) {
  if (!r.listeners.empty() &&
      std::find(r.listeners.begin(), r.listeners.end(), info.listener) == r.listeners.end()) {
    return false;
  }
  if (!r.caller.empty() && !guard::match_dial_pattern(r.caller, info.caller_number)) {
    return false;
  }
  if (!r.called.empty() && !guard::match_dial_pattern(r.called, info.called_number)) {
    return false;
  }
  for (const auto& [name, pattern] : r.variables) {
    auto it = info.variables.find(name);
    if (it == info.variables.end() || !guard::match_dial_pattern(pattern, it->second)) {
      return false;
    }
  }
  return true;
}

}  // namespace

const char* rejection_name(Rejection r) {
  switch (r) {
    case Rejection::max_calls:
      return "max_calls";
    case Rejection::not_allowed:
      return "not_allowed";
    case Rejection::rate_limited:
      return "rate_limited";
    case Rejection::peer_limit:
      return "peer_limit";
  }
  return "?";
}

std::uint64_t Totals::rejected_total() const {
  std::uint64_t n = 0;
  for (auto r : rejected) n += r;
  return n;
}

Server::Server(const config::Config& cfg)
    : cfg_(cfg),
      calls_(new session::SessionList[resolve_threads(cfg.general.threads)]),
      pool_(resolve_threads(cfg.general.threads)) {
  const auto& g = cfg_.general;
  policy_ = std::make_shared<guard::SharedPolicy>(cfg_.control.allow);
  if (uses_builtin_providers(cfg_)) {
    // The offline providers, served in process and reached over gRPC like any other.
    provider_host::BuiltinOptions o;
    o.rules = cfg_.rules;
    o.sphinx.decoders = g.builtin_asr_decoders;
    o.tts_cache_bytes = g.builtin_tts_cache_mb << 20;
    o.openai = cfg_.openai;
    builtin_ = std::make_unique<provider_host::BuiltinProviders>(std::move(o));
    spdlog::info("built-in providers (PocketSphinx, rules, Flite{}) on {} (this user only)",
                 cfg_.openai.empty() ? "" : ", OpenAI-compatible", builtin_->address());
  }
  if (cfg_.recording.enabled) {
    recording::RecorderOptions ro;
    ro.directory = cfg_.recording.directory;
    ro.sample_rate_hz = g.internal_rate_hz;
    ro.queue_blocks = cfg_.recording.queue_blocks;
    ro.max_age = cfg_.recording.max_age;
    ro.max_total_bytes = cfg_.recording.max_total_bytes;
    recorder_ = std::make_unique<recording::Recorder>(std::move(ro));
    spdlog::info("recording calls to {}", cfg_.recording.directory);
  }
  if (!cfg_.webhook.url.empty())
    webhooks_ = std::make_unique<webhooks::WebhookSender>(cfg_.webhook);
  for (std::size_t i = 0; i < pool_.size(); ++i) {
    thread_counters_.push_back(std::make_unique<ThreadCounters>(cfg_.listeners.size()));
    clocks_.push_back(std::make_unique<playout::PacingClock>(pool_.context(i).get_executor()));
    mailboxes_.push_back(std::make_shared<session::Mailbox>(pool_.context(i).get_executor()));
    // Provider messages for this thread's calls ride along with the clock's wake-ups.
    mailboxes_.back()->attach(&clocks_.back()->next_wake());
    clocks_.back()->on_wake([m = mailboxes_.back()] { m->drain(); });
  }
  for (const auto& l : cfg_.listeners) {
    peer_tables_.push_back(std::make_unique<access::PeerTable>(l.peer_limits));
  }
  {
    auto snap = std::make_shared<Snapshot>();
    snap->cfg = cfg_;
    snap->sessions = build_sessions(snap->cfg);
    live_ = std::move(snap);
  }
  for (std::size_t i = 0; i < cfg_.listeners.size(); ++i) {
    const auto& l = cfg_.listeners[i];
    try {
      listeners_.push_back(std::make_unique<net::Listener>(
          pool_, l.host, l.port, [this, i](asio::ip::tcp::socket s, std::size_t index) {
            on_accept(i, std::move(s), index);
          }));
    } catch (const std::exception& e) {
      throw std::runtime_error("listener " + l.name + ": cannot listen on " + l.host + ":" +
                               std::to_string(l.port) + ": " + net::error_text(e));
    }
  }
  if (cfg_.control.mode != control::ControlConfig::Mode::none) {
    control::ControlConfig cc = cfg_.control;
    if (cc.media_address.empty()) {
      // ARI mode: Asterisk connects the AudioSocket leg to the first listener.
      const auto& l = cfg_.listeners.front();
      cc.media_address = l.host + ":" + std::to_string(listeners_.front()->port());
    }
    control_ = std::make_unique<control::Controller>(std::move(cc));
  }
  if (!g.http_listen.empty()) {
    http_api::HttpApiOptions o;
    net::split_host_port(g.http_listen, o.host, o.port);
    o.token = g.http_token;
    o.max_connections = g.http_max_connections;
    http_api::HttpHandlers h;
    h.controller = control_.get();
    h.transfers = transfers_;
    h.registrations = registrations_;
    h.active_calls = [this] { return active_calls(); };
    h.metrics = [this] { return metrics_text(); };
    h.not_ready = [this] { return not_ready(); };
    h.status = [this] { return status_json(); };
    h.events = [this](const std::string& uuid, std::size_t from) {
      return events_json(uuid, from);
    };
    http_ = std::make_unique<http_api::HttpApi>(std::move(o), std::move(h));
  }
}

Server::~Server() {
  {
    std::lock_guard lock(monitor_mu_);
    monitor_stop_ = true;
  }
  monitor_cv_.notify_all();
  if (provider_monitor_.joinable()) provider_monitor_.join();
  if (http_) http_->stop();
  if (control_) control_->stop();
  for (auto& l : listeners_) l->stop();
  pool_.stop_now();
  for (auto& m : mailboxes_) m->close();  // provider callbacks still in flight are dropped
  // The io threads are gone. Calls reading on their tick hold themselves (no pending Asio
  // operation does): let them go; the io contexts, destroyed next, release the others.
  for (std::size_t i = 0; i < pool_.size(); ++i) {
    std::vector<std::shared_ptr<session::CallSession>> live;
    for (auto& s : calls_[i]) live.push_back(s.shared_from_this());
    for (auto& s : live) s->abandon();
  }
  // Provider streams end on gRPC's threads; the channels go only once they all have.
  if (!channels_->wait_unused(std::chrono::seconds(3))) {
    spdlog::warn("provider streams still open 3 s after the calls ended; stopping anyway");
  }
}

std::vector<Server::ProviderProbe> Server::probe_providers(
    std::chrono::milliseconds timeout) const {
  return probe_providers(timeout, true);
}

std::vector<Server::ProviderProbe> Server::probe_providers(std::chrono::milliseconds timeout,
                                                           bool check) const {
  // Each provider a listener's or route's agent uses, once: the standard gRPC health check.
  std::vector<ProviderProbe> out;
  const auto snap = live();
  const config::Config& cfg = snap->cfg;
  std::vector<std::string> done;
  for (const auto& a : agents_in_use(cfg)) {
    std::vector<std::pair<const char*, const providers::ProviderTarget*>> used;
    if (auto it = cfg.pipelines.find(a); it != cfg.pipelines.end()) {
      used = {{"voxbridge.asr.v1.Recognizer", &it->second.asr},
              {"voxbridge.llm.v1.Dialogue", &it->second.llm},
              {"voxbridge.tts.v1.Synthesizer", &it->second.tts}};
    } else if (auto sp = cfg.speech_agents.find(a); sp != cfg.speech_agents.end()) {
      used = {{"voxbridge.agent.v1.Agent", &sp->second.agent}};
    }
    for (const auto& [service, t] : used) {
      const std::string key = t->name + "/" + service;
      if (std::find(done.begin(), done.end(), key) != done.end()) continue;
      done.push_back(key);
      ProviderProbe p{t->name, t->address, service, false, ""};
      if (!check) {
        out.push_back(std::move(p));
        continue;
      }
      auto h = providers::check_health(channels_->get(*t), service, timeout, &p.detail);
      if (h == providers::Health::unknown_service) {
        // Many servers only report their overall health (the empty service name).
        p.detail.clear();
        h = providers::check_health(channels_->get(*t), "", timeout, &p.detail);
      }
      p.serving = h == providers::Health::serving;
      if (!p.serving && p.detail.empty()) p.detail = providers::health_name(h);
      out.push_back(std::move(p));
    }
  }
  return out;
}

void Server::check_providers(std::chrono::milliseconds timeout) const {
  // A provider that fails is reported, not fatal: calls to it get the pipeline's fallback
  // until it is back (and /readyz says not ready meanwhile).
  for (const auto& p : probe_providers(timeout)) {
    if (p.serving) {
      spdlog::info("provider {} at {}: {} serving", p.name, p.address, p.service);
    } else {
      spdlog::warn("provider {} at {}: {} {}", p.name, p.address, p.service,
                   logtext::log_text(p.detail));
    }
  }
}

void Server::monitor_providers() {
  std::string last;
  std::unique_lock lock(monitor_mu_);
  while (!monitor_stop_) {
    lock.unlock();
    std::string down;
    for (const auto& p : probe_providers(std::chrono::seconds(1))) {
      if (!p.serving) {
        down = "provider " + p.name + " (" + p.service + ") down: " + p.detail;
        break;
      }
    }
    if (down != last) {
      if (down.empty()) {
        spdlog::info("providers: all serving again");
      } else {
        spdlog::warn("not ready: {}", logtext::log_text(down));
      }
      last = down;
    }
    {
      std::lock_guard g(provider_mu_);
      provider_down_ = down;
    }
    lock.lock();
    monitor_cv_.wait_for(lock, cfg_.general.provider_check_interval,
                         [this] { return monitor_stop_; });
  }
}

void Server::start() {
  if (started_) return;
  started_ = true;
  for (auto& l : listeners_) l->start();
  const int rt = cfg_.general.realtime_priority;
  const std::string refused = pool_.start(rt);
  if (rt > 0 && refused.empty()) {
    spdlog::info("io threads run under SCHED_RR, priority {}", rt);
  } else if (rt > 0) {
    spdlog::warn(
        "realtime_priority = {} refused ({}): io threads run with normal scheduling; grant "
        "CAP_SYS_NICE (systemd: AmbientCapabilities=CAP_SYS_NICE, Docker: --cap-add SYS_NICE) "
        "or an RLIMIT_RTPRIO (LimitRTPRIO=)",
        rt, refused);
  }
  if (control_) control_->start();
  if (http_) http_->start();
  if (webhooks_) webhooks_->start();
  if (http_ && cfg_.general.provider_check_interval.count() > 0) {
    if (!probe_providers(std::chrono::milliseconds(0), false).empty()) {
      std::lock_guard lock(provider_mu_);
      provider_down_ = "starting: providers not checked yet";  // until the first check
    }
    provider_monitor_ = std::thread([this] { monitor_providers(); });
  }
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    const auto& l = cfg_.listeners[i];
    spdlog::info("listening on {}:{} listener={} codec={} agent={}", l.host, listeners_[i]->port(),
                 l.name, session::codec_mode_name(l.codec), l.agent);
  }
}

unsigned short Server::http_port() const {
  return http_ ? http_->port() : 0;
}

std::vector<unsigned short> Server::ports() const {
  std::vector<unsigned short> p;
  for (const auto& l : listeners_) p.push_back(l->port());
  return p;
}

void Server::reject(Rejection why, const asio::ip::tcp::endpoint& peer, std::string_view detail) {
  rejected_[static_cast<std::size_t>(why)].add();
  // One line per refused connection would let a flood fill the disk: the counter says how
  // many; the log says the first of each second.
  static thread_local auto last = std::chrono::steady_clock::time_point{};
  const auto now = std::chrono::steady_clock::now();
  if (now - last >= std::chrono::seconds(1)) {
    last = now;
    spdlog::warn("rejecting connection from {}:{}: {} ({})", peer.address().to_string(),
                 peer.port(), rejection_name(why), detail);
  }
}

void Server::on_accept(std::size_t listener, asio::ip::tcp::socket socket, std::size_t index) {
  // Admission happens here, on the single accepting thread, so a burst cannot overshoot.
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  const auto snap = live();
  const auto& l = snap->cfg.listeners[listener];
  if (!l.allow.contains(peer.address())) {
    reject(Rejection::not_allowed, peer, "not in the listener's allow list");
    socket.close(ec);
    return;
  }
  const auto max = static_cast<std::int64_t>(snap->cfg.general.max_calls);
  if (admitted_.fetch_add(1) >= max) {
    admitted_.fetch_sub(1);
    reject(Rejection::max_calls, peer, "max_calls=" + std::to_string(max) + " reached");
    socket.close(ec);
    return;
  }
  const auto verdict = peer_tables_[listener]->admit(peer.address());
  if (verdict != access::Verdict::admit) {
    admitted_.fetch_sub(1);
    reject(
        verdict == access::Verdict::rate_limited ? Rejection::rate_limited : Rejection::peer_limit,
        peer,
        verdict == access::Verdict::rate_limited ? "connect_rate exceeded"
                                                 : "max_calls_per_peer reached");
    socket.close(ec);
    return;
  }
  asio::post(socket.get_executor(), [this, listener, index, sc = snap->sessions[listener],
                                     s = std::move(socket)]() mutable {
    session::CallSession::start(std::move(s), std::move(sc), *clocks_[index], &calls_[index],
                                mailboxes_[index], &thread_counters_[index]->listeners[listener]);
  });
}

std::vector<std::shared_ptr<const session::SessionConfig>> Server::build_sessions(
    config::Config& cfg) {
  const auto& g = cfg.general;
  if (builtin_) {  // the one place the address `builtin` becomes the in-process server's
    for (auto& [name, p] : cfg.pipelines) {
      for (auto* t : {&p.asr, &p.llm, &p.tts}) {
        if (t->address == config::kBuiltinAddress) t->address = builtin_->address();
      }
    }
  }
  // Routes: one agent factory each, shared by every listener's calls.
  auto routing = std::make_shared<Routing>();
  routing->routes = cfg.routes;
  for (const auto& r : cfg.routes) {
    routing->agents.push_back(agent_factory(cfg, *cfg.find_agent(r.agent), clients_, &r));
  }
  std::vector<std::shared_ptr<const session::SessionConfig>> out;
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
    const auto& l = cfg.listeners[i];
    const agent::AgentSpec* spec = cfg.find_agent(l.agent);
    if (spec == nullptr) throw std::runtime_error("listener " + l.name + ": no agent " + l.agent);
    auto sc = std::make_shared<session::SessionConfig>();
    sc->listener = l.name;
    sc->limits = g.limits;
    sc->media.codec = l.codec;
    sc->media.auto_law = l.g711;
    sc->media.internal_rate_hz = g.internal_rate_hz;
    sc->media.resampler_quality = g.resampler_quality;
    sc->media.playout_capacity = g.playout_buffer;
    sc->media.playout_low_watermark = g.playout_low_watermark;
    sc->media.playout_high_watermark = g.playout_high_watermark;
    sc->media.early_silence = g.early_silence;
    sc->read_on_tick = g.read_on_tick;
    sc->tick_alignment = g.tick_alignment;
    sc->tick_alignment_margin = g.tick_alignment_margin;
    sc->agent_name = l.agent;
    sc->make_agent = agent_factory(cfg, *spec, clients_);
    sc->admitted = &admitted_;
    sc->peers = peer_tables_.at(i).get();
    sc->recorder = recorder_.get();
    sc->record = cfg.recording.record;
    sc->record_audio = cfg.recording.audio;
    sc->record_transcript = cfg.recording.transcript;
    sc->webhooks = webhooks_.get();
    sc->keep_events = !g.http_listen.empty();
    sc->ended_events = [this](const std::string& uuid, std::vector<std::string> events) {
      constexpr std::size_t kMax = 256;
      constexpr auto kKeep = std::chrono::seconds(60);
      const auto now = std::chrono::steady_clock::now();
      std::lock_guard lock(ended_mu_);
      while (!ended_.empty() && (ended_.size() >= kMax || now - ended_.front().at > kKeep)) {
        ended_.pop_front();
      }
      ended_.push_back({uuid, now, std::move(events)});
    };
    if (!cfg.routes.empty() || l.require_registration || !g.http_listen.empty()) {
      sc->plan_call = [routing, reg = registrations_, require = l.require_registration](
                          agent::CallInfo& info) { return plan(*routing, *reg, require, info); };
    }
    if (cfg.control.mode != control::ControlConfig::Mode::none) {
      sc->describe_call = [this](agent::CallInfo& info) { control_->describe(info); };
    } else {
      // No control path: a transfer passes the same rule and allowlists, and is noted for the
      // dialplan to fetch over the HTTP API (VB_TRANSFER) when the API is on.
      sc->describe_call = [policy = policy_, denied = denied_without_control_,
                           book = g.http_listen.empty() ? nullptr : transfers_,
                           context = cfg.control.transfer_context](agent::CallInfo& info) {
        info.note_transfer = [policy, denied, book, context, uuid = info.uuid,
                              used = std::make_shared<std::size_t>(0)](
                                 const std::string& target,
                                 const std::string& asked) -> std::string {
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
            spdlog::warn("call uuid={}: transfer to {}: denied: {}", uuid,
                         logtext::log_text(target, 80), why);
            return why;
          }
          if (book) book->note(uuid, target);
          return {};
        };
      };
    }
    out.push_back(std::move(sc));
  }
  return out;
}

std::shared_ptr<const Server::Snapshot> Server::live() const {
  std::lock_guard lock(live_mu_);
  return live_;
}

bool Server::reload(const config::Config& next, std::string& error) {
  // What a running process cannot change: where it listens, its threads, the in-process
  // providers' existence, the recorder, the control path and the HTTP API (restart for those).
  const auto& now = cfg_;
  auto differs = [&](const char* what) {
    error = std::string(what) + " cannot change without a restart";
    return false;
  };
  if (next.listeners.size() != now.listeners.size()) return differs("the listeners");
  for (std::size_t i = 0; i < now.listeners.size(); ++i) {
    const auto& a = now.listeners[i];
    const auto& b = next.listeners[i];
    if (a.name != b.name || a.host != b.host || a.port != b.port) {
      return differs("the listeners (names and addresses)");
    }
  }
  if (uses_builtin_providers(next) && !builtin_) return differs("starting the built-in providers");
  if (next.recording.enabled != now.recording.enabled ||
      next.recording.directory != now.recording.directory) {
    return differs("[recording] directory");
  }
  if (next.webhook.url != now.webhook.url || next.webhook.secret != now.webhook.secret) {
    return differs("[webhook] url and secret");
  }
  if (next.control.mode != now.control.mode) return differs("[control] mode");
  if (next.general.http_listen != now.general.http_listen) return differs("http_listen");
  // Everything else that was read once at start must be unchanged too: a reload never says
  // "reloaded" while an old value stays in force.
  {
    control::ControlConfig a = now.control;
    control::ControlConfig b = next.control;
    a.allow = b.allow = {};  // the policy is applied at once (below)
    if (a.ami != b.ami) return differs("[ami]");
    if (a.ari != b.ari) return differs("[ari]");
    if (!(a == b)) return differs("[control] (other than the allow_* lists and the caps)");
  }
  const auto& gn = next.general;
  const auto& go = now.general;
  if (gn.threads != go.threads || gn.realtime_priority != go.realtime_priority) {
    return differs("threads and realtime_priority");
  }
  if (gn.internal_rate_hz != go.internal_rate_hz) return differs("internal_rate_hz");
  if (gn.http_max_connections != go.http_max_connections) return differs("http_max_connections");
  if (gn.provider_check_interval != go.provider_check_interval) {
    return differs("provider_check_interval_s");
  }
  if (builtin_ && (gn.builtin_asr_decoders != go.builtin_asr_decoders ||
                   gn.builtin_tts_cache_mb != go.builtin_tts_cache_mb || next.rules != now.rules ||
                   next.openai != now.openai)) {
    return differs(
        "the built-in providers' settings ([rules-*], [intent-*], [openai-*], builtin_*)");
  }
  if (!(next.recording == now.recording)) {
    // Whether a call is recorded (record, audio, transcript) is per call; the recorder's own
    // settings are not.
    auto a = now.recording;
    auto b = next.recording;
    a.record = b.record;
    a.audio = b.audio;
    a.transcript = b.transcript;
    if (!(a == b)) return differs("[recording] (other than record, audio, transcript)");
  }
  if (!(next.webhook == now.webhook)) return differs("[webhook]");
  auto snap = std::make_shared<Snapshot>();
  snap->cfg = next;
  try {
    snap->sessions = build_sessions(snap->cfg);
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
  for (std::size_t i = 0; i < next.listeners.size(); ++i) {
    peer_tables_[i]->set_limits(next.listeners[i].peer_limits);
  }
  // The policy and the token take effect at once, for calls in progress too.
  policy_->set(next.control.allow);
  if (control_) control_->set_policy(next.control.allow);
  transfers_->retain_if(
      [p = policy_->get(), &ctx = cfg_.control.transfer_context](const std::string& target) {
        return p->check_transfer(target, ctx).empty();  // noted before, no longer allowed: gone
      });
  if (http_) http_->set_token(next.general.http_token);
  {
    std::lock_guard lock(live_mu_);
    live_ = std::move(snap);  // calls in progress keep the configuration they started with
  }
  monitor_cv_.notify_all();  // check the (maybe new) providers now
  return true;
}

session::CallPlan Server::plan(const Routing& routing, http_api::Registrations& registrations,
                               bool require_registration, agent::CallInfo& info) {
  session::CallPlan p;
  auto meta = registrations.take(info.uuid);
  if (meta) {
    // Pre-registered facts: well-known keys fill the call's facts, the rest are variables.
    for (auto& [k, v] : *meta) {
      if (k == "caller_number") {
        info.caller_number = v;
      } else if (k == "caller_name") {
        info.caller_name = v;
      } else if (k == "called_number") {
        info.called_number = v;
      } else {
        info.variables[k] = v;
      }
    }
  } else if (require_registration) {
    p.refuse = "UUID not pre-registered (POST /v1/calls/" + info.uuid + " before AudioSocket)";
    return p;
  }
  for (std::size_t i = 0; i < routing.routes.size(); ++i) {
    const auto& r = routing.routes[i];
    if (!route_matches(r, info)) continue;
    p.make_agent = routing.agents[i];
    p.agent_name = r.agent;
    p.route = r.name;
    p.record = r.record;
    break;
  }
  return p;
}

void Server::stop_accepting() {
  for (auto& l : listeners_) l->stop();
}

void Server::hangup_all(std::string_view reason) {
  const std::string r(reason);
  for (std::size_t i = 0; i < pool_.size(); ++i) {
    asio::post(pool_.context(i), [this, i, r] {
      // Collect first: hangup may unlink (finish) a session while we walk the list.
      std::vector<std::shared_ptr<session::CallSession>> live;
      for (auto& s : calls_[i]) live.push_back(s.shared_from_this());
      for (auto& s : live) s->hangup(r);
    });
  }
}

std::size_t Server::shutdown(std::chrono::milliseconds drain) {
  begin_drain();
  stop_accepting();
  const auto deadline = std::chrono::steady_clock::now() + drain;
  if (active_calls() > 0) {
    spdlog::info("draining: {} call(s) active, waiting up to {} s", active_calls(),
                 std::chrono::duration<double>(drain).count());
  }
  while (active_calls() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto forced = static_cast<std::size_t>(std::max<std::int64_t>(0, active_calls()));
  if (forced > 0) {
    spdlog::info("drain time over: hanging up {} call(s)", forced);
    hangup_all("server shutdown");
    const auto hard = std::chrono::steady_clock::now() + live()->cfg.general.limits.close_grace +
                      std::chrono::seconds(1);
    while (active_calls() > 0 && std::chrono::steady_clock::now() < hard) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  pool_.stop_now();
  if (webhooks_) webhooks_->stop(std::chrono::seconds(2));  // call_ended of the last calls
  return forced;
}

}  // namespace voxbridge::server
