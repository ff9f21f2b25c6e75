#include "voxbridge/server/server.hpp"

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

Server::Server(const config::Config& cfg)
    : cfg_(cfg),
      calls_(new session::SessionList[resolve_threads(cfg.general.threads)]),
      pool_(resolve_threads(cfg.general.threads)) {
  const auto& g = cfg_.general;
  if (cfg_.uses_builtin_providers()) {
    // The offline providers, served in process and reached over gRPC like any other.
    provider_host::BuiltinOptions o;
    o.rules = cfg_.rules;
    o.sphinx.decoders = g.builtin_asr_decoders;
    o.openai = cfg_.openai;
    builtin_ = std::make_unique<provider_host::BuiltinProviders>(std::move(o));
    for (auto& [name, p] : cfg_.pipelines) {
      for (auto* t : {&p.asr, &p.llm, &p.tts}) {
        if (t->address == config::kBuiltinAddress) t->address = builtin_->address();
      }
    }
    spdlog::info("built-in providers (PocketSphinx, rules, Flite) on {}", builtin_->address());
  }
  for (std::size_t i = 0; i < pool_.size(); ++i) {
    clocks_.push_back(std::make_unique<playout::PacingClock>(pool_.context(i).get_executor()));
    mailboxes_.push_back(std::make_shared<session::Mailbox>(pool_.context(i).get_executor()));
  }
  for (std::size_t i = 0; i < cfg_.listeners.size(); ++i) {
    const auto& l = cfg_.listeners[i];
    const agent::AgentSpec* spec = cfg_.find_agent(l.agent);
    if (spec == nullptr) throw std::runtime_error("listener " + l.name + ": no agent " + l.agent);
    std::function<std::unique_ptr<agent::Agent>()> make_agent;
    if (spec->type == agent::AgentSpec::Type::speech) {
      auto factory = std::make_shared<pipeline::SpeechAgentFactory>(
          cfg_.speech_agents.at(spec->name), g.internal_rate_hz, g.resampler_quality, channels_);
      make_agent = [factory] { return factory->create(); };
    } else if (spec->type == agent::AgentSpec::Type::pipeline) {
      auto factory = std::make_shared<pipeline::PipelineFactory>(
          cfg_.pipelines.at(spec->name), g.internal_rate_hz, g.resampler_quality, channels_);
      make_agent = [factory] { return factory->create(); };
    } else {
      auto factory =
          std::make_shared<agent::AgentFactory>(*spec, g.internal_rate_hz, g.resampler_quality);
      make_agent = [factory] { return factory->create(); };
    }
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
    sc->agent_name = l.agent;
    sc->make_agent = std::move(make_agent);
    sc->counters = &counters_;
    if (cfg_.control.mode != control::ControlConfig::Mode::none) {
      sc->describe_call = [this](agent::CallInfo& info) { control_->describe(info); };
    } else if (!g.http_listen.empty()) {
      // No control path: a transfer is noted for the dialplan to fetch over the HTTP API.
      sc->describe_call = [book = transfers_](agent::CallInfo& info) {
        info.note_transfer = [book, uuid = info.uuid](const std::string& target) {
          book->note(uuid, target);
        };
      };
    }
    session_cfgs_.push_back(sc);
    try {
      listeners_.push_back(std::make_unique<net::Listener>(
          pool_, l.host, l.port, [this, i](asio::ip::tcp::socket s, std::size_t index) {
            on_accept(i, std::move(s), index);
          }));
    } catch (const std::exception& e) {
      throw std::runtime_error("listener " + l.name + ": cannot listen on " + l.host + ":" +
                               std::to_string(l.port) + ": " + e.what());
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
    http_ = std::make_unique<http_api::HttpApi>(
        std::move(o), control_.get(), [this] { return counters_.active.load(); }, transfers_);
  }
}

Server::~Server() {
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
}

void Server::check_providers(std::chrono::milliseconds timeout) const {
  // Each provider a listener's agent uses, once: the standard gRPC health check. A provider
  // that fails is reported, not fatal: calls to it get the pipeline's fallback until it is back.
  std::vector<std::string> done;
  for (const auto& l : cfg_.listeners) {
    std::vector<std::pair<const char*, const providers::ProviderTarget*>> used;
    if (auto it = cfg_.pipelines.find(l.agent); it != cfg_.pipelines.end()) {
      used = {{"voxbridge.asr.v1.Recognizer", &it->second.asr},
              {"voxbridge.llm.v1.Dialogue", &it->second.llm},
              {"voxbridge.tts.v1.Synthesizer", &it->second.tts}};
    } else if (auto s = cfg_.speech_agents.find(l.agent); s != cfg_.speech_agents.end()) {
      used = {{"voxbridge.agent.v1.Agent", &s->second.agent}};
    }
    for (const auto& [service, t] : used) {
      const std::string key = t->name + "/" + service;
      if (std::find(done.begin(), done.end(), key) != done.end()) continue;
      done.push_back(key);
      std::string why;
      auto h = providers::check_health(channels_->get(*t), service, timeout, &why);
      if (h == providers::Health::unknown_service) {
        // Many servers only report their overall health (the empty service name).
        why.clear();
        h = providers::check_health(channels_->get(*t), "", timeout, &why);
      }
      if (h == providers::Health::serving) {
        spdlog::info("provider {} at {}: {} serving", t->name, t->address, service);
      } else {
        spdlog::warn("provider {} at {}: {} {}{}{}", t->name, t->address, service,
                     providers::health_name(h), why.empty() ? "" : ": ", why);
      }
    }
  }
}

void Server::start() {
  if (started_) return;
  started_ = true;
  for (auto& l : listeners_) l->start();
  pool_.start();
  if (control_) control_->start();
  if (http_) http_->start();
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

void Server::on_accept(std::size_t listener, asio::ip::tcp::socket socket, std::size_t index) {
  // Admission happens here, on the single accepting thread, so a burst cannot overshoot.
  const auto max = static_cast<std::int64_t>(cfg_.general.max_calls);
  if (counters_.active.fetch_add(1) >= max) {
    counters_.active.fetch_sub(1);
    counters_.rejected.fetch_add(1);
    boost::system::error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    spdlog::warn("rejecting connection from {}:{}: max_calls={} reached", ep.address().to_string(),
                 ep.port(), max);
    socket.close(ec);
    return;
  }
  asio::post(socket.get_executor(), [this, listener, index, s = std::move(socket)]() mutable {
    session::CallSession::start(std::move(s), session_cfgs_[listener], *clocks_[index],
                                &calls_[index], mailboxes_[index]);
  });
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
    const auto hard = std::chrono::steady_clock::now() + cfg_.general.limits.close_grace +
                      std::chrono::seconds(1);
    while (active_calls() > 0 && std::chrono::steady_clock::now() < hard) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  pool_.stop_now();
  return forced;
}

}  // namespace voxbridge::server
