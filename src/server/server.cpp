#include "voxbridge/server/server.hpp"

#include "voxbridge/asr_deepgram/backend.hpp"
#include "voxbridge/asr_openai/backend.hpp"
#include "voxbridge/asr_vosk/backend.hpp"
#include "voxbridge/audio/resampler.hpp"
#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/net/error_text.hpp"
#include "voxbridge/provider_host/builtin_providers.hpp"
#include "voxbridge/providers/routed_clients.hpp"
#include "voxbridge/realtime_gemini/backend.hpp"
#include "voxbridge/realtime_openai/backend.hpp"
#include "voxbridge/riva/backend.hpp"
#include "voxbridge/server/routing.hpp"
#include "voxbridge/tools/tools.hpp"
#include "voxbridge/tts_elevenlabs/backend.hpp"
#include "voxbridge/tts_flite/flite_tts.hpp"
#include "voxbridge/tts_openai/backend.hpp"

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

void Server::start_backends() {
  // One in-process backend per [realtime-NAME] or [gemini-NAME] that an agent in use talks to;
  // the agents reach it through clients_ like a gRPC provider, without a gRPC hop.
  std::map<std::string, std::shared_ptr<providers::ProviderClients>> backends;
  for (const auto& a : agents_in_use(cfg_)) {
    const auto it = cfg_.speech_agents.find(a);
    if (it == cfg_.speech_agents.end()) continue;
    const auto& t = it->second.agent;
    if (t.backend.empty() || backends.count(t.backend) != 0) continue;
    if (t.backend.rfind("gemini:", 0) == 0) {
      auto g = std::make_shared<realtime_gemini::GeminiBackend>(cfg_.gemini.at(t.name),
                                                                cfg_.general.resampler_quality);
      spdlog::info("Gemini Live backend {}: {} model {}", t.name, g->options().url,
                   g->options().model);
      gemini_.push_back(g);
      backends[t.backend] = std::move(g);
      continue;
    }
    auto b = std::make_shared<realtime_openai::RealtimeBackend>(cfg_.realtime.at(t.name),
                                                                cfg_.general.resampler_quality);
    spdlog::info("OpenAI Realtime backend {}: {} model {}", t.name, b->options().url,
                 b->options().model);
    realtime_.push_back(b);
    backends[t.backend] = std::move(b);
  }
  // One per [deepgram-NAME], [elevenlabs-NAME], [transcription-NAME], [speech-NAME],
  // [vosk-NAME] or [riva-NAME] that a pipeline agent in use speaks with (a Riva serving both
  // recognition and voice is one backend).
  for (const auto& a : agents_in_use(cfg_)) {
    const auto it = cfg_.pipelines.find(a);
    if (it == cfg_.pipelines.end()) continue;
    const auto& t = it->second.asr;
    if (t.backend.rfind("deepgram:", 0) == 0 && backends.count(t.backend) == 0) {
      auto d = std::make_shared<asr_deepgram::DeepgramBackend>(cfg_.deepgram.at(t.name));
      spdlog::info("Deepgram recognizer {}: {} model {}", t.name, d->options().url,
                   d->options().model);
      deepgram_.push_back(d);
      backends[t.backend] = std::move(d);
    }
    const auto& v = it->second.tts;
    if (v.backend.rfind("elevenlabs:", 0) == 0 && backends.count(v.backend) == 0) {
      auto e = std::make_shared<tts_elevenlabs::ElevenLabsBackend>(cfg_.elevenlabs.at(v.name));
      spdlog::info("ElevenLabs voice {}: {} voice {} model {}", v.name, e->options().url,
                   e->options().voice_id, e->options().model_id);
      elevenlabs_.push_back(e);
      backends[v.backend] = std::move(e);
    }
    if (t.backend.rfind("transcription:", 0) == 0 && backends.count(t.backend) == 0) {
      auto r = std::make_shared<asr_openai::TranscriptionBackend>(cfg_.transcription.at(t.name));
      spdlog::info("Transcription recognizer {}: {} model {}", t.name, r->options().base_url,
                   r->options().model);
      transcription_.push_back(r);
      backends[t.backend] = std::move(r);
    }
    if (v.backend.rfind("speech:", 0) == 0 && backends.count(v.backend) == 0) {
      auto r = std::make_shared<tts_openai::SpeechBackend>(cfg_.speech.at(v.name));
      spdlog::info("Speech voice {}: {} model {} voice {}", v.name, r->options().base_url,
                   r->options().model, r->options().voice);
      speech_.push_back(r);
      backends[v.backend] = std::move(r);
    }
  }
  for (const auto& a : agents_in_use(cfg_)) {
    const auto it = cfg_.pipelines.find(a);
    if (it == cfg_.pipelines.end()) continue;
    for (const auto* t : {&it->second.asr, &it->second.tts}) {
      if (backends.count(t->backend) != 0) continue;
      if (t->backend.rfind("vosk:", 0) == 0) {
        auto b = std::make_shared<asr_vosk::VoskBackend>(cfg_.vosk.at(t->name));
        spdlog::info("Vosk recognizer {}: {}", t->name, b->options().address);
        vosk_.push_back(b);
        backends[t->backend] = std::move(b);
      } else if (t->backend.rfind("riva:", 0) == 0) {
        auto b = std::make_shared<riva::RivaBackend>(cfg_.riva.at(t->name));
        spdlog::info("Riva server {}: {}{}", t->name, b->options().address,
                     b->options().tls ? " (TLS)" : "");
        riva_.push_back(b);
        backends[t->backend] = std::move(b);
      }
    }
  }
  if (!backends.empty()) clients_ = providers::routed_clients(clients_, std::move(backends));
}

