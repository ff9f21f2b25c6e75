#include "voxbridge/server/provider_health.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "voxbridge/logtext/log_text.hpp"
#include "voxbridge/providers/provider.hpp"
#include "voxbridge/server/routing.hpp"

namespace voxbridge::server {

ProviderHealth::ProviderHealth(std::shared_ptr<providers::ChannelPool> channels, Current current,
                               std::chrono::milliseconds interval)
    : channels_(std::move(channels)), current_(std::move(current)), interval_(interval) {}

std::vector<ProviderProbe> ProviderHealth::probe(std::chrono::milliseconds timeout,
                                                 bool check) const {
  // Each provider a listener's or route's agent uses, once: the standard gRPC health check.
  std::vector<ProviderProbe> out;
  const auto current = current_();
  const config::Config& cfg = *current;
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
      // In-process backends (OpenAI Realtime) have no gRPC health service; their sessions
      // report failures per call.
      if (!t->backend.empty()) continue;
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

void ProviderHealth::check(std::chrono::milliseconds timeout) const {
  // A provider that fails is reported, not fatal: calls to it get the pipeline's fallback
  // until it is back (and /readyz says not ready meanwhile).
  for (const auto& p : probe(timeout)) {
    if (p.serving) {
      spdlog::info("provider {} at {}: {} serving", p.name, p.address, p.service);
    } else {
      spdlog::warn("provider {} at {}: {} {}", p.name, p.address, p.service,
                   logtext::log_text(p.detail));
    }
  }
}

void ProviderHealth::monitor() {
  std::string last;
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    std::string down;
    for (const auto& p : probe(std::chrono::seconds(1))) {
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
      std::lock_guard g(down_mu_);
      down_ = down;
    }
    lock.lock();
    cv_.wait_for(lock, interval_, [this] { return stop_; });
  }
}

void ProviderHealth::start() {
  if (thread_.joinable()) return;
  if (!probe(std::chrono::milliseconds(0), false).empty()) {
    std::lock_guard lock(down_mu_);
    down_ = "starting: providers not checked yet";  // until the first check
  }
  thread_ = std::thread([this] { monitor(); });
}

void ProviderHealth::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string ProviderHealth::down() const {
  std::lock_guard lock(down_mu_);
  return down_;
}

}  // namespace voxbridge::server