void Server::start_tools() {
  tools::RunnerOptions o;
  for (const auto& [name, t] : cfg_.tools) o.tools.push_back(t);
  // Each filler phrase is spoken once, here, by the built-in Flite voice (its own engine, no
  // cache: the runner keeps the audio), at the calls' internal rate.
  auto flite = std::make_shared<tts_flite::FliteEngine>(0);
  o.voice = [flite, rate = cfg_.general.internal_rate_hz,
             quality = cfg_.general.resampler_quality](const std::string& phrase) {
    const auto speech = flite->synthesize(phrase);
    audio::Resampler rs(tts_flite::FliteEngine::kRateHz, rate, quality, false);
    std::vector<std::int16_t> out(rs.max_output(speech.size()));
    out.resize(rs.process(speech, out));
    return out;
  };
  tools_ = std::make_unique<tools::ToolRunner>(std::move(o));
}

std::uint64_t Totals::rejected_total() const {
  std::uint64_t n = 0;
  for (auto r : rejected) n += r;
  return n;
}

Server::Server(const config::Config& cfg)
    : cfg_(cfg),
      admission_([&cfg] {
        std::vector<access::PeerLimits> limits;
        for (const auto& l : cfg.listeners) limits.push_back(l.peer_limits);
        return limits;
      }()),
      health_(
          channels_,
          [this] {
            auto snap = live();
            return std::shared_ptr<const config::Config>(snap, &snap->cfg);
          },
          cfg.general.provider_check_interval),
      calls_(new session::SessionList[resolve_threads(cfg.general.threads)]),
      pool_(resolve_threads(cfg.general.threads)) {
  const auto& g = cfg_.general;
  actions_.policy = std::make_shared<guard::SharedPolicy>(cfg_.control.allow);
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
  start_backends();
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
  if (!cfg_.tools.empty()) start_tools();
  for (std::size_t i = 0; i < pool_.size(); ++i) {
    thread_counters_.push_back(std::make_unique<ThreadCounters>(cfg_.listeners.size()));
    clocks_.push_back(std::make_unique<playout::PacingClock>(pool_.context(i).get_executor()));
    mailboxes_.push_back(std::make_shared<session::Mailbox>(pool_.context(i).get_executor()));
    // Provider messages for this thread's calls ride along with the clock's wake-ups.
    mailboxes_.back()->attach(&clocks_.back()->next_wake());
    clocks_.back()->on_wake([m = mailboxes_.back()] { m->drain(); });
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
  {
    // After the controller, which the calls' observers describe them with. The listeners
    // accept only once started.
    auto snap = std::make_shared<Snapshot>();
    snap->cfg = cfg_;
    snap->sessions = build_sessions(snap->cfg);
    live_ = std::move(snap);
  }
  if (!g.http_listen.empty()) {
    http_api::HttpApiOptions o;
    net::split_host_port(g.http_listen, o.host, o.port);
    o.token = g.http_token;
    o.max_connections = g.http_max_connections;
    http_api::HttpHandlers h;
    h.controller = control_.get();
    h.transfers = actions_.transfers;
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
  health_.stop();
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
  if (tools_) tools_->start();
  if (http_ && cfg_.general.provider_check_interval.count() > 0) health_.start();
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    const auto& l = cfg_.listeners[i];
    spdlog::info("listening on {}:{} listener={} codec={} agent={}", l.host, listeners_[i]->port(),
                 l.name, session::codec_mode_name(l.codec), l.agent);
  }
}

void Server::check_providers(std::chrono::milliseconds timeout) const {
  health_.check(timeout);
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
  const auto max = static_cast<std::int64_t>(snap->cfg.general.max_calls);
  using Refusal = access::Admission::Refusal;
  Refusal why = Refusal::none;
  auto ticket =
      admission_.admit(listener, peer.address(), snap->cfg.listeners[listener].allow, max, why);
  if (why != Refusal::none) {
    switch (why) {
      case Refusal::not_allowed:
        reject(Rejection::not_allowed, peer, "not in the listener's allow list");
        break;
      case Refusal::max_calls:
        reject(Rejection::max_calls, peer, "max_calls=" + std::to_string(max) + " reached");
        break;
      case Refusal::rate_limited:
        reject(Rejection::rate_limited, peer, "connect_rate exceeded");
        break;
      case Refusal::peer_limit:
      case Refusal::none:
        reject(Rejection::peer_limit, peer, "max_calls_per_peer reached");
        break;
    }
    socket.close(ec);
    return;
  }
  asio::post(socket.get_executor(), [this, listener, index, sc = snap->sessions[listener],
                                     s = std::move(socket), t = std::move(ticket)]() mutable {
    session::CallSession::start(std::move(s), std::move(sc), *clocks_[index], &calls_[index],
                                mailboxes_[index], &thread_counters_[index]->listeners[listener],
                                std::move(t));
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
  auto routing = std::make_shared<const Routing>(cfg, clients_);
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
    ListenerObserverOptions o;
    o.agent_name = l.agent;
    o.make_agent = agent_factory(cfg, *spec, clients_);
    if (!cfg.routes.empty() || l.require_registration || !g.http_listen.empty()) {
      o.routing = routing;
      o.registrations = registrations_;
      o.require_registration = l.require_registration;
    }
    if (cfg.control.mode != control::ControlConfig::Mode::none) o.control = control_.get();
    o.actions = actions_;
    o.note_transfers = !g.http_listen.empty();
    o.transfer_context = cfg.control.transfer_context;
    o.recorder = recorder_.get();
    o.record = cfg.recording.record;
    o.record_audio = cfg.recording.audio;
    o.record_transcript = cfg.recording.transcript;
    o.webhooks = webhooks_.get();
    if (!g.http_listen.empty()) o.ended = &ended_;
    o.tools = tools_.get();
    sc->observer = std::make_shared<ListenerObserver>(std::move(o));
    out.push_back(std::move(sc));
  }
  return out;
}

std::shared_ptr<const Server::Snapshot> Server::live() const {
  std::lock_guard lock(live_mu_);
  return live_;
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
